//! Hot swap: versions replaced under load with no failed or lost request,
//! self-tests that keep a bad version out, automatic rollback, the circuit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use gatehouse_runtime::{CircuitPolicy, HealthPolicy};
use gatehouse_runtime::{
    DeploySpec, Error, Expect, Failure, InitConfig, Policy, Registry, SelfTest,
};
use gatehouse_scenarios::{plugin, root, runtime, temp_dir};

fn registry(tag: &str, policy: Policy) -> Registry {
    Registry::new(runtime(&temp_dir(tag)), policy)
}

fn hostile(mode: &str) -> DeploySpec {
    DeploySpec {
        config: InitConfig {
            model: None,
            settings: vec![("mode".into(), mode.into())],
        },
        ..DeploySpec::default()
    }
}

fn yes_wav() -> Vec<u8> {
    std::fs::read(root().join("examples/data/kws/synth_yes_en-us.wav")).expect("wav")
}

#[test]
fn a_hundred_swaps_under_load_lose_nothing() {
    let reg = Arc::new(registry(
        "swaps",
        Policy {
            pool_size: 4,
            ..Policy::default()
        },
    ));
    let wasm = std::fs::read(plugin("kws")).expect("kws");
    reg.deploy(&wasm, "kws.wasm", DeploySpec::default())
        .expect("first deploy");
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (reg, stop, ok, failed) = (reg.clone(), stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let wav = yes_wav();
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    sent += 1;
                    match reg.infer("kws", &wav) {
                        Ok(s) if s.inference.label.as_deref() == Some("yes") => {
                            ok.fetch_add(1, Ordering::Relaxed)
                        }
                        Ok(s) => panic!("wrong answer {:?}", s.inference.label),
                        Err(e) => {
                            eprintln!("request failed: {e}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
                sent
            })
        })
        .collect();
    for i in 0..100 {
        let d = reg
            .deploy(&wasm, "kws.wasm", DeploySpec::default())
            .expect("swap");
        assert_eq!(
            d.replaced.as_ref().map(|p| p.name.as_str()),
            Some("kws"),
            "swap {i}"
        );
    }
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(failed, 0);
    assert_eq!(ok, sent, "every request sent got an answer");
    assert!(ok > 0);
    assert_eq!(reg.list()[0].swaps, 100);
}

#[test]
fn a_version_that_fails_its_self_test_never_serves() {
    let reg = registry("selftest", Policy::default());
    let wasm = std::fs::read(plugin("kws")).expect("kws");
    let good = SelfTest {
        input: yes_wav(),
        expect: Expect::Label("yes".into()),
    };
    reg.deploy(
        &wasm,
        "kws.wasm",
        DeploySpec {
            self_test: Some(good),
            ..DeploySpec::default()
        },
    )
    .expect("good self-test");
    let bad = SelfTest {
        input: yes_wav(),
        expect: Expect::Label("no".into()),
    };
    let err = reg
        .deploy(
            &wasm,
            "kws.wasm",
            DeploySpec {
                self_test: Some(bad),
                ..DeploySpec::default()
            },
        )
        .expect_err("wrong label");
    assert!(
        matches!(&err, Error::DeployRefused { reason, .. } if reason.contains("expected label \"no\", got Some(\"yes\")")),
        "{err}"
    );
    let junk = SelfTest {
        input: b"not audio".to_vec(),
        expect: Expect::Success,
    };
    let err = reg
        .deploy(
            &wasm,
            "kws.wasm",
            DeploySpec {
                self_test: Some(junk),
                ..DeploySpec::default()
            },
        )
        .expect_err("failing input");
    assert!(err.to_string().contains("self-test failed"), "{err}");
    // Nothing changed: the first version serves, no swap happened.
    assert_eq!(reg.list()[0].swaps, 0);
    assert!(reg.infer("kws", &yes_wav()).is_ok());
    // A trapping version is refused by its self-test too.
    reg.deploy(
        &std::fs::read(plugin("hostile")).unwrap(),
        "h.wasm",
        hostile("ok"),
    )
    .expect("hostile ok");
    let mut spec = hostile("panic");
    spec.self_test = Some(SelfTest {
        input: b"x".to_vec(),
        expect: Expect::Success,
    });
    assert!(
        reg.deploy(&std::fs::read(plugin("hostile")).unwrap(), "h.wasm", spec)
            .is_err()
    );
    assert_eq!(
        reg.infer("hostile", b"ping")
            .expect("old version serves")
            .inference
            .output
            .as_deref(),
        Some(&b"ping"[..])
    );
}

#[test]
fn a_version_that_traps_on_every_call_is_rolled_back() {
    let health = HealthPolicy {
        window: Duration::from_secs(60),
        min_requests: 5,
        max_error_rate: 0.5,
        max_p99: None,
    };
    let reg = registry(
        "rollback",
        Policy {
            health,
            ..Policy::default()
        },
    );
    let wasm = std::fs::read(plugin("hostile")).expect("hostile");
    reg.deploy(&wasm, "v1", hostile("ok"))
        .expect("good version");
    reg.deploy(&wasm, "v2", hostile("panic"))
        .expect("bad version deploys (no self-test)");
    let mut failures = 0;
    let mut after = 0;
    for _ in 0..40 {
        match reg.infer("hostile", b"ping") {
            Ok(s) => {
                assert_eq!(s.inference.output.as_deref(), Some(&b"ping"[..]));
                after += 1;
            }
            Err(e) => {
                assert_eq!(after, 0, "a failure after the rollback: {e}");
                failures += 1;
            }
        }
    }
    // Rolled back once the window held enough evidence: min_requests failures.
    assert_eq!(failures, 5);
    assert_eq!(after, 35);
    let st = &reg.list()[0];
    assert_eq!((st.swaps, st.rollbacks), (1, 1));
}

#[test]
fn repeated_traps_open_the_circuit_then_it_closes() {
    let circuit = CircuitPolicy {
        consecutive_traps: 3,
        cooldown: Duration::from_millis(300),
    };
    let reg = registry(
        "circuit",
        Policy {
            circuit,
            ..Policy::default()
        },
    );
    reg.deploy(
        &std::fs::read(plugin("hostile")).unwrap(),
        "h",
        hostile("panic"),
    )
    .expect("deploy");
    for _ in 0..3 {
        let e = reg.infer("hostile", b"x").expect_err("traps");
        assert!(e.failure().is_some_and(Failure::is_trap), "{e}");
    }
    // Open: requests fail without entering the sandbox (a call that ran
    // would trap, as the three before did).
    let e = reg.infer("hostile", b"x").expect_err("circuit open");
    assert!(matches!(e.failure(), Some(Failure::CircuitOpen(_))), "{e}");
    // After the cool-down, half-open: the next request probes (and traps
    // again here). Polled, so a slow machine only waits longer.
    let start = std::time::Instant::now();
    let probe = loop {
        let e = reg.infer("hostile", b"x").expect_err("probe");
        if !matches!(e.failure(), Some(Failure::CircuitOpen(_))) {
            break e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the circuit never half-opened"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "closed before its cool-down"
    );
    assert!(probe.failure().is_some_and(Failure::is_trap), "{probe}");
}

#[test]
fn rollback_and_remove_by_hand() {
    let reg = registry("manual", Policy::default());
    let wasm = std::fs::read(plugin("hostile")).unwrap();
    assert!(matches!(
        reg.rollback("hostile"),
        Err(Error::NotDeployed(_))
    ));
    reg.deploy(&wasm, "v1", hostile("ok")).unwrap();
    assert!(reg.rollback("hostile").is_err(), "nothing to roll back to");
    reg.deploy(&wasm, "v2", hostile("panic")).unwrap();
    reg.rollback("hostile").expect("rollback");
    assert!(reg.infer("hostile", b"a").is_ok());
    reg.remove("hostile").expect("remove");
    assert!(matches!(
        reg.infer("hostile", b"a"),
        Err(Error::NotDeployed(_))
    ));
}
