//! A JavaScript plugin, built by componentize-js from `guest-models/js-bright`
//! with its default WASI imports (and `wasi:http`, which the host leaves
//! unprovided), runs under the same sandbox as the Rust and Python ones.

use gatehouse_runtime::{Failure, InitConfig, Limits, Runtime};
use gatehouse_scenarios::{instance, plugin, root, runtime};

/// One cache: the component is 12 MB, compiled once for these tests.
fn rt() -> Runtime {
    runtime(&root().join("target/test-tmp/javascript-cache"))
}

#[test]
fn the_javascript_plugin_answers_and_keeps_answering_within_its_memory() {
    let rt = rt();
    let mut p = instance(&rt, "js-bright", &[], Limits::default());
    let d = p.plugin().descriptor().clone();
    assert_eq!((d.id.name.as_str(), d.labels.len()), ("js-bright", 2));
    for (input, label, score) in [
        (vec![200u8; 64], "bright", 200.0),
        (vec![3u8, 5], "dark", 4.0),
    ] {
        let inf = p.process(&input).unwrap();
        assert_eq!(inf.label.as_deref(), Some(label));
        assert_eq!(inf.score, Some(score));
    }
    // Its interpreter's heap stays under the default 64 MiB cap over many
    // calls (stubbed WASI made it outgrow the cap after 10-300).
    for i in 0..2000u32 {
        let input = vec![(i % 256) as u8; 1024];
        let inf = p
            .process(&input)
            .unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert_eq!(inf.score, Some(f64::from(i % 256)));
    }
    assert_eq!(p.replacements(), 0, "never trapped");
}

#[test]
fn javascript_errors_reach_the_operator_by_kind() {
    let rt = rt();
    let mut p = instance(&rt, "js-bright", &[], Limits::default());
    let err = p.process(b"").expect_err("empty input");
    assert_eq!(
        err.failure(),
        Some(&Failure::InvalidInput("empty input".into())),
        "{err}"
    );
    let loaded = rt
        .load_file(&plugin("js-bright"), Limits::default())
        .unwrap();
    let bad = loaded.instantiate(InitConfig {
        model: None,
        settings: vec![("threshold".into(), "bright-ish".into())],
    });
    match bad.err().and_then(|e| e.failure().cloned()) {
        Some(Failure::InvalidConfig(m)) => assert!(m.contains("threshold"), "{m}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}
