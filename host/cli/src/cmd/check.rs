//! `gatehouse check PLUGIN.wasm [--allow-capabilities state]`: what a
//! component targets and imports, and which imports a gateway would deny
//! or grant, before anyone deploys it.

use std::path::PathBuf;

use anyhow::Context as _;
use gatehouse_runtime::Access;

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The plugin component (.wasm).
    plugin: PathBuf,
    /// The gateway policy to check against: capabilities it grants
    /// (comma-separated), as `serve --allow-capabilities`.
    #[arg(long, value_delimiter = ',')]
    allow_capabilities: Vec<String>,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<()> {
    let rt = ctx.runtime()?;
    let wasm =
        std::fs::read(&a.plugin).with_context(|| format!("reading {}", a.plugin.display()))?;
    let checked = rt.check(&wasm, &a.plugin.display().to_string())?;
    match checked.world {
        Some(w) => println!("world: {w}"),
        None => println!(
            "world: none (exports {}; a plugin exports describe, init, process and stats)",
            checked.exports.join(", ")
        ),
    }
    let mut refused = 0;
    println!("imports:");
    for (name, access) in &checked.imports {
        let verdict = match access {
            Access::Granted(how) => format!("granted: {how}"),
            Access::Denied(how) => format!("denied: {how}"),
            Access::NeedsGrant { capability, what } => {
                if a.allow_capabilities.iter().any(|c| c == capability) {
                    format!("granted by the policy's {capability:?}: {what}")
                } else {
                    format!("needs the {capability:?} capability: {what}")
                }
            }
            Access::Missing if name.starts_with("gatehouse:tflite/") => {
                refused += 1;
                "not provided: the host parses no models; compose the plugin with the \
                 TFLite loader component (wac plug), or it traps if called"
                    .to_string()
            }
            Access::Missing => {
                refused += 1;
                "not provided: traps if called".to_string()
            }
        };
        println!("  {name:<40} {verdict}");
    }
    if checked.world.is_none() {
        anyhow::bail!("{} is not a Gatehouse plugin", a.plugin.display());
    }
    if refused > 0 {
        println!("{refused} import(s) not provided: the plugin loads, and traps if it calls one");
    }
    Ok(())
}
