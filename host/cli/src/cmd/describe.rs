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
    let v = json!({
        "plugin": d.id.name,
        "version": d.id.version,
        "summary": d.summary,
        "input_kinds": d.input_kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "labels": d.labels,
        "component_bytes": load.component_bytes,
        "load": format!("{:?}", load.source).to_lowercase(),
        "load_us": load.duration.as_secs_f64() * 1e6,
        "kernels": rt.kernels().name,
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
