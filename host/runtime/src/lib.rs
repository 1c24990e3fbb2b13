//! The Gatehouse host runtime: loads plugin components into wasmtime
//! sandboxes and serves their `gatehouse:nn` imports with native kernels.
//!
//! ```text
//! Runtime ── load ──> Plugin (compiled + InstancePre + descriptor)
//!                        └─ instantiate ──> Instance (store, tensors, limits)
//! Registry: plugin name -> active version, hot-swapped, batched, watched
//! ```
//!
//! The crate exports what its users (the CLI, the scenarios) need; the WIT
//! bindings and the nn host functions stay inside.

// Outside tests, nothing here unwraps: a panic on data from a plugin, a
// file or the network would take down the gateway. Clippy holds every
// change to that (`cargo clippy`).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod bindings;
mod cache;
mod command;
mod dsp_host;
mod engine;
mod error;
mod heap;
mod nn_host;
mod plugin;
mod registry;
mod runtimes_host;
mod sequence_host;
mod wasi;
mod wasi_nn;

pub use cache::Source;
pub use command::CommandConfig;
pub use engine::{Runtime, RuntimeConfig};
pub use error::{Error, Failure, PluginId};
/// The most threads `RuntimeConfig::threads` may ask for.
pub use gatehouse_nn::MAX_THREADS;
pub use plugin::{
    Access, Checked, Descriptor, Event, Grants, Inference, InitConfig, InputKind, Instance, Limits,
    LoadInfo, Plugin, StartTimes,
};
pub use registry::{
    BatchPolicy, BatchStats, CircuitPolicy, DeploySpec, Deployed, Deployment, Expect, HealthPolicy,
    Pending, Policy, Prepared, Registry, RollbackHook, SelfTest, Served, Status,
};
pub use wasi::{STATE_DIR, StateGrant};
