//! `gatehouse serve`: the daemon deploys a folder of plugins, replays sample
//! data through them (on the kernel threads its config asks for), and
//! hot-swaps a plugin whose file changes, never
//! loading a half-written file. Each step waits for the daemon to say it
//! happened, so a slow machine only makes the test slower.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{collect, root, tmp, wait_for};

fn answers(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.contains("\"plugin\":\"kws\""))
        .count()
}

#[test]
fn the_daemon_swaps_a_changed_plugin_and_never_loads_half_a_file() {
    let dir = tmp("serve-plugins");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let kws = std::fs::read(root().join("target/plugins/kws.wasm"))
        .expect("build the plugins first: cargo xtask build-plugins");
    std::fs::write(dir.join("kws.wasm"), &kws).unwrap();
    // Two kernel threads per inference, from the gateway config.
    let config = tmp("serve-gateway.toml");
    std::fs::write(&config, "threads = 2\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "serve",
            "--plugins",
            dir.to_str().unwrap(),
            "--interval-ms",
            "100",
            "--settle-ms",
            "200",
            "--config",
            config.to_str().unwrap(),
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
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    wait_for("the thread count", &stderr, |e| {
        e.contains("kernels, 2 thread(s) per inference")
    });
    wait_for("the first deploy", &stderr, |e| {
        e.contains("kws@0.1.0 deployed")
    });
    wait_for("a first answer", &stdout, |o| answers(o) > 0);
    // A writer that stops halfway, as a slow copy would, for longer than
    // the settle time: the half file is refused...
    let mut f = std::fs::File::create(dir.join("kws.wasm")).unwrap();
    f.write_all(&kws[..kws.len() / 2]).unwrap();
    f.flush().unwrap();
    wait_for("the half file's refusal", &stderr, |e| {
        e.contains("not deployed, the running version stays")
    });
    let served_before = answers(&stdout.lock().unwrap());
    // ...then it finishes, and the whole file is swapped in.
    f.write_all(&kws[kws.len() / 2..]).unwrap();
    drop(f);
    wait_for("the swap", &stderr, |e| {
        e.contains("kws@0.1.0 replaced by kws@0.1.0")
    });
    // Requests kept being answered throughout, and after the swap too.
    wait_for("answers after the swap", &stdout, |o| {
        answers(o) >= served_before + 5
    });
    let _ = child.kill();
    let _ = child.wait();
    let stderr = stderr.lock().unwrap();
    assert!(
        stderr
            .lines()
            .filter(|l| l.contains("ERROR"))
            .all(|l| l.contains("not deployed")),
        "{stderr}"
    );
}
