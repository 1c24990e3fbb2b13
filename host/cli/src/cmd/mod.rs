//! Subcommands.

pub mod bench;
pub mod describe;
pub mod infer;
pub mod key;
pub mod pack;
pub mod remote;
pub mod run;
pub mod serve;
pub mod stress;

use std::path::PathBuf;

use anyhow::Context as _;
use gatehouse_runtime::{Runtime, RuntimeConfig};

use crate::locate;

/// Options every subcommand shares.
pub struct Context {
    pub cache_dir: Option<PathBuf>,
    pub no_cache: bool,
}

impl Context {
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        self.runtime_with_memory(RuntimeConfig::default().max_memory_bytes)
    }

    /// A runtime whose plugins may have up to `max_memory_bytes` of linear memory.
    pub fn runtime_with_memory(&self, max_memory_bytes: usize) -> anyhow::Result<Runtime> {
        let cache_dir = (!self.no_cache).then(|| locate::cache_dir(self.cache_dir.as_deref()));
        Runtime::new(RuntimeConfig {
            cache_dir,
            max_memory_bytes,
            ..RuntimeConfig::default()
        })
        .context("starting the runtime")
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
