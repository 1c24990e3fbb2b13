//! The fleet: gateways steered by desired state retained on a broker
//! (mosquitto), pulling signed bundles from a registry (Debian's
//! docker-registry), both installed by `cargo xtask test`. Each step waits
//! for what it needs, up to a minute.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::gatehouse;
use crate::common::gateway::{Kit, ok};
use crate::common::services::{
    Proc, Registry, free_port, mosquitto, serve_subscribed, write_config,
};
use gatehouse_ota::Bundle;
use gatehouse_ota::bundle::SIGNATURE;
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

/// `gatehouse serve --store` of gateway `id`, on the broker at `port`,
/// once it has subscribed.
fn gateway(kit: &Kit, id: &str, port: u16, extra: &[&str]) -> Proc {
    let url = format!("mqtt://127.0.0.1:{port}");
    let (store, trust) = (kit.path(&format!("store-{id}")), kit.path("trust"));
    let mut args = vec!["--store", &store, "--trust", &trust, "--mqtt", &url];
    args.extend(["--gateway-id", id, "--report-interval-s", "1"]);
    args.extend(extra);
    serve_subscribed(&args)
}

/// `gatehouse fleet status`: each gateway's line, by id.
fn status(port: u16) -> BTreeMap<String, Value> {
    let out = ok(&gatehouse(&[
        "fleet",
        "status",
        "--mqtt",
        &format!("mqtt://127.0.0.1:{port}"),
    ]));
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["gateway"].as_str().unwrap().to_string(), v))
        .collect()
}

/// Waits until gateway `id`'s status line satisfies `done`; returns it.
fn wait_status(port: u16, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let s = status(port).remove(id).unwrap_or(Value::Null);
        if done(&s) {
            return s;
        }
        assert!(
            start.elapsed() < MINUTE,
            "waited a minute for {id}: {what}; last status {s:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn active(s: &Value, plugin: &str) -> Option<String> {
    s["reported"]["plugins"][plugin]["active"]
        .as_str()
        .map(str::to_owned)
}

fn refusal(s: &Value) -> String {
    s["reported"]["last_refusal"]["reason"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// `gatehouse push` of a bundle file to `reference`.
fn push(file: &str, reference: &str) {
    ok(&gatehouse(&["push", file, reference]));
}

fn desire(port: u16, target: &[&str], reference: &str) -> Value {
    let url = format!("mqtt://127.0.0.1:{port}");
    let mut args = vec!["fleet", "desire", "--mqtt", &url, "--oci", reference];
    args.extend(target);
    serde_json::from_str(ok(&gatehouse(&args)).trim()).unwrap()
}

/// Publish `payload` retained on `topic`, as an operator (or an attacker
/// with access to the broker) could.
fn publish_retained(port: u16, topic: &str, payload: &str) {
    let o = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-r"])
        .args(["-t", topic, "-m", payload])
        .output()
        .expect("mosquitto_pub (Debian package mosquitto-clients)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn one_gateway_follows_its_desired_state_and_refuses_what_it_must() {
    let kit = Kit::new("fleet-one");
    let reg = Registry::start(&kit.dir.join("registry"));
    let port = free_port();
    let _broker = mosquitto("fleet-one.conf", port, "persistence false\n");
    let oci = |tag: &str| format!("oci://{}/gatehouse/kws:{tag}", reg.addr);
    for v in ["1.0.0", "1.1.0", "1.2.0", "0.9.0"] {
        push(&kit.kws(v), &oci(v));
    }
    let unsigned = Bundle::parse(&std::fs::read(kit.kws("1.3.0")).unwrap())
        .unwrap()
        .without_entry(SIGNATURE)
        .to_bytes()
        .unwrap();
    std::fs::write(kit.dir.join("unsigned.gpk"), unsigned).unwrap();
    push(&kit.path("unsigned.gpk"), &oci("1.3.0"));
    let stranger = kit.pack(
        "kws",
        "name = \"kws\"\nversion = \"1.4.0\"\n",
        "stranger",
        "stranger.gpk",
    );
    push(&stranger, &oci("1.4.0"));

    let mut gw = gateway(&kit, "gw1", port, &[]);
    let s = wait_status(port, "gw1", "online", |s| s["online"] == true);
    assert_eq!(
        s["reported"]["kernels"].as_str().map(str::is_empty),
        Some(false),
        "{s}"
    );

    // Desired, pulled, verified, self-tested, serving.
    let d = desire(port, &["--gateway", "gw1"], &oci("1.0.0"));
    assert_eq!(d["sequence"], 1, "{d}");
    let s = wait_status(port, "gw1", "kws 1.0.0", |s| {
        active(s, "kws").as_deref() == Some("1.0.0")
    });
    assert_eq!(
        s["reported"]["plugins"]["kws"]["sha256"],
        gatehouse_ota::sha256_hex(&std::fs::read(kit.path("kws-1.0.0.gpk")).unwrap())
    );
    desire(port, &["--gateway", "gw1"], &oci("1.1.0"));
    let s = wait_status(port, "gw1", "kws 1.1.0", |s| {
        active(s, "kws").as_deref() == Some("1.1.0")
    });
    assert_eq!(s["reported"]["plugins"]["kws"]["previous"], "1.0.0");

    // Each refusal is reported and changes nothing.
    let refused = |target: &str, says: &str| {
        let s = wait_status(port, "gw1", says, |s| refusal(s).contains(says));
        assert_eq!(active(&s, "kws").as_deref(), Some("1.1.0"), "{target}: {s}");
    };
    desire(port, &["--gateway", "gw1"], &oci("0.9.0"));
    refused("older version", "older than the active");
    desire(port, &["--gateway", "gw1"], &oci("1.3.0"));
    refused("unsigned", "not signed");
    desire(port, &["--gateway", "gw1"], &oci("1.4.0"));
    refused("untrusted key", "not in the trust folder");
    let own = "gatehouse/v1/gateways/gw1/desired";
    let forged = |seq: u64, tag: &str, sha: &str, version: &str| {
        format!(
            r#"{{"sequence":{seq},"plugins":{{"kws":{{"oci":"{}","sha256":"{sha}","version":"{version}"}}}}}}"#,
            oci(tag)
        )
    };
    let sha_120 = gatehouse_ota::sha256_hex(&std::fs::read(kit.path("kws-1.2.0.gpk")).unwrap());
    publish_retained(port, own, &forged(1, "1.2.0", &sha_120, "1.2.0"));
    refused("older sequence", "already applied");
    publish_retained(port, own, &forged(100, "1.2.0", &"ab".repeat(32), "1.2.0"));
    refused("digest", "serves a bundle with sha256");
    publish_retained(port, own, &forged(101, "1.2.0", &sha_120, "1.2.5"));
    refused("version", "the signed bundle is version 1.2.0");
    publish_retained(port, own, "{\"sequence\": 102, \"plugins\": 7}");
    refused("malformed", "not a desired state");

    // A document is applied whole or not at all. Here the second bundle
    // is refused before anything is swapped...
    let sha = |file: &str| gatehouse_ota::sha256_hex(&std::fs::read(kit.path(file)).unwrap());
    let two = |seq: u64, second: &str, tag: &str, sha2: &str, version: &str| {
        format!(
            r#"{{"sequence":{seq},"plugins":{{"kws":{{"oci":"{}","sha256":"{sha_120}","version":"1.2.0"}},"{second}":{{"oci":"{}","sha256":"{sha2}","version":"{version}"}}}}}}"#,
            oci("1.2.0"),
            oci(tag)
        )
    };
    publish_retained(
        port,
        own,
        &two(103, "zz", "1.3.0", &sha("unsigned.gpk"), "1.3.0"),
    );
    refused("half a document", "zz@1.3.0");
    // ...and here the first (new) plugin is swapped in, then the second
    // fails its self-test, and the first goes again.
    let failing = kit.pack(
        "kws",
        "name = \"kws\"\nversion = \"1.5.0\"\n[self-test]\ninput = \"yes.wav\"\nlabel = \"no\"\n",
        "vendor",
        "kws-1.5.0.gpk",
    );
    push(&failing, &oci("1.5.0"));
    let hostile = kit.pack(
        "hostile",
        "name = \"hostile\"\nversion = \"1.0.0\"\n",
        "vendor",
        "hostile.gpk",
    );
    let hostile_ref = format!("oci://{}/gatehouse/hostile:1.0.0", reg.addr);
    push(&hostile, &hostile_ref);
    let doc = format!(
        r#"{{"sequence":104,"plugins":{{"hostile":{{"oci":"{hostile_ref}","sha256":"{}","version":"1.0.0"}},"kws":{{"oci":"{}","sha256":"{}","version":"1.5.0"}}}}}}"#,
        sha("hostile.gpk"),
        oci("1.5.0"),
        sha("kws-1.5.0.gpk")
    );
    publish_retained(port, own, &doc);
    let s = wait_status(port, "gw1", "the self-test refusal", |s| {
        refusal(s).contains("kws@1.5.0")
    });
    assert!(refusal(&s).contains("self-test"), "{s}");
    assert_eq!(active(&s, "kws").as_deref(), Some("1.1.0"), "{s}");
    assert_eq!(active(&s, "hostile"), None, "{s}");

    // The broker loses the retained document (a restart without
    // persistence, an operator's mistake): the next one is still numbered
    // after what the gateway reports it applied, so it is not refused.
    publish_retained(port, own, "");
    let d = desire(port, &["--gateway", "gw1"], &oci("1.1.0"));
    let s = wait_status(port, "gw1", "the renumbered document applied", |s| {
        s["reported"]["applied"][own].as_u64() == d["sequence"].as_u64()
    });
    assert_eq!(active(&s, "kws").as_deref(), Some("1.1.0"), "{s}");

    // Killed, it is marked offline by its last will; desired state that
    // changes meanwhile is applied once it is back.
    let _ = gw.child.kill();
    let _ = gw.child.wait();
    wait_status(port, "gw1", "offline", |s| s["online"] == false);
    let d = desire(port, &["--gateway", "gw1"], &oci("1.2.0"));
    let seq = d["sequence"].as_u64().unwrap();
    let _gw = gateway(&kit, "gw1", port, &[]);
    let s = wait_status(port, "gw1", "kws 1.2.0 after the restart", |s| {
        s["online"] == true && active(s, "kws").as_deref() == Some("1.2.0")
    });
    assert_eq!(s["reported"]["applied"][own].as_u64(), Some(seq), "{s}");
    // The ledger survived the restart: an older sequence is still refused.
    publish_retained(port, own, &forged(seq - 1, "1.2.0", &sha_120, "1.2.0"));
    let s = wait_status(
        port,
        "gw1",
        "the older sequence refused after a restart",
        |s| refusal(s).contains(&format!("sequence {} is older than {seq}", seq - 1)),
    );
    assert_eq!(active(&s, "kws").as_deref(), Some("1.2.0"), "{s}");
}

/// `hostile` bundles: `ok` answers every request, `panic` fails them all
/// (it has no self-test to fail first, like a bug only real traffic finds).
fn hostile(kit: &Kit, version: &str, mode: &str) -> String {
    kit.pack(
        "hostile",
        &format!("name = \"hostile\"\nversion = \"{version}\"\n[config]\nmode = \"{mode}\"\n"),
        "vendor",
        &format!("hostile-{version}.gpk"),
    )
}

#[test]
fn a_rollout_reaches_eight_gateways_in_waves_and_halts_at_a_bad_canary() {
    let kit = Kit::new("fleet-eight");
    let reg = Registry::start(&kit.dir.join("registry"));
    let port = free_port();
    let _broker = mosquitto("fleet-eight.conf", port, "persistence false\n");
    let url = format!("mqtt://127.0.0.1:{port}");
    let oci = |tag: &str| format!("oci://{}/gatehouse/hostile:{tag}", reg.addr);
    push(&hostile(&kit, "1.0.0", "ok"), &oci("1.0.0"));
    push(&hostile(&kit, "1.1.0", "ok"), &oci("1.1.0"));
    push(&hostile(&kit, "1.2.0", "panic"), &oci("1.2.0"));
    let config = write_config(
        "fleet-eight.toml",
        "[[route]]\ntopic = \"load/+\"\nplugin = \"hostile\"\nresult = \"results/{1}\"\n",
    );
    let ids: Vec<String> = (1..=8).map(|i| format!("gw{i}")).collect();
    let _gateways: Vec<Proc> = ids
        .iter()
        .map(|id| {
            gateway(
                &kit,
                id,
                port,
                &["--group", "line-a", "--config", config.to_str().unwrap()],
            )
        })
        .collect();

    // The group's document reaches all eight.
    desire(port, &["--group", "line-a"], &oci("1.0.0"));
    for id in &ids {
        wait_status(port, id, "hostile 1.0.0 from the group", |s| {
            active(s, "hostile").as_deref() == Some("1.0.0")
        });
    }

    // Real traffic, to every gateway, for as long as the rollouts last.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut pub_ = Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-l"])
                .args(["-t", "load/sensor"])
                .stdin(Stdio::piped())
                .spawn()
                .expect("mosquitto_pub");
            let mut stdin = pub_.stdin.take().unwrap();
            while !stop.load(Ordering::Relaxed) {
                use std::io::Write as _;
                if writeln!(stdin, "x").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(stdin);
            let _ = pub_.wait();
        })
    };

    let all = ids.join(",");
    let rollout = |tag: &str| {
        gatehouse(&[
            "fleet",
            "rollout",
            "--mqtt",
            &url,
            "--oci",
            &oci(tag),
            "--gateways",
            &all,
            "--canary",
            "1",
            "--soak-s",
            "3",
            "--max-error-rate",
            "0.05",
            "--timeout-s",
            "60",
        ])
    };

    // A good version: the canary, then waves of 2, 4 and the last one.
    let started = Instant::now();
    let good = rollout("1.1.0");
    let took = started.elapsed();
    let out = ok(&good);
    let waves: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sizes: Vec<usize> = waves
        .iter()
        .map(|w| w["gateways"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [1, 2, 4, 1], "{out}");
    for w in &waves {
        for (id, h) in w["soak"].as_object().unwrap() {
            assert!(
                h["requests"].as_u64().unwrap() > 0,
                "{id} had no traffic: {out}"
            );
            assert_eq!(h["errors"], 0, "{id}: {out}");
        }
    }
    for id in &ids {
        let s = &status(port)[id];
        assert_eq!(active(s, "hostile").as_deref(), Some("1.1.0"), "{id}: {s}");
    }
    eprintln!("rollout of a good version to 8 gateways: {took:?}");

    // A bad version halts at the canary, which is back on 1.1.0.
    let bad = rollout("1.2.0");
    assert!(!bad.status.success(), "the bad rollout went through");
    let out = String::from_utf8_lossy(&bad.stdout).into_owned();
    let halted: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(halted["wave"], 0, "{out}");
    assert_eq!(halted["gateways"], serde_json::json!(["gw1"]), "{out}");
    assert!(
        crate::common::stderr(&bad).contains("halted at wave 0"),
        "{}",
        crate::common::stderr(&bad)
    );
    let s = wait_status(port, "gw1", "the canary back on 1.1.0", |s| {
        active(s, "hostile").as_deref() == Some("1.1.0")
    });
    let rejected = s["reported"]["rejected"].as_array().unwrap();
    assert!(rejected.iter().any(|r| r["version"] == "1.2.0"), "{s}");
    // The rollout put the canary's desired state back.
    wait_status(port, "gw1", "desired 1.1.0 again", |s| {
        s["reported"]["plugins"]["hostile"]["desired"] == "1.1.0"
    });
    // Asked for the bad version again, the canary refuses it: it keeps
    // what it learned, whatever the broker says.
    desire(port, &["--gateway", "gw1"], &oci("1.2.0"));
    let s = wait_status(port, "gw1", "the bad version refused", |s| {
        refusal(s).contains("back after it failed requests")
    });
    assert_eq!(active(&s, "hostile").as_deref(), Some("1.1.0"), "{s}");
    for id in &ids[1..] {
        let s = &status(port)[id];
        assert_eq!(active(s, "hostile").as_deref(), Some("1.1.0"), "{id}: {s}");
        assert_eq!(
            s["reported"]["plugins"]["hostile"]["desired"], "1.1.0",
            "{id} was never asked for 1.2.0: {s}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let _ = load.join();
}
