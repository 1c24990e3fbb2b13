//! Over the air: signed bundles through the admin API, the trust matrix,
//! the token, `kill -9` at each deploy step, a full disk, automatic rollback
//! made durable, and an OCI round trip through a real registry.

use std::os::unix::process::ExitStatusExt as _;
use std::time::{Duration, Instant};

use crate::common::gatehouse;
use crate::common::gateway::{Daemon, Kit, TOKEN, http, ok};
use crate::common::services::Registry;
use gatehouse_ota::bundle::{COMPONENT, MANIFEST, SIGNATURE};
use gatehouse_ota::{Bundle, FaultPoint, Manifest};
use serde_json::Value;

fn read(p: &str) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

fn rebundle(bytes: &[u8], f: impl FnOnce(Bundle) -> Bundle) -> Vec<u8> {
    f(Bundle::parse(bytes).unwrap()).to_bytes().unwrap()
}

#[test]
fn pack_and_verify_from_the_command_line() {
    let kit = Kit::new("ota-cli");
    let b = kit.kws("1.0.0");
    let out = ok(&gatehouse(&["verify", &b, "--trust", &kit.path("trust")]));
    assert!(
        out.contains("kws@1.0.0") && out.contains("valid and trusted"),
        "{out}"
    );
    // Another gateway that trusts only the stranger refuses it.
    std::fs::create_dir_all(kit.dir.join("other")).unwrap();
    std::fs::copy(
        kit.dir.join("stranger/signing.pub"),
        kit.dir.join("other/s.pub"),
    )
    .unwrap();
    let o = gatehouse(&["verify", &b, "--trust", &kit.path("other")]);
    assert!(!o.status.success());
    assert!(
        crate::common::stderr(&o).contains("not in the trust folder"),
        "{}",
        crate::common::stderr(&o)
    );
    let tampered = kit.path("tampered.gpk");
    std::fs::write(
        &tampered,
        rebundle(&read(&b), |x| {
            let mut c = x.component().to_vec();
            let n = c.len();
            c[n - 1] ^= 1;
            x.with_entry(COMPONENT, c)
        }),
    )
    .unwrap();
    let o = gatehouse(&["verify", &tampered, "--trust", &kit.path("trust")]);
    assert!(!o.status.success());
    assert!(
        crate::common::stderr(&o).contains("tampered"),
        "{}",
        crate::common::stderr(&o)
    );
}

#[test]
fn the_trust_matrix_through_the_admin_api_changes_nothing() {
    let kit = Kit::new("ota-trust");
    let v1 = read(&kit.kws("1.0.0"));
    let v2 = read(&kit.kws("2.0.0"));
    let d = Daemon::start(&kit, None);
    assert_eq!(d.put(&v1, "kws").0, 200);
    let store_before = std::fs::read(kit.dir.join("store/plugins/kws.json")).unwrap();

    let mut bumped =
        Manifest::parse(std::str::from_utf8(Bundle::parse(&v1).unwrap().manifest_bytes()).unwrap())
            .unwrap();
    bumped.version = "9.0.0".parse().unwrap();
    let stranger = kit.pack(
        "kws",
        "name = \"kws\"\nversion = \"3.0.0\"\n",
        "stranger",
        "stranger.gpk",
    );
    let greedy = kit.pack(
        "kws",
        "name = \"kws\"\nversion = \"3.0.0\"\n[limits]\nmemory-mib = 4096\n",
        "vendor",
        "greedy.gpk",
    );
    let curious = kit.pack(
        "kws",
        "name = \"kws\"\nversion = \"3.0.0\"\ncapabilities = [\"state\"]\n",
        "vendor",
        "curious.gpk",
    );
    let failing_self_test = kit.pack(
        "kws",
        "name = \"kws\"\nversion = \"3.0.0\"\n[self-test]\ninput = \"yes.wav\"\nlabel = \"no\"\n",
        "vendor",
        "selftest.gpk",
    );
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "unsigned",
            rebundle(&v2, |b| b.without_entry(SIGNATURE)),
            403,
            "not signed",
        ),
        (
            "tampered manifest",
            rebundle(&v2, |b| {
                b.with_entry(MANIFEST, bumped.to_toml().into_bytes())
            }),
            403,
            "signature does not match",
        ),
        (
            "tampered component",
            rebundle(&v2, |b| {
                let mut c = b.component().to_vec();
                c[100] ^= 0x40;
                b.with_entry(COMPONENT, c)
            }),
            403,
            "tampered",
        ),
        (
            "unknown key",
            read(&stranger),
            403,
            "not in the trust folder",
        ),
        (
            "limits over policy",
            read(&greedy),
            403,
            "4096 MiB of memory",
        ),
        ("capability", read(&curious), 403, "does not grant"),
        (
            "self-test fails",
            read(&failing_self_test),
            422,
            "self-test expected label \"no\"",
        ),
        ("not a bundle", b"garbage".to_vec(), 400, "malformed"),
    ];
    for (what, bytes, status, says) in cases {
        let (s, v) = d.put(&bytes, "kws");
        assert_eq!(s, status, "{what}: {v}");
        assert!(
            v["error"].as_str().unwrap_or("").contains(says),
            "{what}: {v}"
        );
        assert_eq!(
            d.versions("kws"),
            (Some("1.0.0".into()), Some("1.0.0".into())),
            "{what}"
        );
    }
    // Addressed to another plugin's name.
    let (s, v) = d.put(&v2, "vww");
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        std::fs::read(kit.dir.join("store/plugins/kws.json")).unwrap(),
        store_before
    );

    // Upgrade, then a rollback attack, refused unless forced.
    assert_eq!(d.put(&v2, "kws").0, 200);
    let (s, v) = d.put(&v1, "kws");
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("rollback attack"),
        "{v}"
    );
    assert_eq!(d.versions("kws").0.as_deref(), Some("2.0.0"));
    let (s, v) = d.call("PUT", "/v1/plugins/kws?force=true", Some(TOKEN), v1.clone());
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        d.versions("kws"),
        (Some("1.0.0".into()), Some("1.0.0".into()))
    );
    // The same bundle again is a no-op, not a swap.
    let (s, v) = d.put(&v1, "kws");
    assert_eq!((s, v["unchanged"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(
        d.infer_label("kws", &read(&kit.path("yes.wav"))),
        ("1.0.0".into(), "yes".into())
    );
}

#[test]
fn every_call_but_healthz_needs_the_token() {
    let kit = Kit::new("ota-token");
    let v1 = read(&kit.kws("1.0.0"));
    let d = Daemon::start(&kit, None);
    let (s, v) = d.call("GET", "/healthz", None, vec![]);
    assert_eq!((s, v), (200, Value::String("ok\n".into())));
    assert_eq!(d.put(&v1, "kws").0, 200);
    let wav = read(&kit.path("yes.wav"));
    let calls: Vec<(&str, &str, Vec<u8>)> = vec![
        ("GET", "/metrics", vec![]),
        ("GET", "/v1/plugins", vec![]),
        ("PUT", "/v1/plugins/kws", read(&kit.kws("2.0.0"))),
        (
            "POST",
            "/v1/plugins",
            b"{\"oci\":\"oci://127.0.0.1:1/x:y\"}".to_vec(),
        ),
        ("POST", "/v1/plugins/kws/rollback", vec![]),
        ("DELETE", "/v1/plugins/kws", vec![]),
        ("POST", "/v1/plugins/kws/infer", wav.clone()),
    ];
    let wrong = format!("{TOKEN}x");
    for (m, p, body) in &calls {
        for token in [
            None,
            Some(""),
            Some(&TOKEN[..TOKEN.len() - 1]),
            Some(wrong.as_str()),
        ] {
            let (s, v) = d.call(m, p, token, body.clone());
            assert_eq!(s, 401, "{m} {p} with {token:?}: {v}");
        }
    }
    assert_eq!(
        d.versions("kws"),
        (Some("1.0.0".into()), Some("1.0.0".into()))
    );
    assert!(kit.dir.join("store/plugins/kws.json").is_file());
    // And with it, they work; the refused calls served nothing.
    assert_eq!(d.infer_label("kws", &wav).1, "yes");
    let (s, v) = d.call("GET", "/metrics", Some(TOKEN), vec![]);
    assert_eq!(s, 200);
    assert!(
        v.as_str()
            .unwrap()
            .contains("gatehouse_requests_total{plugin=\"kws\"} 1\n"),
        "{v}"
    );
}

#[test]
fn a_kill_at_each_deploy_step_restarts_into_a_known_good_set() {
    let kit = Kit::new("ota-kill");
    let v1 = read(&kit.kws("1.0.0"));
    let v2 = read(&kit.kws("2.0.0"));
    let wav = read(&kit.path("yes.wav"));
    for point in FaultPoint::ALL {
        let _ = std::fs::remove_dir_all(kit.dir.join("store"));
        {
            let d = Daemon::start(&kit, None);
            assert_eq!(d.put(&v1, "kws").0, 200);
        }
        let mut d = Daemon::start(&kit, Some(&format!("kill@{}", point.as_str())));
        let client = http();
        let r = client
            .put(format!("{}/v1/plugins/kws", d.url))
            .bearer_auth(TOKEN)
            .body(v2.clone())
            .send();
        assert!(
            r.is_err(),
            "{point:?}: the deploy must die with the daemon: {r:?}"
        );
        let status = d.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "{point:?}: {}", d.log());
        drop(d);

        let d = Daemon::start(&kit, None);
        // Until the record is renamed into place, the old version is the
        // known-good one; from then on, the new one.
        let expect = if matches!(point, FaultPoint::PointerRenamed | FaultPoint::Activated) {
            "2.0.0"
        } else {
            "1.0.0"
        };
        assert_eq!(
            d.versions("kws"),
            (Some(expect.into()), Some(expect.into())),
            "{point:?}: {}",
            d.log()
        );
        assert_eq!(
            d.infer_label("kws", &wav),
            (expect.into(), "yes".into()),
            "{point:?}"
        );
        assert_eq!(
            std::fs::read_dir(kit.dir.join("store/tmp"))
                .unwrap()
                .count(),
            0,
            "{point:?}"
        );
        // The interrupted deploy can simply be retried.
        let (s, v) = d.put(&v2, "kws");
        assert_eq!(s, 200, "{point:?}: {v}");
        assert_eq!(d.versions("kws").0.as_deref(), Some("2.0.0"));
    }
}

#[test]
fn a_full_disk_during_a_deploy_leaves_the_active_version() {
    let kit = Kit::new("ota-full");
    let v1 = read(&kit.kws("1.0.0"));
    let v2 = read(&kit.kws("2.0.0"));
    let wav = read(&kit.path("yes.wav"));
    {
        let d = Daemon::start(&kit, None);
        assert_eq!(d.put(&v1, "kws").0, 200);
    }
    for point in ["blob-write", "pointer-write"] {
        let d = Daemon::start(&kit, Some(&format!("enospc@{point}")));
        let (s, v) = d.put(&v2, "kws");
        assert_eq!(s, 507, "{point}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("No space left"),
            "{point}: {v}"
        );
        assert_eq!(
            d.versions("kws"),
            (Some("1.0.0".into()), Some("1.0.0".into())),
            "{point}"
        );
        assert_eq!(d.infer_label("kws", &wav), ("1.0.0".into(), "yes".into()));
        assert_eq!(
            std::fs::read_dir(kit.dir.join("store/tmp"))
                .unwrap()
                .count(),
            0
        );
    }
}

#[test]
fn an_automatic_rollback_survives_a_restart() {
    let kit = Kit::new("ota-health");
    let good = read(&kit.pack(
        "hostile",
        "name = \"hostile\"\nversion = \"1.0.0\"\n",
        "vendor",
        "h1.gpk",
    ));
    let bad = read(&kit.pack(
        "hostile",
        "name = \"hostile\"\nversion = \"1.1.0\"\n[config]\nmode = \"panic\"\n",
        "vendor",
        "h2.gpk",
    ));
    {
        let d = Daemon::start(&kit, None);
        assert_eq!(d.put(&good, "hostile").0, 200);
        assert_eq!(d.put(&bad, "hostile").0, 200);
        let mut failures = 0;
        let start = Instant::now();
        while d.versions("hostile").0.as_deref() != Some("1.0.0") {
            let (s, _) = d.call(
                "POST",
                "/v1/plugins/hostile/infer",
                Some(TOKEN),
                b"x".to_vec(),
            );
            failures += (s != 200) as u32;
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no rollback: {}",
                d.log()
            );
        }
        assert!(failures <= 10, "{failures} failures before the rollback");
        let (_, m) = d.call("GET", "/metrics", Some(TOKEN), vec![]);
        assert!(
            m.as_str()
                .unwrap()
                .contains("gatehouse_rollbacks_total{plugin=\"hostile\"} 1"),
            "{m}"
        );
    }
    let d = Daemon::start(&kit, None);
    assert_eq!(
        d.versions("hostile"),
        (Some("1.0.0".into()), Some("1.0.0".into()))
    );
    assert_eq!(
        d.call(
            "POST",
            "/v1/plugins/hostile/infer",
            Some(TOKEN),
            b"x".to_vec()
        )
        .0,
        200
    );
}

#[test]
fn operator_rollback_and_remove_from_the_command_line() {
    let kit = Kit::new("ota-ops");
    let (b1, b2) = (kit.kws("1.0.0"), kit.kws("1.1.0"));
    let d = Daemon::start(&kit, None);
    let to = ["--to", d.url.as_str(), "--token-file", &kit.path("token")];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(to.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>| gatehouse(&args.iter().map(String::as_str).collect::<Vec<_>>());
    ok(&run(with(&["deploy", &b1])));
    ok(&run(with(&["deploy", &b2])));
    let list = ok(&run(with(&["plugins", "list"])));
    assert!(
        list.contains("\"serving\":\"1.1.0\"") && list.contains("\"previous\":\"1.0.0\""),
        "{list}"
    );
    // After a restart only the active version is loaded: the rollback loads
    // the previous one from the store.
    drop(d);
    let d = Daemon::start(&kit, None);
    let to = ["--to", d.url.as_str(), "--token-file", &kit.path("token")];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(to.iter())
            .map(|s| s.to_string())
            .collect()
    };
    ok(&run(with(&["plugins", "rollback", "kws"])));
    assert_eq!(
        d.versions("kws"),
        (Some("1.0.0".into()), Some("1.0.0".into()))
    );
    assert_eq!(
        d.infer_label("kws", &read(&kit.path("yes.wav"))),
        ("1.0.0".into(), "yes".into())
    );
    // Nothing further back to go to.
    let o = run(with(&["plugins", "rollback", "kws"]));
    assert!(
        !o.status.success() && crate::common::stderr(&o).contains("no previous version"),
        "{}",
        crate::common::stderr(&o)
    );
    ok(&run(with(&["plugins", "remove", "kws"])));
    assert_eq!(d.versions("kws"), (None, None));
    let (s, _) = d.call(
        "POST",
        "/v1/plugins/kws/infer",
        Some(TOKEN),
        read(&kit.path("yes.wav")),
    );
    assert_eq!(s, 404);
    // A wrong token from the command line fails clearly.
    std::fs::write(kit.dir.join("bad-token"), "not-the-token-at-all").unwrap();
    let o = gatehouse(&[
        "plugins",
        "list",
        "--to",
        &d.url,
        "--token-file",
        &kit.path("bad-token"),
    ]);
    assert!(
        !o.status.success() && crate::common::stderr(&o).contains("401"),
        "{}",
        crate::common::stderr(&o)
    );
}

#[test]
fn an_oci_round_trip_push_then_deploy_by_reference() {
    let kit = Kit::new("ota-oci");
    let reg = Registry::start(&kit.dir.join("registry"));
    let b = kit.kws("1.2.0");
    let reference = format!("oci://{}/gatehouse/kws:1.2.0", reg.addr);
    let out = ok(&gatehouse(&["push", &b, &reference]));
    assert!(out.contains("kws@1.2.0 pushed"), "{out}");
    // The artifact is in the CNCF wasm layout.
    let manifest: Value = http()
        .get(format!(
            "http://{}/v2/gatehouse/kws/manifests/1.2.0",
            reg.addr
        ))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"application/wasm"), "{types:?}");

    let d = Daemon::start(&kit, None);
    let to = ["--to", d.url.as_str(), "--token-file", &kit.path("token")];
    let mut args = vec!["deploy", reference.as_str()];
    args.extend(to);
    let out = ok(&gatehouse(&args));
    assert!(out.contains("\"version\":\"1.2.0\""), "{out}");
    assert_eq!(
        d.infer_label("kws", &read(&kit.path("yes.wav"))),
        ("1.2.0".into(), "yes".into())
    );
    // What the gateway stored is the very bundle that was pushed.
    let stored = std::fs::read(
        kit.dir
            .join("store/blobs")
            .join(format!("{}.gpk", gatehouse_ota::sha256_hex(&read(&b)))),
    );
    assert!(
        stored.is_ok(),
        "the pulled bundle is byte-identical to the pushed one"
    );

    // A registry serving something unsigned gets nowhere.
    let unsigned = rebundle(&read(&kit.kws("1.3.0")), |x| x.without_entry(SIGNATURE));
    let evil = kit.dir.join("unsigned.gpk");
    std::fs::write(&evil, unsigned).unwrap();
    let r2 = format!("oci://{}/gatehouse/kws:1.3.0", reg.addr);
    ok(&gatehouse(&["push", evil.to_str().unwrap(), &r2]));
    let mut args = vec!["deploy", r2.as_str()];
    args.extend(to);
    let o = gatehouse(&args);
    assert!(
        !o.status.success() && crate::common::stderr(&o).contains("not signed"),
        "{}",
        crate::common::stderr(&o)
    );
    assert_eq!(d.versions("kws").0.as_deref(), Some("1.2.0"));
}
