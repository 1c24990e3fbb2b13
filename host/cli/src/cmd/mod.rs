//! Subcommands.

pub mod bench;
pub mod check;
pub mod describe;
pub mod exec;
pub mod fleet;
pub mod infer;
pub mod key;
pub mod new;
pub mod pack;
pub mod remote;
pub mod run;
pub mod serve;
pub mod stress;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use gatehouse_runtime::{BatchPolicy, Runtime, RuntimeConfig};

use crate::locate;

/// Options every subcommand shares.
pub struct Context {
    pub cache_dir: Option<PathBuf>,
    pub no_cache: bool,
    /// `--threads`, when given.
    pub threads: Option<usize>,
}

impl Context {
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        self.runtime_with_memory(RuntimeConfig::default().max_memory_bytes)
    }

    /// A runtime whose plugins may have up to `max_memory_bytes` of linear memory.
    pub fn runtime_with_memory(&self, max_memory_bytes: usize) -> anyhow::Result<Runtime> {
        self.runtime_with(max_memory_bytes, None)
    }

    /// A runtime as [`runtime_with_memory`](Self::runtime_with_memory)
    /// makes, with `threads` unless `--threads` says otherwise.
    pub fn runtime_with(
        &self,
        max_memory_bytes: usize,
        threads: Option<usize>,
    ) -> anyhow::Result<Runtime> {
        let cache_dir = (!self.no_cache).then(|| locate::cache_dir(self.cache_dir.as_deref()));
        Runtime::new(RuntimeConfig {
            cache_dir,
            max_memory_bytes,
            threads: self.threads.or(threads).unwrap_or(1),
            // Plugins that import wasi:nn get their models loaded by it.
            nn_loader: locate::bundled_plugin("tflite"),
            ..RuntimeConfig::default()
        })
        .context("starting the runtime")
    }
}

/// How requests to plugins of the batched world are grouped.
#[derive(clap::Args, Clone, Debug)]
pub struct BatchArgs {
    /// Largest batch a plugin of `gatehouse:plugin/batched@0.2.0` is handed
    /// when requests queue up; 1 turns batching off.
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,
    /// What a batched request may take from queueing to its result, in ms;
    /// batches are sized to take at most half of it.
    #[arg(long, default_value_t = 20.0)]
    pub batch_budget_ms: f64,
}

impl BatchArgs {
    pub fn policy(&self) -> anyhow::Result<BatchPolicy> {
        let latency_budget =
            Duration::try_from_secs_f64(self.batch_budget_ms / 1e3).map_err(|_| {
                anyhow::anyhow!(
                    "--batch-budget-ms {} is not a duration",
                    self.batch_budget_ms
                )
            })?;
        Ok(BatchPolicy {
            max_batch: self.max_batch,
            latency_budget,
            ..BatchPolicy::default()
        })
    }
}

pub fn kernels() -> anyhow::Result<()> {
    let chosen = gatehouse_kernels::dispatch::from_env()?;
    for k in gatehouse_kernels::dispatch::all() {
        let mark = if k.name == chosen.name { "*" } else { " " };
        let state = if (k.supported)() {
            "supported"
        } else {
            "not supported by this CPU"
        };
        println!("{mark} {:<8} {state}", k.name);
    }
    Ok(())
}
