//! A gateway under test: a vendor's keys, a trust folder and a token, and
//! a running `gatehouse serve --store --admin` to call.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::{gatehouse, root, tmp};

pub const TOKEN: &str = "test-token-0123456789abcdef";

pub fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", super::stderr(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A vendor, a gateway's trust folder and token, and bundles to deploy.
pub struct Kit {
    pub dir: PathBuf,
}

impl Kit {
    pub fn new(tag: &str) -> Kit {
        let dir = tmp(tag);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("trust")).unwrap();
        let s = |p: PathBuf| p.to_str().unwrap().to_string();
        ok(&gatehouse(&[
            "key",
            "generate",
            "--out",
            &s(dir.join("vendor")),
        ]));
        ok(&gatehouse(&[
            "key",
            "generate",
            "--out",
            &s(dir.join("stranger")),
        ]));
        std::fs::copy(dir.join("vendor/signing.pub"), dir.join("trust/vendor.pub")).unwrap();
        std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
        std::fs::copy(
            root().join("examples/data/kws/synth_yes_en-us.wav"),
            dir.join("yes.wav"),
        )
        .unwrap();
        Kit { dir }
    }

    pub fn path(&self, rel: &str) -> String {
        self.dir.join(rel).to_str().unwrap().to_string()
    }

    /// `gatehouse pack` of a target/plugins component with a plugin.toml body.
    pub fn pack(&self, plugin: &str, toml: &str, key: &str, out: &str) -> String {
        let manifest = self.dir.join(format!("{out}.toml"));
        std::fs::write(&manifest, toml).unwrap();
        let component = root().join(format!("target/plugins/{plugin}.wasm"));
        ok(&gatehouse(&[
            "pack",
            "--component",
            component.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
            "--key",
            &self.path(&format!("{key}/signing.key")),
            "--out",
            &self.path(out),
        ]));
        self.path(out)
    }

    pub fn kws(&self, version: &str) -> String {
        self.pack(
            "kws",
            &format!(
                "name = \"kws\"\nversion = \"{version}\"\n[self-test]\ninput = \"yes.wav\"\nlabel = \"yes\"\n"
            ),
            "vendor",
            &format!("kws-{version}.gpk"),
        )
    }
}

/// A running `gatehouse serve --store --admin`.
pub struct Daemon {
    pub child: Child,
    pub url: String,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    pub fn start(kit: &Kit, fault: Option<&str>) -> Daemon {
        Daemon::start_with(kit, fault, &[])
    }

    pub fn start_with(kit: &Kit, fault: Option<&str>, extra: &[&str]) -> Daemon {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        c.args([
            "serve",
            "--store",
            &kit.path("store"),
            "--trust",
            &kit.path("trust"),
            "--admin",
            "127.0.0.1:0",
            "--token-file",
            &kit.path("token"),
        ])
        .args(extra)
        .current_dir(root())
        .env(
            "GATEHOUSE_CACHE_DIR",
            root().join("target/test-tmp/cli-cache"),
        )
        .env("RUST_LOG", "info")
        .env_remove("GATEHOUSE_FAULT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        if let Some(f) = fault {
            c.env("GATEHOUSE_FAULT", f);
        }
        let mut child = c.spawn().expect("start serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("admin API listening on ") {
                    let _ = tx.send(line[i + 23..].trim().to_string());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the daemon did not start:\n{}", log.lock().unwrap()));
        Daemon { child, url, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let client = http();
        let mut req = client.request(method.parse().unwrap(), format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.body(body).send().expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn put(&self, bundle: &[u8], name: &str) -> (u16, Value) {
        self.call(
            "PUT",
            &format!("/v1/plugins/{name}"),
            Some(TOKEN),
            bundle.to_vec(),
        )
    }

    /// (serving, stored) version of `name`.
    pub fn versions(&self, name: &str) -> (Option<String>, Option<String>) {
        let (s, v) = self.call("GET", "/v1/plugins", Some(TOKEN), vec![]);
        assert_eq!(s, 200, "{v}");
        let p = v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or(Value::Null);
        let s = |k: &str| p[k].as_str().map(str::to_owned);
        (s("serving"), s("stored"))
    }

    pub fn infer_label(&self, name: &str, input: &[u8]) -> (String, String) {
        let (s, v) = self.call(
            "POST",
            &format!("/v1/plugins/{name}/infer"),
            Some(TOKEN),
            input.to_vec(),
        );
        assert_eq!(s, 200, "{v}");
        (
            v["version"].as_str().unwrap().into(),
            v["label"].as_str().unwrap_or("").into(),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http() -> reqwest::blocking::Client {
    gatehouse_ota::oci::install_tls_provider();
    reqwest::blocking::Client::new()
}
