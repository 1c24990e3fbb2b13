//! The `ecg` plugin on three and a half held-out minutes of MIT-BIH record
//! 100 (`examples/data/ecg/`, made by its `train/train.py` from the
//! record with the plugin's signal path written in Python): the plugin
//! finds the same R peaks as that reference, and every beat's class and
//! probability follow from LiteRT's reference outputs for the same int8
//! model, on every kernel set.

use crate::common::{gatehouse_with, kernel_sets, root, softmax, stderr, tmp};
use serde_json::Value;

const STRIP: &str = "examples/data/ecg/mlii_21m.f32";

fn expected() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/data/ecg/expected.json")).unwrap(),
    )
    .unwrap()
}

/// `run` over `input` in messages of `chunk` bytes: the beat events in
/// order, as (R sample, label, score), and stderr.
fn beats(input: &str, chunk: &str, extra: &[&str], set: &str) -> (Vec<(u64, String, f64)>, String) {
    let mut args = vec![
        "run",
        "target/plugins/ecg.wasm",
        "--chunk",
        chunk,
        "--input",
        input,
    ];
    args.extend(extra);
    // An empty `set`: the set the host picks.
    let env: &[(&str, &str)] = if set.is_empty() {
        &[]
    } else {
        &[("GATEHOUSE_KERNELS", set)]
    };
    let o = gatehouse_with(&args, env);
    assert!(o.status.success(), "{}", stderr(&o));
    let events = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .flat_map(|v| v["events"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                (e["t_s"].as_f64().unwrap() * 360.0).round() as u64,
                e["label"].as_str().unwrap().to_string(),
                e["score"].as_f64().unwrap(),
            )
        })
        .collect();
    (events, stderr(&o))
}

fn stat(err: &str, name: &str) -> u64 {
    err.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {err}"))
}

#[test]
fn every_beat_follows_the_reference_pipeline_and_litert() {
    let expected = expected();
    let want = expected["beats"].as_array().unwrap();
    assert!(want.len() > 200, "the strip has {} beats", want.len());
    for set in kernel_sets() {
        // One second a message.
        let (got, err) = beats(STRIP, "1440", &["--stats"], &set);
        assert_eq!(got.len(), want.len(), "{set}: one event per beat");
        for (i, ((r, label, score), w)) in got.iter().zip(want).enumerate() {
            assert_eq!(*r, w["r"].as_u64().unwrap(), "{set}, beat {i}: R peak");
            let logits: Vec<f32> = w["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let p = softmax(&logits);
            let class = if p[1] > p[0] { 1 } else { 0 };
            assert_eq!(label, ["N", "A"][class], "{set}, beat {i} at {r}");
            assert!(
                (score - p[class] as f64).abs() <= 1e-6,
                "{set}, beat {i}: p {score} vs {}",
                p[class]
            );
        }
        assert_eq!(stat(&err, "beats"), want.len() as u64, "{set}");
        let rate = stat(&err, "heart-rate-bpm");
        assert!((55..=100).contains(&rate), "{set}: {rate} bpm");
        assert!(stat(&err, "instance-bytes") > 0);
    }
}

/// What the model is for: every beat the cardiologists annotated as atrial
/// premature in the strip is reported as `A`, and nearly every normal beat
/// as `N` (the held-out span's figures are in the training README).
#[test]
fn the_annotated_premature_beats_are_reported() {
    let expected = expected();
    let (got, _) = beats(STRIP, "1440", &[], "");
    let truth: Vec<(u64, &str)> = expected["beats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["r"].as_u64().unwrap(),
                b["annotation"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    let premature: Vec<u64> = truth
        .iter()
        .filter(|(_, a)| *a == "A")
        .map(|b| b.0)
        .collect();
    assert!(premature.len() >= 3, "{premature:?}");
    for r in &premature {
        let g = got.iter().find(|b| b.0 == *r).unwrap();
        assert_eq!(g.1, "A", "the atrial premature beat at sample {r}");
    }
    let normal_as_a = truth
        .iter()
        .filter(|(r, a)| *a == "N" && got.iter().any(|g| g.0 == *r && g.1 == "A"))
        .count();
    assert!(normal_as_a <= 2, "{normal_as_a} normal beats reported as A");
}

/// The stream's state crosses messages: any message size, one sample a
/// message included, finds the same beats; JSON samples equal raw ones;
/// bad input is an error that names the problem.
#[test]
fn any_message_size_gives_the_same_beats_and_bad_input_is_refused() {
    let raw = std::fs::read(root().join(STRIP)).unwrap();
    // Twenty seconds, so that one sample a message stays quick.
    let part = tmp("ecg-20s.f32");
    std::fs::write(&part, &raw[..20 * 360 * 4]).unwrap();
    let part = part.to_str().unwrap();
    let (whole, _) = beats(part, "1440", &[], "");
    assert!(whole.len() >= 20, "{whole:?}");
    for chunk in ["4", "1000", "28800"] {
        let (got, _) = beats(part, chunk, &[], "");
        assert_eq!(got, whole, "messages of {chunk} bytes");
    }
    let samples: Vec<String> = raw[..20 * 360 * 4]
        .chunks_exact(4)
        .map(|b| format!("{:?}", f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    let json = tmp("ecg-20s.json");
    std::fs::write(&json, format!("[{}]", samples.join(","))).unwrap();
    let o = gatehouse_with(
        &[
            "run",
            "target/plugins/ecg.wasm",
            "--input",
            json.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let line: Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    let from_json: Vec<u64> = line["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["t_s"].as_f64().unwrap() * 360.0).round() as u64)
        .collect();
    assert_eq!(from_json, whole.iter().map(|b| b.0).collect::<Vec<_>>());

    for (name, bytes, says) in [
        ("short", vec![0u8; 7], "not whole float32"),
        (
            "nan",
            f32::NAN.to_le_bytes().repeat(3),
            "not a finite number",
        ),
        ("words", b"[0.1, 0.2, x]".to_vec(), "is not a number"),
    ] {
        let f = tmp(&format!("ecg-{name}"));
        std::fs::write(&f, bytes).unwrap();
        let o = gatehouse_with(
            &[
                "run",
                "target/plugins/ecg.wasm",
                "--input",
                f.to_str().unwrap(),
            ],
            &[],
        );
        assert!(!o.status.success(), "{name} was accepted");
        assert!(stderr(&o).contains(says), "{name}: {}", stderr(&o));
    }
}

/// A flat line (a lead that came off) gives no beats and no error, and the
/// detector finds the beats again once the signal is back. The step where
/// the signal returns may itself be taken for a beat (the band-pass rings
/// on it), so the last quarter second of the gap is not asserted on.
#[test]
fn a_lead_off_gap_is_survived() {
    let raw = std::fs::read(root().join(STRIP)).unwrap();
    let mut gapped = raw[..30 * 360 * 4].to_vec();
    gapped.extend(0f32.to_le_bytes().repeat(10 * 360));
    gapped.extend(&raw[40 * 360 * 4..70 * 360 * 4]);
    let f = tmp("ecg-gap.f32");
    std::fs::write(&f, gapped).unwrap();
    let (got, _) = beats(f.to_str().unwrap(), "1440", &[], "");
    let s = |sec: u64| sec * 360;
    assert!(
        got.iter().all(|b| !(s(31)..s(40) - 90).contains(&b.0)),
        "{got:?}"
    );
    let after = got.iter().filter(|b| b.0 > s(45)).count();
    // 25 s at 60-90 beats a minute.
    assert!(
        (20..=40).contains(&after),
        "{after} beats after the gap: {got:?}"
    );
}
