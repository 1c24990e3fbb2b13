//! The real services tests run against, each on a free loopback port of
//! its own: mosquitto and Debian's `docker-registry` (both installed by
//! `cargo xtask test`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{collect, root, tmp, wait_for};

const MINUTE: Duration = Duration::from_secs(60);

/// A child process, killed when dropped.
pub struct Proc {
    pub child: Child,
    pub stderr: Arc<Mutex<String>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now, with the one after it free too (the
/// embedded broker's MQTT 3.1.1 listener).
pub fn free_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

pub fn write_config(name: &str, text: &str) -> PathBuf {
    let path = tmp(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn wait_listening(what: &str, addr: &str, log: &Arc<Mutex<String>>) {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < MINUTE,
            "{what} did not start:\n{}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// mosquitto on `port`, from the PATH or Debian's /usr/sbin.
pub fn mosquitto(name: &str, port: u16, extra: &str) -> Proc {
    let bin = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
        .expect(
            "mosquitto is not installed: `cargo xtask test` installs it (Debian package mosquitto)",
        );
    let conf = write_config(
        name,
        // `extra` first: some settings (per_listener_settings) must come
        // before any listener.
        &format!("{extra}\nlistener {port} 127.0.0.1\nallow_anonymous true\n"),
    );
    let mut child = Command::new(bin)
        .args(["-c", conf.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mosquitto");
    let stderr = collect(child.stderr.take().unwrap());
    wait_listening("mosquitto", &format!("127.0.0.1:{port}"), &stderr);
    Proc { child, stderr }
}

/// Debian's `docker-registry` on a free loopback port, storing in `dir`.
pub struct Registry {
    _proc: Proc,
    pub addr: String,
}

impl Registry {
    pub fn start(dir: &Path) -> Registry {
        let addr = format!("127.0.0.1:{}", free_port());
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let mut child = Command::new("docker-registry")
            .args(["serve", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("Debian's docker-registry is needed (apt-get install docker-registry; .ci/run installs it)");
        let stderr = collect(child.stderr.take().unwrap());
        wait_listening("the registry", &addr, &stderr);
        Registry {
            _proc: Proc { child, stderr },
            addr,
        }
    }
}

/// `gatehouse serve ARGS` (a private cache, from the repository root),
/// once its log satisfies `done`.
pub fn serve_until(args: &[&str], what: &str, done: impl Fn(&str) -> bool) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("serve")
        .args(args)
        .current_dir(root())
        .env(
            "GATEHOUSE_CACHE_DIR",
            root().join("target/test-tmp/cli-cache"),
        )
        .env("RUST_LOG", "info,rumqttd=off")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let stderr = collect(child.stderr.take().unwrap());
    let p = Proc { child, stderr };
    wait_for(what, &p.stderr, done);
    p
}

/// `gatehouse serve ARGS`, once it has subscribed to its broker.
pub fn serve_subscribed(args: &[&str]) -> Proc {
    serve_until(args, "the gateway to subscribe", |e| {
        e.contains("MQTT: subscribed")
    })
}
