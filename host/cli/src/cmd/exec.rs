//! `gatehouse exec GUEST.wasm [ARGS]...`: run a `wasi:cli/command`
//! component that imports `wasi:nn`, as wasmtime would run it, with its
//! models loaded by the sandboxed `tflite` plugin onto the host's kernels.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use gatehouse_runtime::{CommandConfig, Limits};

use super::Context;
use crate::locate;

#[derive(clap::Args)]
pub struct Args {
    /// The command component (.wasm).
    guest: PathBuf,
    /// Its arguments (after its name, which is the file's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
    /// Cap on its linear memory, and on each model loader's, in MiB.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,
    /// CPU deadline of the whole run, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_s: u64,
    /// The plugin that loads its wasi-nn models (default: the bundled tflite plugin).
    #[arg(long)]
    loader: Option<PathBuf>,
}

/// Runs the guest; returns its exit code.
pub fn run(ctx: &Context, a: Args) -> anyhow::Result<i32> {
    let wasm = std::fs::read(&a.guest).with_context(|| format!("reading {}", a.guest.display()))?;
    let memory_bytes = a.memory_mib.saturating_mul(1 << 20);
    let rt = ctx.runtime_with_memory(memory_bytes.max(64 << 20))?;
    let nn_loader = match a.loader.or_else(|| locate::bundled_plugin("tflite")) {
        Some(path) => Some(rt.load_file(
            &path,
            Limits {
                memory_bytes,
                ..Limits::default()
            },
        )?),
        // Without a loader the guest still runs; its `graph.load` fails.
        None => None,
    };
    let name = a
        .guest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut args = vec![name];
    args.extend(a.args);
    let code = rt.exec(
        &wasm,
        &a.guest.display().to_string(),
        CommandConfig {
            args,
            memory_bytes,
            deadline: Duration::from_secs(a.timeout_s),
            nn_loader,
        },
    )?;
    Ok(code)
}
