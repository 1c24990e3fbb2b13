//! `gatehouse describe PLUGIN.wasm`

use std::path::PathBuf;

use gatehouse_runtime::Limits;
use serde_json::json;

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The plugin component (.wasm).
    plugin: PathBuf,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let rt = ctx.runtime()?;
    let plugin = rt.load_file(&a.plugin, Limits::default())?;
    let d = plugin.descriptor();
    let load = plugin.load_info();
    // Instantiation (pooled, from the precompiled artifact) plus `init`, which
    // for a model plugin parses the model and records its plan. Plugins that
    // need settings to init (tflite) report null.
    // The instances are kept, so that the resident memory they add, per
    // instance, is what a pool of workers costs.
    let mut times: Vec<f64> = Vec::new();
    let mut live = Vec::new();
    let before = resident_bytes();
    for _ in 0..INSTANCES {
        let t = std::time::Instant::now();
        match plugin.instantiate(gatehouse_runtime::InitConfig::default()) {
            Ok(i) => live.push(i),
            Err(_) => break,
        }
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let per_instance = match (before, resident_bytes()) {
        (Some(b), Some(a)) if !live.is_empty() => Some(a.saturating_sub(b) / live.len() as u64),
        _ => None,
    };
    drop(live);
    times.sort_by(f64::total_cmp);
    let instantiate_us = times.get(times.len() / 2).copied();
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
        "resident_bytes_per_instance": per_instance,
        "kernels": rt.kernels().name,
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
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
