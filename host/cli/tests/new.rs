//! `gatehouse new` projects build and run as they are, in both languages,
//! from outside the repository.

use std::process::Command;

use crate::common::gateway::ok;
use crate::common::{gatehouse, root};

/// A folder outside the repository, so that nothing of it can leak in;
/// removed when dropped (a built Python plugin is 18 MB).
fn outside(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("gatehouse-{tag}-"))
        .tempdir()
        .expect("a temporary folder")
}
use serde_json::Value;

fn run_json(component: &str, dir: &std::path::Path) -> Value {
    let out = ok(&gatehouse(&[
        "run",
        component,
        "--input",
        dir.join("test-input.bin").to_str().unwrap(),
    ]));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn a_new_rust_plugin_builds_and_runs() {
    let base = outside("new-rust");
    let dir = base.path().join("my-plugin");
    ok(&gatehouse(&[
        "new",
        "my-plugin",
        "--lang",
        "rust",
        "--dir",
        dir.to_str().unwrap(),
    ]));
    // Built where the repository's own builds cannot help it: its own
    // lock file and dependencies, a target dir kept between runs for speed.
    let target = root().join("target/new-projects");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--target", "wasm32-wasip2", "--release", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .status()
        .expect("cargo");
    assert!(status.success(), "the new project does not build");
    let wasm = target.join("wasm32-wasip2/release/my_plugin.wasm");
    let v = run_json(wasm.to_str().unwrap(), &dir);
    assert_eq!(v["plugin"], "my-plugin");
    assert_eq!(v["label"], "bright");
    assert_eq!(v["score"], 200.0);
    let check = ok(&gatehouse(&["check", wasm.to_str().unwrap()]));
    assert!(
        check.starts_with("world: gatehouse:plugin/plugin@0.1.0"),
        "{check}"
    );
    // The template's .cargo/config.toml gives it the bundled plugins'
    // 128 KiB stack: with Rust's default 1 MiB an instance takes more
    // than a mebibyte of linear memory by itself.
    assert!(dir.join(".cargo/config.toml").is_file());
    let o = gatehouse(&[
        "run",
        wasm.to_str().unwrap(),
        "--input",
        dir.join("test-input.bin").to_str().unwrap(),
        "--stats",
    ]);
    let e = crate::common::stderr(&o);
    let bytes: u64 = e
        .lines()
        .find_map(|l| l.strip_prefix("instance-bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{e}"));
    assert!(bytes < 1 << 20, "{bytes} bytes per instance");
}

#[test]
fn a_new_python_plugin_builds_and_runs() {
    let base = outside("new-python");
    let dir = base.path().join("pyplug");
    ok(&gatehouse(&[
        "new",
        "pyplug",
        "--lang",
        "python",
        "--dir",
        dir.to_str().unwrap(),
    ]));
    let status = Command::new("python3")
        .args(["gatehouse_build.py", ".", "-o", "pyplug.wasm"])
        .current_dir(&dir)
        .status()
        .expect("python3 (componentize-py is installed by cargo xtask test)");
    assert!(status.success(), "the new project does not build");
    let v = run_json(dir.join("pyplug.wasm").to_str().unwrap(), &dir);
    assert_eq!(v["plugin"], "pyplug");
    assert_eq!(v["label"], "bright");
    assert_eq!(v["score"], 200.0);
}

#[test]
fn new_refuses_bad_names_and_existing_folders() {
    let base = outside("new-refused");
    std::fs::create_dir_all(base.path().join("taken")).unwrap();
    for (name, dir, why) in [
        ("../evil", "a", "must be 1-64"),
        ("1st", "b", "starting with a letter"),
        ("taken", "taken", "exists already"),
    ] {
        let o = gatehouse(&[
            "new",
            name,
            "--lang",
            "rust",
            "--dir",
            base.path().join(dir).to_str().unwrap(),
        ]);
        let err = crate::common::stderr(&o);
        assert!(!o.status.success() && err.contains(why), "{name}: {err}");
    }
}
