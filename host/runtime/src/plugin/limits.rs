//! Per-plugin resource limits.

use std::time::Duration;

/// What one plugin instance may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Cap on the instance's linear memory.
    pub memory_bytes: usize,
    /// Quota of host tensor memory (tensors, prepared weights, bookkeeping).
    pub tensor_bytes: u64,
    /// CPU deadline of one `process` call.
    pub deadline: Duration,
    /// CPU deadline of `init` (loading a model takes longer than a call).
    pub init_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            tensor_bytes: 64 << 20,
            deadline: Duration::from_secs(1),
            init_deadline: Duration::from_secs(10),
        }
    }
}
