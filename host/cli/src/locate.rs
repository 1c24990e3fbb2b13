//! Finding bundled plugins and the cache folder.

use std::path::{Path, PathBuf};

/// Where to look for a bundled plugin called `name`: `$GATEHOUSE_PLUGIN_DIR`,
/// `plugins/` beside or above the executable (as `cargo xtask build` lays
/// out `target/plugins/`), then `target/plugins/` under the working folder.
pub fn bundled_plugin(name: &str) -> Option<PathBuf> {
    let file = format!("{name}.wasm");
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("GATEHOUSE_PLUGIN_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Ok(exe) = std::env::current_exe() {
        let mut at: Option<&Path> = exe.parent();
        for _ in 0..3 {
            let Some(dir) = at else { break };
            dirs.push(dir.join("plugins"));
            at = dir.parent();
        }
    }
    dirs.push(PathBuf::from("target/plugins"));
    dirs.into_iter()
        .map(|d| d.join(&file))
        .find(|p| p.is_file())
}

/// The artifact cache folder.
pub fn cache_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("GATEHOUSE_CACHE_DIR") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("gatehouse")
}
