//! `gatehouse describe PLUGIN.wasm`, and `gatehouse describe --model
//! M.tflite`: what a model is and costs, read by the sandboxed tflite
//! plugin (model bytes are untrusted; the host never parses them).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use gatehouse_runtime::{InitConfig, Limits};
use serde_json::{Value, json};

use super::Context;
use crate::locate;

#[derive(clap::Args)]
pub struct Args {
    /// The plugin component (.wasm); with --model, the tflite plugin that
    /// reads it (default: the bundled one).
    #[arg(required_unless_present = "model")]
    plugin: Option<PathBuf>,
    /// A TFLite model: its operators, parameters, multiply-accumulates,
    /// weight bytes, activation arena, and whether this runtime runs it.
    #[arg(long)]
    model: Option<PathBuf>,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    if let Some(model) = &a.model {
        return describe_model(ctx, model, a.plugin);
    }
    let Some(path) = a.plugin else {
        bail!("give a plugin or --model");
    };
    let rt = ctx.runtime()?;
    let plugin = rt.load_file(&path, Limits::default())?;
    let d = plugin.descriptor();
    let load = plugin.load_info();
    // Instantiation (pooled, from the precompiled artifact) plus `init`, which
    // for a model plugin parses the model and records its plan. Plugins that
    // need settings to init (tflite) report null.
    // The instances are kept, so that the resident memory they add, per
    // instance, is what a pool of workers costs.
    let mut times: Vec<f64> = Vec::new();
    let (mut alone, mut inits) = (Vec::new(), Vec::new());
    let mut live = Vec::new();
    let before = resident_bytes();
    for _ in 0..INSTANCES {
        let t = std::time::Instant::now();
        match plugin.instantiate(gatehouse_runtime::InitConfig::default()) {
            Ok(i) => {
                if let Some(s) = i.start_times() {
                    alone.push(s.instantiate.as_secs_f64() * 1e6);
                    inits.push(s.init.as_secs_f64() * 1e6);
                }
                live.push(i)
            }
            Err(_) => break,
        }
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let per_instance = match (before, resident_bytes()) {
        (Some(b), Some(a)) if !live.is_empty() => Some(a.saturating_sub(b) / live.len() as u64),
        _ => None,
    };
    drop(live);
    let instantiate_us = median(&mut times);
    let v = json!({
        "plugin": d.id.name,
        "version": d.id.version,
        "summary": d.summary,
        "input_kinds": d.input_kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "labels": d.labels,
        "component_bytes": load.component_bytes,
        "load": format!("{:?}", load.source).to_lowercase(),
        "load_us": load.duration.as_secs_f64() * 1e6,
        "instantiate_and_init_us_median": instantiate_us,
        "instantiate_us_median": median(&mut alone),
        "init_us_median": median(&mut inits),
        "resident_bytes_per_instance": per_instance,
        "kernels": rt.kernels().name,
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// Instances made (and kept) to measure instantiation and memory.
const INSTANCES: usize = 20;

/// This process's resident memory, from /proc (Linux); `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // Pages of 4 KiB, as on the x86-64 and aarch64 Linux gateways run.
    Some(pages * 4096)
}

fn describe_model(ctx: &Context, model: &PathBuf, plugin: Option<PathBuf>) -> anyhow::Result<()> {
    let plugin_path = match plugin.or_else(|| locate::bundled_plugin("tflite")) {
        Some(p) => p,
        None => bail!(
            "the bundled tflite plugin was not found; build it with `cargo xtask build` or pass its path"
        ),
    };
    let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let model_bytes = bytes.len();
    let rt = ctx.runtime()?;
    let plugin = rt.load_file(&plugin_path, Limits::default())?;
    let mut instance = plugin
        .instantiate(InitConfig {
            model: Some(bytes),
            settings: vec![("describe".into(), "true".into())],
        })
        .with_context(|| format!("{}", model.display()))?;
    let out = instance
        .process(&[])?
        .output
        .with_context(|| format!("plugin {} gave no description", plugin.id()))?;
    let mut v: Value = serde_json::from_slice(&out)
        .with_context(|| format!("plugin {} gave a description that is not JSON", plugin.id()))?;
    if let Value::Object(o) = &mut v {
        o.insert("model".into(), json!(model.display().to_string()));
        o.insert("model_bytes".into(), json!(model_bytes));
        o.insert("kernels".into(), json!(rt.kernels().name));
    }
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
