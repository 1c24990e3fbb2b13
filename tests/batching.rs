//! Adaptive batching end to end: plugins of `gatehouse:plugin/batched@0.2.0`
//! get queued requests as batches, with the bytes each request would get
//! alone; misbehaviour inside a batch costs only the request that caused it;
//! 0.1.0 plugins keep being served one request at a time.

use std::time::Duration;

use gatehouse_runtime::{BatchPolicy, DeploySpec, Failure, InitConfig, Policy, Registry};
use gatehouse_scenarios::{plugin, root, runtime, temp_dir};

fn registry(tag: &str, max_batch: usize) -> Registry {
    Registry::new(
        runtime(&temp_dir(tag)),
        Policy {
            batching: BatchPolicy {
                max_batch,
                latency_budget: Duration::from_secs(10),
                workers: 1,
            },
            ..Policy::default()
        },
    )
}

/// The generic plugin with the ToyCar autoencoder: one 640-value frame per
/// request, a GEMM over the frames of a batch.
fn autoencoder() -> DeploySpec {
    let model = std::fs::read(root().join("models/mlperf-tiny/ad01_int8.tflite")).expect("model");
    DeploySpec {
        config: InitConfig {
            model: Some(model),
            settings: vec![],
        },
        ..DeploySpec::default()
    }
}

/// Frames that differ from each other, so a mixed-up batch shows.
fn frames(count: usize) -> Vec<Vec<u8>> {
    let mut x: u32 = 0x1234_5678;
    (0..count)
        .map(|_| {
            (0..640)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x >> 24) as u8
                })
                .collect()
        })
        .collect()
}

#[test]
fn batched_requests_get_the_bytes_they_get_alone() {
    let wasm = std::fs::read(plugin("tflite")).expect("tflite plugin");
    let inputs = frames(40);
    let alone = registry("batch-alone", 1);
    alone
        .deploy(&wasm, "tflite", autoencoder())
        .expect("deploy");
    assert_eq!(alone.active("tflite").expect("active").batching(), None);
    let want: Vec<Vec<u8>> = inputs
        .iter()
        .map(|i| {
            alone
                .infer("tflite", i)
                .expect("infer")
                .inference
                .output
                .expect("output")
        })
        .collect();

    let batched = registry("batch-many", 16);
    batched
        .deploy(&wasm, "tflite", autoencoder())
        .expect("deploy");
    assert!(batched.active("tflite").expect("active").plugin().batches());
    // All in flight at once, plus one malformed request in the middle.
    let mut pending: Vec<_> = inputs.iter().map(|i| batched.submit("tflite", i)).collect();
    pending.insert(20, batched.submit("tflite", &[1, 2, 3]));
    let mut got = Vec::new();
    for (k, p) in pending.into_iter().enumerate() {
        match p.wait() {
            Ok(s) => got.push(s.inference.output.expect("output")),
            Err(e) => {
                assert_eq!(k, 20, "only the malformed request fails: {e}");
                assert!(matches!(e.failure(), Some(Failure::InvalidInput(_))), "{e}");
            }
        }
    }
    assert_eq!(got, want);
    let stats = batched
        .active("tflite")
        .expect("active")
        .batching()
        .expect("batched");
    assert_eq!(stats.requests, 41);
    // 41 requests in batches of at most 16: three batches.
    assert_eq!(stats.batches, 3, "{stats:?}");
}

#[test]
fn a_trap_in_a_batch_fails_only_its_request() {
    let reg = registry("batch-trap", 8);
    let spec = DeploySpec {
        config: InitConfig {
            model: None,
            settings: vec![("mode".into(), "trap-on-ff".into())],
        },
        ..DeploySpec::default()
    };
    reg.deploy(
        &std::fs::read(plugin("hostile")).expect("hostile"),
        "h",
        spec,
    )
    .expect("deploy");
    let inputs: Vec<Vec<u8>> = (0u8..8)
        .map(|i| vec![if i == 5 { 0xff } else { i }, 7])
        .collect();
    let pending: Vec<_> = inputs.iter().map(|i| reg.submit("hostile", i)).collect();
    for (k, p) in pending.into_iter().enumerate() {
        match p.wait() {
            Ok(s) => assert_eq!(s.inference.output.as_ref(), Some(&inputs[k])),
            Err(e) => {
                assert_eq!(k, 5, "only the request that traps fails: {e}");
                assert!(e.failure().is_some_and(Failure::is_trap), "{e}");
            }
        }
    }
    // The instance was replaced and serves on.
    assert!(reg.infer("hostile", &[1]).is_ok());
}

#[test]
fn plugins_of_0_1_0_are_served_one_request_at_a_time() {
    let reg = registry("batch-old", 16);
    reg.deploy(
        &std::fs::read(plugin("kws")).expect("kws"),
        "kws",
        DeploySpec::default(),
    )
    .expect("deploy");
    let active = reg.active("kws").expect("active");
    assert!(!active.plugin().batches());
    assert_eq!(active.batching(), None);
    let wav = std::fs::read(root().join("examples/data/kws/synth_yes_en-us.wav")).expect("wav");
    let pending: Vec<_> = (0..3).map(|_| reg.submit("kws", &wav)).collect();
    for p in pending {
        assert_eq!(
            p.wait().expect("infer").inference.label.as_deref(),
            Some("yes")
        );
    }
}
