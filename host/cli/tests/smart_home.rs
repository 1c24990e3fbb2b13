//! The `smart-home` plugin on a held-out simulated room's day
//! (`examples/data/smart-home/`, made by its `train/train.py`): every
//! window's action, probabilities and occupancy follow from LiteRT's
//! reference outputs for the same int8 model, on every kernel set, and the
//! instance (guest memory plus host tensors) stays under 500 KB.

use crate::common::{gatehouse_with, kernel_sets, root, softmax, stderr};
use serde_json::Value;

const DAY: &str = "examples/data/smart-home/room_day.f32";

#[test]
fn every_window_follows_litert_and_the_instance_fits_in_500_kb() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/data/smart-home/expected.json")).unwrap(),
    )
    .unwrap();
    let want = expected["outputs"].as_array().unwrap();
    let actions = ["off", "cool", "heat", "ventilate"];
    for set in kernel_sets() {
        let o = gatehouse_with(
            &[
                "run",
                "target/plugins/smart-home.wasm",
                "--stats",
                "--chunk",
                "24",
                "--input",
                DAY,
            ],
            &[("GATEHOUSE_KERNELS", &set)],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), want.len(), "{set}: one result per full window");
        for (i, (g, w)) in lines.iter().zip(want).enumerate() {
            let w: Vec<f32> = w
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let p = softmax(&w[2..]);
            let best = (0..4).fold(0, |b, k| if p[k] > p[b] { k } else { b });
            assert_eq!(g["label"], actions[best], "{set}, window {i}: {g}");
            for (a, &pv) in actions.iter().zip(&p) {
                let got = g["scores"][a].as_f64().unwrap();
                assert!(
                    (got - pv as f64).abs() <= 1e-6,
                    "{set}, window {i}: p({a}) {got} vs {pv}"
                );
            }
            let occupied = softmax(&w[..2])[1];
            assert_eq!(
                g["score"].as_f64().unwrap() as f32,
                occupied,
                "{set}, window {i}"
            );
        }
        // The budget: the whole instance under 500 KB.
        let err = stderr(&o);
        let bytes: u64 = err
            .lines()
            .find_map(|l| l.strip_prefix("instance-bytes: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no instance-bytes in {err}"));
        assert!(
            bytes < 500 * 1024,
            "{set}: the instance takes {bytes} bytes"
        );
    }
}

/// Occupancy and action changes are events, debounced: the first report,
/// then only changes that held.
#[test]
fn changes_are_reported_once_they_hold() {
    let o = gatehouse_with(
        &[
            "run",
            "target/plugins/smart-home.wasm",
            "--chunk",
            "24",
            "--input",
            DAY,
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let events: Vec<(f64, String)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .flat_map(|v| v["events"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["t_s"].as_f64().unwrap(),
                e["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The first window (16 rows) plus the 3-row hold: the first occupancy report.
    let first = events
        .iter()
        .find(|(_, l)| l == "occupied" || l == "empty")
        .unwrap();
    assert_eq!(first.0, 18.0 * 60.0, "{events:?}");
    // No two consecutive occupancy reports say the same thing.
    let occ: Vec<&str> = events
        .iter()
        .map(|(_, l)| l.as_str())
        .filter(|l| *l == "occupied" || *l == "empty")
        .collect();
    assert!(occ.windows(2).all(|w| w[0] != w[1]), "{occ:?}");
    // A weekday: the room empties and fills again at least once.
    assert!(
        occ.contains(&"empty") && occ.contains(&"occupied"),
        "{occ:?}"
    );
}
