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
    let mut times: Vec<f64> = Vec::new();
    for _ in 0..20 {
        let t = std::time::Instant::now();
        if plugin
            .instantiate(gatehouse_runtime::InitConfig::default())
            .is_err()
        {
            break;
        }
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
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
        "kernels": rt.kernels().name,
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
