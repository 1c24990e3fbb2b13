//! `gatehouse bench --model M.tflite` (or `M.onnx`): inference latency and throughput of a
//! model in the sandboxed `tflite` plugin, per batch size.

mod plot;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use gatehouse_runtime::{InitConfig, Limits};
use serde_json::json;

use super::Context;
use crate::locate;

#[derive(clap::Args)]
pub struct Args {
    /// An int8 TFLite model.
    #[arg(long)]
    model: PathBuf,
    /// Batch sizes: inputs per plugin call.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    batch: Vec<usize>,
    /// Timed calls per batch size (after warm-up).
    #[arg(long, default_value_t = 200)]
    iters: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// The tflite plugin to use (default: the bundled one).
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Also replay the plugin's recorded plan from the host, outside the
    /// sandbox (mode `native`): the same operators and kernels, the baseline
    /// for what the boundary costs.
    #[arg(long)]
    native: bool,
    /// Draw latency and throughput against batch size into this SVG.
    #[arg(long)]
    plot: Option<PathBuf>,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let plugin_path = match a.plugin {
        Some(p) => p,
        None => locate::bundled_plugin("tflite").context(
            "the bundled tflite plugin was not found; build it with `cargo xtask build`",
        )?,
    };
    let model =
        std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    // A TFLite flatbuffer's identifier sits at bytes 4 to 8; the plugin
    // reads anything else as ONNX.
    if a.native && model.get(4..8) != Some(b"TFL3") {
        bail!(
            "--native replays the host plan on the raw input; an ONNX model's plugin first \
             transposes its NCHW input to the host's NHWC, so the replay would not be the same \
             computation. Leave out --native for ONNX models"
        );
    }
    let name = a
        .model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rt = ctx.runtime()?;
    let plugin = rt.load_file(
        &plugin_path,
        Limits {
            deadline: Duration::from_secs(30),
            ..Limits::default()
        },
    )?;
    let mut instance = plugin.instantiate(InitConfig {
        model: Some(model),
        settings: vec![],
    })?;
    // One zero input tells us the input size: the plugin refuses a wrong one with it.
    let input_len = probe_input_len(&mut instance)?;
    if !a.json {
        // Figures from different machines or thread counts are never to be
        // confused: say which produced them.
        println!(
            "# {} kernels, {} thread(s)",
            rt.kernels().name,
            rt.threads()
        );
        println!(
            "{:<28} {:>6} {:>7} {:>12} {:>12} {:>12}",
            "model", "batch", "mode", "median_us", "p99_us", "per_s"
        );
    }
    if a.batch.contains(&0) {
        bail!("batch sizes must be positive");
    }
    // On a terminal only: indicatif draws nothing when stderr is redirected.
    let warm = (a.iters / 10).max(3);
    let modes = if a.native { 2 } else { 1 };
    let progress =
        indicatif::ProgressBar::new(((warm + a.iters.max(1)) * a.batch.len() * modes) as u64)
            .with_style(
                indicatif::ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} calls")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
    let mut points = Vec::new();
    for &batch in &a.batch {
        progress.set_message(format!("{name} batch {batch}"));
        let input: Vec<u8> = (0..input_len * batch)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let plugin = measure(Mode::Plugin, batch, warm, a.iters, &progress, || {
            instance
                .process(&input)
                .map(drop)
                .map_err(anyhow::Error::from)
        })?;
        let native = if a.native {
            // Bit-exactness of the two paths is the tests' job; comparing
            // one output here keeps a wrong baseline from being timed.
            let from_plugin = instance.process(&input)?.output;
            let from_host = instance
                .invoke_native(&input)
                .context("the plugin recorded no plan to replay natively")??;
            if from_plugin.as_deref() != Some(&from_host[..]) {
                bail!("the native replay's output differs from the plugin's");
            }
            Some(measure(
                Mode::Native,
                batch,
                warm,
                a.iters,
                &progress,
                || match instance.invoke_native(&input) {
                    Some(r) => r.map(drop).map_err(anyhow::Error::from),
                    None => bail!("the native plan went away"),
                },
            )?)
        } else {
            None
        };
        for p in std::iter::once(plugin).chain(native) {
            let row = json!({"model": name, "mode": p.mode.as_str(), "kernels": rt.kernels().name, "threads": rt.threads(), "batch": batch, "median_us": round1(p.median_us), "p99_us": round1(p.p99_us), "per_s": round1(p.per_s)});
            progress.suspend(|| {
                if a.json {
                    println!("{row}");
                } else {
                    println!(
                        "{:<28} {:>6} {:>7} {:>12.1} {:>12.1} {:>12.1}",
                        name,
                        batch,
                        p.mode.as_str(),
                        p.median_us,
                        p.p99_us,
                        p.per_s
                    );
                }
            });
            points.push(p);
        }
    }
    progress.finish_and_clear();
    if let Some(path) = &a.plot {
        let title = format!(
            "{name}: {} kernels, {} thread(s)",
            rt.kernels().name,
            rt.threads()
        );
        plot::draw(path, &title, &points)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Where the timed calls run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Through the sandboxed plugin's `process`.
    Plugin,
    /// The plugin's recorded plan replayed from the host.
    Native,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Plugin => "plugin",
            Mode::Native => "native",
        }
    }
}

/// Times `iters` calls of `call` after `warm` untimed ones.
fn measure(
    mode: Mode,
    batch: usize,
    warm: usize,
    iters: usize,
    progress: &indicatif::ProgressBar,
    mut call: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<plot::Point> {
    for _ in 0..warm {
        call()?;
        progress.inc(1);
    }
    let iters = iters.max(1);
    let mut per_inference = Vec::with_capacity(iters);
    let start = Instant::now();
    for _ in 0..iters {
        let t = Instant::now();
        call()?;
        per_inference.push(t.elapsed().as_secs_f64() * 1e6 / batch as f64);
        progress.inc(1);
    }
    let total = start.elapsed().as_secs_f64();
    per_inference.sort_by(f64::total_cmp);
    let pct = |p: f64| per_inference[((per_inference.len() - 1) as f64 * p).round() as usize];
    Ok(plot::Point {
        mode,
        batch,
        median_us: pct(0.5),
        p99_us: pct(0.99),
        per_s: (iters * batch) as f64 / total,
    })
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The model's input size in bytes, read from the plugin's refusal of a 1-byte input.
fn probe_input_len(instance: &mut gatehouse_runtime::Instance) -> anyhow::Result<usize> {
    match instance.process(&[0]) {
        Ok(_) => Ok(1),
        Err(e) => {
            let msg = e.to_string();
            let n = msg
                .split("each is ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok());
            n.with_context(|| format!("cannot learn the model's input size: {msg}"))
        }
    }
}
