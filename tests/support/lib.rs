//! Helpers shared by the cross-crate scenarios: where the repository, its
//! fixtures and the built plugins are.

pub mod meter;

use std::path::{Path, PathBuf};

use gatehouse_runtime::{InitConfig, Instance, Limits, Runtime, RuntimeConfig};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A built plugin. Plugins are wasm32-wasip2 components that `cargo xtask
/// build` (and `cargo xtask test`) put in `target/plugins/`; a test needing
/// one fails with instructions if it is missing, it never skips.
pub fn plugin(name: &str) -> PathBuf {
    let dir = std::env::var_os("GATEHOUSE_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/plugins"));
    let p = dir.join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: build the plugins with `cargo xtask build-plugins` (cargo xtask test does this)",
        p.display()
    );
    p
}

/// A runtime with a private artifact cache.
pub fn runtime(cache: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_path_buf()),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// A fresh temporary folder under the target dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = root().join("target/test-tmp").join(format!(
        "{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A fresh instance of built plugin `name` with these settings and limits.
pub fn instance(rt: &Runtime, name: &str, settings: &[(&str, &str)], limits: Limits) -> Instance {
    rt.load_file(&plugin(name), limits)
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
        .instantiate(InitConfig {
            model: None,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
        .unwrap_or_else(|e| panic!("init {name}: {e}"))
}

/// The neighbour every abuse is checked against: kws still answers "yes"
/// to the spoken "yes".
pub fn assert_kws_still_right(kws: &mut Instance) {
    let wav = std::fs::read(root().join("examples/data/kws/synth_yes_en-us.wav")).expect("wav");
    let inf = kws.process(&wav).expect("kws after abuse");
    assert_eq!(inf.label.as_deref(), Some("yes"));
}
