//! The host side of `gatehouse:nn`, without WebAssembly: one plugin
//! instance's tensors and their quota, operators validated against the
//! tensors they name and prepared for the kernels, recorded plans, and the
//! deadline host work runs under. The runtime binds these to the WIT
//! interfaces; nothing here knows of wasm, so the validation can be fuzzed
//! and tested on its own.
//!
//! ```text
//! runtime (WIT bindings) -> nn (this crate) -> kernels
//! ```

// Outside tests, nothing here unwraps: a panic on data from a plugin, a
// file or the network would take down the gateway. Clippy holds every
// change to that (`cargo clippy`).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod budget;
mod crew;
mod lanes;
pub mod ops;
pub mod plan;
pub mod tensor;
mod threads;

pub use budget::{Budget, Pace, Work};
pub use plan::Plan;
pub use tensor::{DType, Desc, Quant, TensorKey, TensorStore};
pub use threads::{MAX_THREADS, Threads};

use gatehouse_kernels::KernelError;

/// Why an nn call failed: an error the guest gets as a WIT `nn-error`, or
/// (`Deadline`) the end of the call.
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
    /// Host work asked for by the plugin would pass its deadline. It traps,
    /// as a guest that runs past its deadline does.
    #[error("deadline: {0}")]
    Deadline(String),
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

/// Host memory every tensor slot costs beyond its data and description:
/// the slot, the handle's entry in the resource table and its box, and a
/// free-list entry; charged so a plugin cannot exhaust the host with
/// millions of empty tensors. (`tests::overheads_cover_what_is_held`
/// checks the sizes this rests on.)
pub const SLOT_OVERHEAD: u64 = tensor::SLOT_BYTES + 128;
/// The same for each prepared operator: its place in a plan's list, which
/// may have twice the capacity it uses, and its operand lists beyond that
/// (charged by the operator).
pub const OP_OVERHEAD: u64 = 2 * std::mem::size_of::<ops::PreparedOp>() as u64 + 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overheads_cover_what_is_held() {
        // What the resource table keeps per handle, at most (wasmtime 48:
        // an enum of a boxed `dyn Any`, a parent and a set of children).
        assert!(tensor::SLOT_BYTES + 96 + 16 + 4 <= SLOT_OVERHEAD);
        assert!(2 * std::mem::size_of::<ops::PreparedOp>() as u64 <= OP_OVERHEAD);
        assert!(std::mem::size_of::<plan::Plan>() as u64 <= OP_OVERHEAD);
    }
}
