//! The native side of `gatehouse:nn`: tensors, operator preparation and
//! plans. Nothing here touches wasmtime except the fault type that lets a
//! host function trap; `host.rs` binds these to the WIT interfaces.

pub mod host;
pub mod lanes;
pub mod ops;
pub mod plan;
pub mod tensor;

use gatehouse_kernels::KernelError;

/// Why an nn call failed: an error the guest gets as a WIT `nn-error`, or a
/// trap when the host itself cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum NnFault {
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("tensor quota exceeded: {0}")]
    QuotaExceeded(String),
    #[error("stale tensor: {0}")]
    StaleTensor(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("host fault: {0}")]
    Trap(wasmtime::Error),
}

impl NnFault {
    pub fn invalid(msg: impl Into<String>) -> Self {
        NnFault::Invalid(msg.into())
    }
}

impl From<KernelError> for NnFault {
    fn from(e: KernelError) -> Self {
        NnFault::Invalid(e.to_string())
    }
}

impl From<wasmtime::Error> for NnFault {
    fn from(e: wasmtime::Error) -> Self {
        NnFault::Trap(e)
    }
}

/// Host memory every tensor slot costs beyond its data, charged to the quota
/// so a plugin cannot exhaust the host with millions of empty tensors.
pub const SLOT_OVERHEAD: u64 = 64;
/// The same for each prepared operator.
pub const OP_OVERHEAD: u64 = 256;
