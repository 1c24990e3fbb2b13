//! Running the built `gatehouse` binary from tests.

#![allow(dead_code)]

pub mod gateway;
pub mod services;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `gatehouse ARGS...` with a private cache, from the repository root.
/// Bundled plugins are found in `target/plugins/` (built by `cargo xtask build-plugins`).
pub fn gatehouse(args: &[&str]) -> Output {
    gatehouse_with(args, &[])
}

/// The kernel sets this machine runs, as `gatehouse kernels` lists them.
pub fn kernel_sets() -> Vec<String> {
    let o = gatehouse(&["kernels"]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.ends_with(" supported"))
        .filter_map(|l| {
            l.trim_start_matches(['*', ' '])
                .split_whitespace()
                .next()
                .map(str::to_string)
        })
        .collect()
}

/// As [`gatehouse`] with extra environment variables.
pub fn gatehouse_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let plugins = root().join("target/plugins");
    assert!(
        plugins.join("tflite.wasm").is_file(),
        "build the plugins first: cargo xtask build-plugins"
    );
    let cache = root().join("target/test-tmp/cli-cache");
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .current_dir(root())
        .env("GATEHOUSE_CACHE_DIR", cache)
        .env("GATEHOUSE_PLUGIN_DIR", plugins)
        .envs(env.iter().copied())
        .output()
        .expect("run gatehouse")
}

pub fn tmp(name: &str) -> PathBuf {
    let d = root().join("target/test-tmp/cli");
    std::fs::create_dir_all(&d).expect("tmp");
    d.join(format!("{}-{name}", std::process::id()))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Lines a child writes, collected as they come.
pub fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let sink = Arc::new(Mutex::new(String::new()));
    let s = sink.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut t = s.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    sink
}

/// Waits until `done` holds for what was collected; fails after a minute.
pub fn wait_for(what: &str, text: &Arc<Mutex<String>>, done: impl Fn(&str) -> bool) {
    let start = Instant::now();
    while !done(&text.lock().unwrap()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waited a minute for {what}:\n{}",
            text.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Softmax in float32, as the sensor plugins compute it from a model's
/// logits (`gatehouse_sdk::rows::softmax`).
pub fn softmax(l: &[f32]) -> Vec<f32> {
    let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = l.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}
