//! `gatehouse serve`: the daemon deploys a folder of plugins, replays sample
//! data through them, and hot-swaps a plugin whose file changes, never
//! loading a half-written file.

mod common;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{root, tmp};

#[test]
fn the_daemon_swaps_a_changed_plugin_and_never_loads_half_a_file() {
    let dir = tmp("serve-plugins");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let kws = std::fs::read(root().join("target/plugins/kws.wasm"))
        .expect("build the plugins first: cargo xtask build-plugins");
    std::fs::write(dir.join("kws.wasm"), &kws).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "serve",
            "--plugins",
            dir.to_str().unwrap(),
            "--interval-ms",
            "100",
            "--settle-ms",
            "200",
            "--duration-s",
            "6",
        ])
        .current_dir(root())
        .env(
            "GATEHOUSE_CACHE_DIR",
            root().join("target/test-tmp/cli-cache"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    std::thread::sleep(Duration::from_millis(1500));
    // A writer that stops halfway, as a slow copy would, for longer than the settle time...
    let mut f = std::fs::File::create(dir.join("kws.wasm")).unwrap();
    f.write_all(&kws[..kws.len() / 2]).unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    // ...then finishes.
    f.write_all(&kws[kws.len() / 2..]).unwrap();
    drop(f);
    let out = child
        .wait_with_output()
        .expect("serve ends after --duration-s");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("kws@0.1.0 deployed"), "{stderr}");
    assert!(
        stderr.contains("not deployed, the running version stays"),
        "the half file must be refused: {stderr}"
    );
    assert!(
        stderr.contains("kws@0.1.0 replaced by kws@0.1.0"),
        "the finished file must be swapped in: {stderr}"
    );
    // Requests kept being answered throughout, and none failed.
    let answers = stdout
        .lines()
        .filter(|l| l.contains("\"plugin\":\"kws\""))
        .count();
    assert!(answers >= 20, "only {answers} answers:\n{stdout}");
    assert!(
        !stderr.contains("ERROR")
            || stderr
                .lines()
                .filter(|l| l.contains("ERROR"))
                .all(|l| l.contains("not deployed")),
        "{stderr}"
    );
}
