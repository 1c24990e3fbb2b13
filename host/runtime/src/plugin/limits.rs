//! Per-plugin resource limits, and the capabilities granted beyond them.

use std::time::Duration;

use crate::wasi::StateGrant;

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
    /// Capabilities beyond the plugin world; none unless granted.
    pub grants: Grants,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            tensor_bytes: 64 << 20,
            deadline: Duration::from_secs(1),
            init_deadline: Duration::from_secs(10),
            grants: Grants::default(),
        }
    }
}

/// Capabilities an operator granted a plugin, one field each; the default
/// grants nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// A private directory, preopened as `/state`.
    pub state: Option<StateGrant>,
}
