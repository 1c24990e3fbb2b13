//! A hostile plugin cannot hurt the host or its neighbours: after each abuse
//! the `kws` plugin in the same runtime still answers correctly.

use std::time::{Duration, Instant};

use gatehouse_kernels::dispatch::SCALAR;
use gatehouse_kernels::{Conv2d, KernelError, KernelSet};
use gatehouse_runtime::{Failure, InitConfig, Instance, Limits, Runtime, RuntimeConfig};
use gatehouse_scenarios::{assert_kws_still_right, instance, plugin, root, runtime, temp_dir};

fn kws(rt: &Runtime) -> Instance {
    instance(rt, "kws", &[], Limits::default())
}

fn hostile(rt: &Runtime, mode: &str, limits: Limits) -> Instance {
    instance(rt, "hostile", &[("mode", mode)], limits)
}

#[test]
fn an_endless_loop_is_stopped_at_its_deadline() {
    let rt = runtime(&temp_dir("sandbox-loop"));
    let mut neighbour = kws(&rt);
    let deadline = Duration::from_millis(200);
    let mut h = hostile(
        &rt,
        "loop",
        Limits {
            deadline,
            ..Limits::default()
        },
    );
    let t = Instant::now();
    let err = h.process(b"x").expect_err("a loop cannot succeed");
    let took = t.elapsed();
    assert_eq!(err.failure(), Some(&Failure::Deadline(deadline)), "{err}");
    assert!(
        err.to_string().contains("hostile@0.1.0"),
        "the error names the plugin: {err}"
    );
    assert!(
        took >= deadline && took < deadline * 10,
        "stopped after {took:?}"
    );
    // The trapped sandbox was replaced: the instance is usable (and loops again).
    assert_eq!(h.replacements(), 1);
    assert_kws_still_right(&mut neighbour);
}

#[test]
fn endless_allocation_hits_the_memory_cap() {
    let rt = runtime(&temp_dir("sandbox-alloc"));
    let mut neighbour = kws(&rt);
    let cap = 16 << 20;
    let mut h = hostile(
        &rt,
        "alloc",
        Limits {
            memory_bytes: cap,
            ..Limits::default()
        },
    );
    let err = h
        .process(b"x")
        .expect_err("allocation without end cannot succeed");
    assert_eq!(err.failure(), Some(&Failure::MemoryLimit(cap)), "{err}");
    assert_kws_still_right(&mut neighbour);
}

#[test]
fn forged_and_stale_handles_are_refused() {
    let rt = runtime(&temp_dir("sandbox-handles"));
    let mut neighbour = kws(&rt);
    for mode in ["forge-handle", "stale-handle"] {
        let mut h = hostile(&rt, mode, Limits::default());
        let err = h.process(b"x").expect_err("a bad handle cannot succeed");
        match err.failure() {
            Some(Failure::Trap(msg)) => assert!(
                msg.contains("handle") || msg.contains("resource"),
                "{mode}: {msg}"
            ),
            other => panic!("{mode}: expected a trap, got {other:?}"),
        }
        assert_kws_still_right(&mut neighbour);
    }
}

#[test]
fn a_huge_tensor_is_refused_with_an_error_the_plugin_sees() {
    let rt = runtime(&temp_dir("sandbox-huge"));
    let mut neighbour = kws(&rt);
    let mut h = hostile(
        &rt,
        "huge-tensor",
        Limits {
            tensor_bytes: 8 << 20,
            ..Limits::default()
        },
    );
    let err = h.process(b"x").expect_err("a 1 TiB tensor cannot succeed");
    match err.failure() {
        Some(Failure::Kernel(msg)) => assert!(msg.contains("quota"), "{msg}"),
        other => panic!("expected the plugin to report the quota error, got {other:?}"),
    }
    // Not a trap: the same sandbox goes on.
    assert_eq!(h.replacements(), 0);
    assert_kws_still_right(&mut neighbour);
}

#[test]
fn a_panic_reaches_the_operator_with_its_message() {
    let rt = runtime(&temp_dir("sandbox-panic"));
    let mut h = hostile(&rt, "panic", Limits::default());
    let err = h.process(b"x").expect_err("a panic traps");
    let text = err.to_string();
    assert!(
        text.contains("hostile@0.1.0") && text.contains("panicked on purpose"),
        "{text}"
    );
}

#[test]
fn a_deadline_also_bounds_init() {
    let rt = runtime(&temp_dir("sandbox-init"));
    let p = rt
        .load_file(
            &plugin("hostile"),
            Limits {
                init_deadline: Duration::from_millis(100),
                ..Limits::default()
            },
        )
        .expect("load");
    let err = p
        .instantiate(InitConfig {
            model: None,
            settings: vec![("mode".into(), "loop-in-init".into())],
        })
        .err()
        .expect("init loops");
    assert!(matches!(err.failure(), Some(Failure::Deadline(_))), "{err}");
}

#[test]
fn handles_of_one_instance_mean_nothing_in_another() {
    // Each instance has its own handle table: the stale-handle plugin's
    // numbers are small integers that exist in kws's table too, yet it only
    // reaches its own (dropped) handle and traps, while kws is unaffected.
    let rt = runtime(&temp_dir("sandbox-isolation"));
    let mut neighbour = kws(&rt);
    let before = neighbour.tensor_usage().expect("live");
    let mut h = hostile(&rt, "stale-handle", Limits::default());
    assert!(h.process(b"x").is_err());
    assert_eq!(neighbour.tensor_usage(), Some(before));
    assert_kws_still_right(&mut neighbour);
}

/// A conv kernel with a bug: it panics, as a host bug reached through a
/// plugin's call would.
fn panicking_conv(_: &Conv2d, _: &[i8], _: &mut [i8]) -> Result<(), KernelError> {
    panic!("a conv kernel bug, on purpose")
}

/// The scalar set with that conv kernel (its fully connected kernel, which
/// the runtime times at start, is sound).
static PANICKING: KernelSet = KernelSet {
    name: "panicking",
    conv2d: panicking_conv,
    ..SCALAR
};

#[test]
fn a_host_panic_fails_only_its_call() {
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(temp_dir("sandbox-host-panic")),
        kernels: Some(&PANICKING),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let mut kws = kws(&rt);
    let mut neighbour = hostile(&rt, "ok", Limits::default());
    let wav = std::fs::read(root().join("examples/data/kws/synth_yes_en-us.wav")).expect("wav");
    // Twice: the first failure replaced the instance, which fails alike.
    for _ in 0..2 {
        let err = kws.process(&wav).expect_err("the conv kernel panics");
        let text = err.to_string();
        assert!(
            text.contains("kws@0.1.0")
                && text.contains("host panicked")
                && text.contains("on purpose"),
            "{text}"
        );
        assert!(matches!(err.failure(), Some(Failure::Trap(_))), "{err:?}");
    }
    neighbour
        .process(b"x")
        .expect("the other plugin still answers");
}

#[test]
fn a_kernel_set_this_cpu_cannot_run_is_refused() {
    static NOWHERE: KernelSet = KernelSet {
        name: "nowhere",
        supported: || false,
        ..SCALAR
    };
    let err = Runtime::new(RuntimeConfig {
        kernels: Some(&NOWHERE),
        ..RuntimeConfig::default()
    })
    .err()
    .expect("an unsupported set is an error");
    assert!(err.to_string().contains("nowhere"), "{err}");
}
