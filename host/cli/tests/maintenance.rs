//! The `maintenance` plugin on a held-out simulated motor run
//! (`examples/data/maintenance/`, made by its `train/train.py`): every
//! window's health state, probabilities and hours to failure follow from
//! LiteRT's reference outputs for the same int8 model, on every kernel set.

use crate::common::{gatehouse_with, kernel_sets, root, softmax, stderr, tmp};
use serde_json::Value;

const RUN: &str = "examples/data/maintenance/motor_run.f32";

fn lines(out: &std::process::Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", stderr(out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What the plugin must print for one window, from LiteRT's four outputs.
fn check(got: &Value, want: &[f32], what: &str) {
    let p = softmax(&want[..3]);
    let labels = ["healthy", "degrading", "critical"];
    let best = (0..3).fold(0, |b, i| if p[i] > p[b] { i } else { b });
    assert_eq!(got["label"], labels[best], "{what}: {got}");
    for (l, &pv) in labels.iter().zip(&p) {
        let g = got["scores"][l].as_f64().unwrap();
        assert!((g - pv as f64).abs() <= 1e-6, "{what}: p({l}) {g} vs {pv}");
    }
    // An f32 product: compared as f32, since serde_json's default float
    // parsing may miss the printed f64 by an ulp.
    let rul = want[3].clamp(0.0, 1.0) * 48.0;
    assert_eq!(
        got["score"].as_f64().unwrap() as f32,
        rul,
        "{what}: hours to failure"
    );
}

#[test]
fn every_window_follows_litert_on_every_kernel_set() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/data/maintenance/expected.json")).unwrap(),
    )
    .unwrap();
    let rows = expected["rows"].as_u64().unwrap() as usize;
    for set in kernel_sets() {
        for (setting, key) in [("lstm-attention", "lstm_attention"), ("tcn", "tcn")] {
            let model = format!("model={setting}");
            let out = lines(&gatehouse_with(
                &[
                    "run",
                    "target/plugins/maintenance.wasm",
                    "--set",
                    &model,
                    "--chunk",
                    "48",
                    "--input",
                    RUN,
                ],
                &[("GATEHOUSE_KERNELS", &set)],
            ));
            let want = expected[key].as_array().unwrap();
            assert_eq!(want.len(), rows - 31);
            assert_eq!(
                out.len(),
                want.len(),
                "{setting} on {set}: one result per full window"
            );
            for (i, (g, w)) in out.iter().zip(want).enumerate() {
                let w: Vec<f32> = w
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
                    .collect();
                check(g, &w, &format!("{setting} on {set}, window {i}"));
            }
            // The run ends in a failure: the alarm rises once, hours before it.
            let alarms: Vec<f64> = out
                .iter()
                .flat_map(|l| l["events"].as_array().cloned().unwrap_or_default())
                .filter(|e| e["label"] == "alarm")
                .map(|e| e["t_s"].as_f64().unwrap() / 60.0)
                .collect();
            assert_eq!(alarms.len(), 1, "{setting} on {set}: {alarms:?}");
            let lead_h = (rows as f64 - alarms[0]) / 60.0;
            assert!(
                lead_h > 2.0,
                "{setting} on {set}: alarm only {lead_h:.1} h before failure"
            );
        }
    }
}

/// The same rows as one JSON message give the last window's result, and
/// bad input is an error that leaves the plugin serving.
#[test]
fn json_rows_and_bad_input() {
    let raw = std::fs::read(root().join(RUN)).unwrap();
    let first: Vec<f32> = raw[..32 * 48]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let rows: Vec<String> = first
        .chunks(12)
        .map(|r| {
            format!(
                "[{}]",
                r.iter()
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect();
    let json = tmp("maintenance-rows.json");
    std::fs::write(&json, format!("[{}]", rows.join(",\n"))).unwrap();
    let raw_first = tmp("maintenance-first.f32");
    std::fs::write(&raw_first, &raw[..32 * 48]).unwrap();
    let from_json = lines(&gatehouse_with(
        &[
            "run",
            "target/plugins/maintenance.wasm",
            "--input",
            json.to_str().unwrap(),
        ],
        &[],
    ));
    let from_raw = lines(&gatehouse_with(
        &[
            "run",
            "target/plugins/maintenance.wasm",
            "--input",
            raw_first.to_str().unwrap(),
        ],
        &[],
    ));
    assert_eq!(from_json[0]["scores"], from_raw[0]["scores"]);
    assert_eq!(from_json[0]["score"], from_raw[0]["score"]);

    for (name, bytes, says) in [
        ("short", vec![0u8; 47], "not whole float32"),
        ("partial-row", vec![0u8; 44], "not whole rows"),
        (
            "nan",
            f32::NAN.to_le_bytes().repeat(12),
            "not a finite number",
        ),
        ("words", b"[1, 2, x]".to_vec(), "is not a number"),
    ] {
        let f = tmp(&format!("maintenance-{name}"));
        std::fs::write(&f, bytes).unwrap();
        let o = gatehouse_with(
            &[
                "run",
                "target/plugins/maintenance.wasm",
                "--input",
                f.to_str().unwrap(),
            ],
            &[],
        );
        assert!(!o.status.success(), "{name} was accepted");
        assert!(stderr(&o).contains(says), "{name}: {}", stderr(&o));
    }
    let o = gatehouse_with(
        &[
            "run",
            "target/plugins/maintenance.wasm",
            "--set",
            "model=gru",
            "--input",
            RUN,
        ],
        &[],
    );
    assert!(
        stderr(&o).contains("expected lstm-attention or tcn"),
        "{}",
        stderr(&o)
    );
}
