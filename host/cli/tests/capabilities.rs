//! Capabilities through a gateway: a bundle asks, the operator's policy
//! grants, and the `state` directory lives as long as the plugin does.

use crate::common::gatehouse;
use crate::common::gateway::{Daemon, Kit, TOKEN, ok};

/// The hostile test plugin counting its calls in `/state/count`.
fn counter(kit: &Kit, version: &str, state_kib: u32) -> Vec<u8> {
    let p = kit.pack(
        "hostile",
        &format!(
            "name = \"hostile\"\nversion = \"{version}\"\ncapabilities = [\"state\"]\n\
             [limits]\nstate-kib = {state_kib}\n[config]\nmode = \"state-count\"\n"
        ),
        "vendor",
        &format!("counter-{version}.gpk"),
    );
    std::fs::read(p).unwrap()
}

fn count(d: &Daemon) -> (String, f64) {
    let (s, v) = d.call(
        "POST",
        "/v1/plugins/hostile/infer",
        Some(TOKEN),
        b"x".to_vec(),
    );
    assert_eq!(s, 200, "{v}");
    (
        v["version"].as_str().unwrap_or_default().to_string(),
        v["score"].as_f64().unwrap_or(-1.0),
    )
}

#[test]
fn a_capability_is_refused_unless_the_policy_grants_it() {
    let kit = Kit::new("cap-refused");
    let bundle = counter(&kit, "1.0.0", 64);
    let d = Daemon::start(&kit, None);
    let (s, v) = d.put(&bundle, "hostile");
    assert_eq!(s, 403, "{v}");
    assert!(v.to_string().contains("capability \\\"state\\\""), "{v}");
    assert_eq!(d.versions("hostile"), (None, None));
    drop(d);
    // Granted, but not that much of it.
    let d = Daemon::start_with(
        &kit,
        None,
        &["--allow-capabilities", "state", "--max-state-kib", "32"],
    );
    let (s, v) = d.put(&bundle, "hostile");
    assert_eq!(s, 403, "{v}");
    assert!(v.to_string().contains("64 KiB of state"), "{v}");
}

#[test]
fn state_outlives_swaps_and_restarts_and_goes_with_the_plugin() {
    let kit = Kit::new("cap-state");
    let allow = ["--allow-capabilities", "state"];
    let d = Daemon::start_with(&kit, None, &allow);
    let (s, v) = d.put(&counter(&kit, "1.0.0", 64), "hostile");
    assert_eq!(s, 200, "{v}");
    assert_eq!(count(&d), ("1.0.0".into(), 1.0));
    assert_eq!(count(&d), ("1.0.0".into(), 2.0));
    // The next version sees what the last one wrote.
    let (s, v) = d.put(&counter(&kit, "1.1.0", 64), "hostile");
    assert_eq!(s, 200, "{v}");
    assert_eq!(count(&d), ("1.1.0".into(), 3.0));
    let dir = kit.dir.join("store/state/hostile");
    assert_eq!(std::fs::read_to_string(dir.join("count")).unwrap(), "3\n");
    // So does the same version after a restart.
    drop(d);
    let d = Daemon::start_with(&kit, None, &allow);
    assert_eq!(count(&d), ("1.1.0".into(), 4.0));
    // Removing the plugin removes its state: a later deploy starts afresh.
    ok(&gatehouse(&[
        "plugins",
        "remove",
        "hostile",
        "--to",
        &d.url,
        "--token-file",
        &kit.path("token"),
    ]));
    assert!(!dir.exists(), "{} outlived its plugin", dir.display());
    let (s, v) = d.put(&counter(&kit, "1.2.0", 64), "hostile");
    assert_eq!(s, 200, "{v}");
    assert_eq!(count(&d), ("1.2.0".into(), 1.0));
}

#[test]
fn an_unknown_capability_is_refused_when_packed_and_when_granted() {
    let kit = Kit::new("cap-unknown");
    let manifest = kit.dir.join("net.toml");
    std::fs::write(
        &manifest,
        "name = \"kws\"\nversion = \"1.0.0\"\ncapabilities = [\"network\"]\n",
    )
    .unwrap();
    let o = gatehouse(&[
        "pack",
        "--component",
        crate::common::root()
            .join("target/plugins/kws.wasm")
            .to_str()
            .unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--key",
        &kit.path("vendor/signing.key"),
        "--out",
        &kit.path("net.gpk"),
    ]);
    let err = crate::common::stderr(&o);
    assert!(
        !o.status.success() && err.contains("unknown capability \"network\""),
        "{err}"
    );
    let o = gatehouse(&["serve", "--allow-capabilities", "network"]);
    let err = crate::common::stderr(&o);
    assert!(
        !o.status.success() && err.contains("unknown capability"),
        "{err}"
    );
}

#[test]
fn check_lists_every_import_with_what_a_gateway_would_do() {
    let hostile = crate::common::root().join("target/plugins/hostile.wasm");
    let hostile = hostile.to_str().unwrap();
    let out = ok(&gatehouse(&["check", hostile]));
    assert!(
        out.starts_with("world: gatehouse:plugin/batched@0.2.0\n"),
        "{out}"
    );
    let line = |text: &str, import: &str| -> String {
        text.lines()
            .find(|l| l.trim_start().starts_with(import))
            .unwrap_or_else(|| panic!("{import} missing from\n{text}"))
            .to_string()
    };
    assert!(line(&out, "wasi:sockets/tcp@").contains("denied"), "{out}");
    assert!(
        line(&out, "wasi:cli/environment@").contains("denied"),
        "{out}"
    );
    assert!(line(&out, "wasi:cli/stdout@").contains("granted"), "{out}");
    assert!(
        line(&out, "gatehouse:nn/plan@0.1.0").contains("granted"),
        "{out}"
    );
    assert!(
        line(&out, "wasi:filesystem/preopens@").contains("needs the \"state\" capability"),
        "{out}"
    );
    let granted = ok(&gatehouse(&[
        "check",
        hostile,
        "--allow-capabilities",
        "state",
    ]));
    assert!(
        line(&granted, "wasi:filesystem/preopens@").contains("granted by the policy"),
        "{granted}"
    );
    let junk = crate::common::tmp("check-junk.wasm");
    std::fs::write(&junk, b"\0asm not really").unwrap();
    let o = gatehouse(&["check", junk.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", crate::common::stderr(&o));
}
