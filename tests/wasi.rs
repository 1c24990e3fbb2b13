//! WASI as plugins see it: clocks, random and a logged stdio, nothing
//! ambient; and the `state` capability, only where granted, private,
//! persistent and bounded.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use gatehouse_runtime::{Failure, Grants, Instance, Limits, Runtime, StateGrant};
use gatehouse_scenarios::{assert_kws_still_right, instance, runtime, temp_dir};

fn hostile(rt: &Runtime, mode: &str, limits: Limits) -> Instance {
    instance(rt, "hostile", &[("mode", mode)], limits)
}

fn with_state(dir: &Path, quota_bytes: u64) -> Limits {
    Limits {
        grants: Grants {
            state: Some(StateGrant {
                dir: dir.to_path_buf(),
                quota_bytes,
            }),
        },
        ..Limits::default()
    }
}

/// The probe's report: attempt -> ("ok" | "err", detail).
fn probe(h: &mut Instance) -> BTreeMap<String, (String, String)> {
    let out = h
        .process(b"x")
        .expect("the probe answers")
        .output
        .expect("a report");
    let text = String::from_utf8(out).expect("utf-8");
    text.lines()
        .map(|l| {
            let (what, rest) = l.split_once(' ').expect("attempt name");
            let (verdict, detail) = rest.split_once(": ").expect("verdict");
            (what.to_string(), (verdict.to_string(), detail.to_string()))
        })
        .collect()
}

#[test]
fn wasi_gives_clocks_random_and_stdio_and_denies_the_rest() {
    let rt = runtime(&temp_dir("wasi-probe"));
    let mut neighbour = instance(&rt, "kws", &[], Limits::default());
    let report = probe(&mut hostile(&rt, "wasi-probe", Limits::default()));
    for denied in [
        "read-passwd",
        "list-root",
        "list-dot",
        "write-tmp",
        "env-path",
        "env-count",
        "args",
        "tcp-connect",
        "tcp-bind",
        "udp-bind",
        "dns",
        // stdin is empty: reading it gives nothing, which the probe
        // reports as ok with an empty count; checked below.
    ] {
        let (verdict, detail) = &report[denied];
        assert_eq!(verdict, "err", "{denied} must be denied, got {detail}");
    }
    for granted in ["wall-clock", "monotonic-clock", "random", "stdout"] {
        let (verdict, detail) = &report[granted];
        assert_eq!(verdict, "ok", "{granted} must work, got {detail}");
    }
    assert_eq!(report["stdin"], ("ok".into(), "0".into()), "stdin is empty");
    let wall: f64 = report["wall-clock"]
        .1
        .trim_end_matches('s')
        .split(['.', 's'])
        .next()
        .and_then(|s| s.parse().ok())
        .expect("seconds since the epoch");
    assert!(wall > 1.7e9, "the wall clock is real: {wall}");
    let other = probe(&mut hostile(&rt, "wasi-probe", Limits::default()));
    assert_ne!(
        report["random"], other["random"],
        "two sandboxes draw different random numbers"
    );
    assert_kws_still_right(&mut neighbour);
}

#[test]
fn a_sleeping_guest_wakes_at_its_deadline() {
    let rt = runtime(&temp_dir("wasi-sleep"));
    let deadline = Duration::from_millis(200);
    let mut h = hostile(
        &rt,
        "wasi-sleep",
        Limits {
            deadline,
            ..Limits::default()
        },
    );
    let t = Instant::now();
    let err = h.process(b"x").expect_err("an hour's sleep cannot finish");
    let took = t.elapsed();
    assert_eq!(err.failure(), Some(&Failure::Deadline(deadline)), "{err}");
    assert!(
        took < Duration::from_secs(5),
        "held the thread for {took:?}"
    );
}

#[test]
fn an_output_flood_is_absorbed() {
    let rt = runtime(&temp_dir("wasi-flood"));
    let mut neighbour = instance(&rt, "kws", &[], Limits::default());
    let mut h = instance(
        &rt,
        "hostile",
        &[("mode", "wasi-print-flood"), ("lines", "20000")],
        Limits {
            deadline: Duration::from_secs(20),
            ..Limits::default()
        },
    );
    h.process(b"x").expect("printing is allowed, and cheap");
    assert_kws_still_right(&mut neighbour);
}

#[test]
fn a_trap_reports_the_last_lines_of_stderr() {
    // A guest without gatehouse's log (Python, JavaScript) explains itself
    // on stderr; the operator sees its last lines with the trap.
    let rt = runtime(&temp_dir("wasi-stderr"));
    let mut h = hostile(&rt, "stderr-then-abort", Limits::default());
    match h.process(b"x").expect_err("abort traps").failure() {
        Some(Failure::Trap(m)) => assert!(m.contains("vendor diagnostics: reason 42"), "{m}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn state_is_only_there_when_granted() {
    let rt = runtime(&temp_dir("wasi-nostate"));
    let mut h = hostile(&rt, "state-count", Limits::default());
    match h
        .process(b"x")
        .expect_err("no /state without the grant")
        .failure()
    {
        Some(Failure::Kernel(m)) => assert!(m.contains("write /state/count"), "{m}"),
        other => panic!("expected the plugin's own error, got {other:?}"),
    }
}

#[test]
fn state_persists_across_instances_and_loads() {
    let base = temp_dir("wasi-state");
    let dir = base.join("state/hostile");
    let rt = runtime(&base.join("cache"));
    let limits = with_state(&dir, 1 << 20);
    let mut a = hostile(&rt, "state-count", limits.clone());
    assert_eq!(a.process(b"x").unwrap().score, Some(1.0));
    assert_eq!(a.process(b"x").unwrap().score, Some(2.0));
    // Another instance of the same plugin sees the same directory.
    let mut b = hostile(&rt, "state-count", limits.clone());
    assert_eq!(b.process(b"x").unwrap().score, Some(3.0));
    // So does a load in a new runtime: a restart, or the next version.
    drop((a, b));
    let rt2 = runtime(&base.join("cache2"));
    let mut c = hostile(&rt2, "state-count", limits);
    assert_eq!(c.process(b"x").unwrap().score, Some(4.0));
    assert_eq!(std::fs::read_to_string(dir.join("count")).unwrap(), "4\n");
    // Another plugin's directory is its own.
    let mut other = hostile(
        &rt2,
        "state-count",
        with_state(&base.join("state/other"), 1 << 20),
    );
    assert_eq!(other.process(b"x").unwrap().score, Some(1.0));
}

#[test]
fn state_is_held_to_its_quota() {
    let base = temp_dir("wasi-quota");
    let dir = base.join("state/hostile");
    let quota = 1 << 20;
    let rt = runtime(&base.join("cache"));
    let mut neighbour = instance(&rt, "kws", &[], Limits::default());
    let mut h = hostile(&rt, "state-fill", with_state(&dir, quota));
    let inf = h
        .process(b"x")
        .expect("a full disk is an error the plugin sees");
    let label = inf.label.clone().unwrap_or_default();
    // New entries are refused with ENOSPC; writes through a file stream
    // with an I/O error, as the guest's libc reports any stream error.
    assert!(
        label.starts_with("StorageFull") || label.contains("os error 29"),
        "{label} after {:?} bytes",
        inf.score
    );
    let written = inf.score.unwrap_or_default() as u64;
    assert!(
        written > quota / 2 && written <= quota,
        "wrote {written} bytes"
    );
    let on_disk: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len() + 4096)
        .sum();
    assert!(on_disk <= quota, "{on_disk} bytes on disk against {quota}");
    assert_kws_still_right(&mut neighbour);
}

#[test]
fn state_paths_cannot_leave_the_directory() {
    let base = temp_dir("wasi-escape");
    let rt = runtime(&base.join("cache"));
    let dir = base.join("state/hostile");
    std::fs::create_dir_all(&dir).unwrap();
    // A link planted inside (by a vendor's earlier version, say) to outside.
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc", dir.join("etc")).unwrap();
    let mut h = instance(
        &rt,
        "hostile",
        &[("mode", "wasi-probe")],
        with_state(&dir, 1 << 20),
    );
    let report = probe(&mut h);
    for escape in ["read-passwd", "state-dotdot", "state-link"] {
        assert_eq!(report[escape].0, "err", "{escape}: {:?}", report[escape]);
    }
    assert_eq!(report["list-state"].0, "ok", "{:?}", report["list-state"]);
}

/// The reference log-mel clip with `shift` added to every value.
fn shifted_log_mel(shift: f32) -> Vec<u8> {
    let bin = std::fs::read(
        gatehouse_scenarios::root()
            .join("examples/data/anomaly/normal_id_01_00000000_hist_librosa.bin"),
    )
    .expect("log-mel sample");
    bin.chunks_exact(4)
        .flat_map(|c| (f32::from_le_bytes([c[0], c[1], c[2], c[3]]) + shift).to_le_bytes())
        .collect()
}

#[test]
fn the_anomaly_plugin_learns_its_baseline_in_state() {
    let base = temp_dir("wasi-baseline");
    let dir = base.join("state/anomaly");
    let settings = [("baseline-clips", "3"), ("threshold-sigmas", "3")];
    let rt = runtime(&base.join("cache"));
    // Without the grant: a score and nothing else, as before.
    let mut plain = instance(&rt, "anomaly", &settings, Limits::default());
    let inf = plain.process(&shifted_log_mel(0.0)).unwrap();
    assert!(inf.score.is_some() && inf.label.is_none(), "{inf:?}");

    let mut a = instance(&rt, "anomaly", &settings, with_state(&dir, 64 << 10));
    for (i, shift) in [0.0, 0.05, -0.05].into_iter().enumerate() {
        let inf = a.process(&shifted_log_mel(shift)).unwrap();
        assert_eq!(inf.label.as_deref(), Some("learning"), "{inf:?}");
        assert_eq!(inf.scores, vec![("baseline-clips".into(), (i + 1) as f32)]);
    }
    // Learned: a restart (a new runtime, a new instance) keeps it.
    drop(a);
    let rt = runtime(&base.join("cache2"));
    let mut b = instance(&rt, "anomaly", &settings, with_state(&dir, 64 << 10));
    let normal = b.process(&shifted_log_mel(0.02)).unwrap();
    assert_eq!(normal.label.as_deref(), Some("normal"), "{normal:?}");
    let odd = b.process(&shifted_log_mel(3.0)).unwrap();
    assert_eq!(odd.label.as_deref(), Some("anomalous"), "{odd:?}");
    assert!(odd.score > normal.score);
    let kept = std::fs::read_to_string(dir.join("baseline")).unwrap();
    assert!(kept.starts_with("3 "), "{kept}");
}
