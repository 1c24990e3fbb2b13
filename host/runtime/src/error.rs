//! Errors of the runtime. Every failure of a plugin carries its name and
//! version, so an operator knows which vendor's code to look at.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A plugin's identity as it describes itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PluginId {
    pub name: String,
    pub version: String,
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine could not be configured (a host problem, not a plugin's).
    #[error("engine: {0}")]
    Engine(String),
    /// No usable kernel set (e.g. `GATEHOUSE_KERNELS` names an unknown one).
    #[error(transparent)]
    Kernels(#[from] gatehouse_kernels::KernelError),
    /// The artifact cache could not be read or written.
    #[error("artifact cache {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a component this host can run.
    #[error("{origin}: {reason}")]
    Load { origin: String, reason: String },
    /// A loaded plugin failed.
    #[error("plugin {plugin}: {failure}")]
    Plugin { plugin: PluginId, failure: Failure },
    /// No plugin of that name is deployed.
    #[error("no plugin named {0:?} is deployed")]
    NotDeployed(String),
    /// A deployment was refused; what runs stays as it was.
    #[error("deploying {plugin} refused: {reason}")]
    DeployRefused { plugin: PluginId, reason: String },
}

impl Error {
    /// The plugin failure, if this is one.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Error::Plugin { failure, .. } => Some(failure),
            _ => None,
        }
    }
}

/// How a plugin call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Epoch interruption stopped it.
    #[error("stopped after exceeding its CPU deadline of {0:?}")]
    Deadline(Duration),
    /// Its linear memory would have grown past the cap.
    #[error("trapped on exceeding its linear-memory limit of {0} bytes")]
    MemoryLimit(usize),
    /// Any other trap: a guest bug, an abort, a forged handle.
    #[error("trapped: {0}")]
    Trap(String),
    /// The plugin refused its input.
    #[error("rejected the input: {0}")]
    InvalidInput(String),
    /// The plugin refused its configuration or model.
    #[error("rejected its configuration: {0}")]
    InvalidConfig(String),
    /// A host kernel refused an operation the plugin asked for.
    #[error("kernel error: {0}")]
    Kernel(String),
    /// `process` before a successful `init`.
    #[error("was called before it was initialized")]
    NotInitialized,
    /// Repeated traps opened the circuit; requests fail at once until it closes.
    #[error("is failing repeatedly; its circuit is open for another {0:?}")]
    CircuitOpen(Duration),
}

impl Failure {
    /// Whether the instance was lost (and replaced) because of this failure.
    pub fn is_trap(&self) -> bool {
        matches!(
            self,
            Failure::Deadline(_) | Failure::MemoryLimit(_) | Failure::Trap(_)
        )
    }
}
