//! `gatehouse run PLUGIN.wasm --input FILE...`

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use gatehouse_runtime::{Grants, Inference, InitConfig, Limits, StateGrant};

use super::Context;
use crate::output::inference_json;

#[derive(clap::Args)]
pub struct Args {
    /// The plugin component (.wasm).
    plugin: PathBuf,
    /// Input files, one inference each (WAV for audio plugins, images for vision plugins...).
    #[arg(long = "input", short, required = true, num_args = 1..)]
    inputs: Vec<PathBuf>,
    /// Model bytes to hand the plugin at init (for the generic tflite plugin).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Plugin settings, KEY=VALUE.
    #[arg(long = "set", value_parser = parse_kv)]
    settings: Vec<(String, String)>,
    /// Feed each input in pieces of this many bytes, one call per piece (a
    /// stream, for plugins that keep state between calls such as `wakeword`).
    /// Prints one JSON object per piece that produced a result.
    #[arg(long)]
    chunk: Option<usize>,
    /// Run each input this many times and report latency on stderr.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Print the plugin's counters (arena size...) on stderr after the run.
    #[arg(long)]
    stats: bool,
    /// Grant the `state` capability: this directory appears as `/state` in
    /// the plugin (created if missing), as a gateway's store would give it.
    #[arg(long)]
    state: Option<PathBuf>,
    /// The `state` directory's quota, in KiB.
    #[arg(long, default_value_t = 1024, requires = "state")]
    state_kib: u64,
}

pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let rt = ctx.runtime()?;
    let limits = Limits {
        grants: Grants {
            state: a.state.as_ref().map(|dir| StateGrant {
                dir: dir.clone(),
                quota_bytes: a.state_kib << 10,
            }),
        },
        ..Limits::default()
    };
    let plugin = rt.load_file(&a.plugin, limits)?;
    let model = a
        .model
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let mut instance = plugin.instantiate(InitConfig {
        model,
        settings: a.settings,
    })?;
    let mut latencies = Vec::new();
    for path in &a.inputs {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(size) = a.chunk {
            anyhow::ensure!(size > 0, "--chunk must be positive");
            for piece in bytes.chunks(size) {
                let t = Instant::now();
                let inf = instance.process(piece)?;
                latencies.push(t.elapsed());
                if inf != Inference::default() {
                    println!("{}", inference_json(plugin.id(), name.as_deref(), &inf));
                }
            }
            continue;
        }
        let mut last = None;
        for _ in 0..a.repeat.max(1) {
            let t = Instant::now();
            last = Some(instance.process(&bytes)?);
            latencies.push(t.elapsed());
        }
        if let Some(inf) = last {
            println!("{}", inference_json(plugin.id(), name.as_deref(), &inf));
        }
    }
    if a.repeat > 1 && !latencies.is_empty() {
        latencies.sort();
        let pct = |p: f64| {
            latencies[((latencies.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6
        };
        eprintln!(
            "{{\"plugin\":\"{}\",\"kernels\":\"{}\",\"runs\":{},\"median_us\":{:.1},\"p99_us\":{:.1}}}",
            plugin.id(),
            rt.kernels().name,
            latencies.len(),
            pct(0.5),
            pct(0.99)
        );
    }
    if a.stats {
        for (k, v) in instance.stats()? {
            eprintln!("{k}: {v}");
        }
        if let Some((used, quota)) = instance.tensor_usage() {
            eprintln!("host-tensor-bytes: {used} of {quota}");
        }
        // Guest linear memory plus host tensors: what the instance costs.
        if let Some(bytes) = instance.memory_bytes() {
            eprintln!("instance-bytes: {bytes}");
        }
    }
    Ok(())
}
