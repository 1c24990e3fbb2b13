//! The Gatehouse host runtime: loads plugin components into wasmtime
//! sandboxes and serves their `gatehouse:nn` imports with native kernels.
//!
//! ```text
//! Runtime ── load ──> Plugin (compiled + InstancePre + descriptor)
//!                        └─ instantiate ──> Instance (store, tensors, limits)
//! ```

pub mod bindings;
pub mod cache;
mod engine;
mod error;
pub mod nn;
pub mod plugin;
pub mod registry;

pub use cache::{ArtifactCache, Source};
pub use engine::{Runtime, RuntimeConfig};
pub use error::{Error, Failure, PluginId};
pub use plugin::{
    Descriptor, Event, Inference, InitConfig, InputKind, Instance, Limits, LoadInfo, Plugin,
};
pub use registry::{
    BatchPolicy, BatchStats, DeploySpec, Deployed, Deployment, Expect, Pending, Policy, Prepared,
    Registry, RollbackHook, SelfTest, Served, Status,
};
