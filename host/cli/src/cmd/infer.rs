//! `gatehouse infer --model M.tflite --input IN.bin --output OUT.bin`, and
//! the same for an ONNX model (`M.onnx`).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use gatehouse_runtime::{InitConfig, Limits};

use super::Context;
use crate::locate;

#[derive(clap::Args)]
pub struct Args {
    /// An int8 TFLite model, or an int8 ONNX model (QDQ or operator form).
    #[arg(long)]
    model: PathBuf,
    /// k whole input tensors back to back, raw, in the model's own layout
    /// and type (NHWC int8 for MLPerf Tiny's TFLite models; NCHW float32
    /// for a QDQ ONNX model).
    #[arg(long)]
    input: PathBuf,
    /// Where the k outputs go, back to back.
    #[arg(long)]
    output: PathBuf,
    /// Whose int8 arithmetic to reproduce: for TFLite, `reference` (the
    /// TFLite interpreter's reference kernels, the default) or `micro`
    /// (TensorFlow Lite Micro); for ONNX, `onnxruntime` (its optimized CPU
    /// session's fused integer kernels, the default and only choice).
    #[arg(long)]
    semantics: Option<String>,
    /// Plugin settings, KEY=VALUE (e.g. output-tensor=N to read an intermediate tensor).
    #[arg(long = "set", value_parser = super::run::parse_kv)]
    settings: Vec<(String, String)>,
    /// The tflite plugin to use (default: the bundled one).
    #[arg(long)]
    plugin: Option<PathBuf>,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let plugin_path = match a.plugin {
        Some(p) => p,
        None => match locate::bundled_plugin("tflite") {
            Some(p) => p,
            None => bail!(
                "the bundled tflite plugin was not found; build it with `cargo xtask build` or pass --plugin"
            ),
        },
    };
    let model =
        std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    let input =
        std::fs::read(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
    let rt = ctx.runtime()?;
    let plugin = rt.load_file(&plugin_path, Limits::default())?;
    let mut settings = a.settings;
    if let Some(s) = a.semantics {
        settings.push(("semantics".into(), s));
    }
    let mut instance = plugin.instantiate(InitConfig {
        model: Some(model),
        settings,
    })?;
    let inf = instance.process(&input)?;
    let out = inf
        .output
        .with_context(|| format!("plugin {} returned no output tensor", plugin.id()))?;
    std::fs::write(&a.output, out).with_context(|| format!("writing {}", a.output.display()))?;
    Ok(())
}
