//! Component composition: plug the exports of some components into the
//! imports of another, as `wac plug` does (with the same library), so that
//! a plugin built against `gatehouse:plugin/toolkit` carries the TFLite
//! loader inside it and imports only what the host serves.

use std::path::Path;

use anyhow::{Context, Result};
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};

/// Writes `socket` with each of `plugs` plugged into the imports it
/// exports, to `out`.
pub fn plug(socket: &Path, plugs: &[&Path], out: &Path) -> Result<()> {
    let mut graph = CompositionGraph::new();
    let read = |name: &str, path: &Path, graph: &mut CompositionGraph| -> Result<_> {
        let pkg = Package::from_file(name, None, path, graph.types_mut())
            .with_context(|| format!("reading {}", path.display()))?;
        graph
            .register_package(pkg)
            .with_context(|| format!("registering {}", path.display()))
    };
    let socket_id = read("gatehouse:socket", socket, &mut graph)?;
    let mut plug_ids = Vec::new();
    for (i, p) in plugs.iter().enumerate() {
        plug_ids.push(read(&format!("gatehouse:plug{i}"), p, &mut graph)?);
    }
    wac_graph::plug(&mut graph, plug_ids, socket_id)
        .with_context(|| format!("plugging into {}", socket.display()))?;
    let bytes = graph
        .encode(EncodeOptions::default())
        .context("encoding the composition")?;
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))
}
