//! `gatehouse stress`: 100 swaps between two builds under continuous load:
//! nothing failed, answered wrong or lost, by the count of the threads
//! that received the answers and of the versions that made them.

use crate::common::{gatehouse, stderr};

#[test]
fn a_hundred_swaps_under_load_report_no_failure_and_no_loss() {
    let o = gatehouse(&[
        "stress",
        "--plugin",
        "target/plugins/kws.wasm",
        "--swap-to",
        "target/plugins/kws-0.1.1.wasm",
        "--swaps",
        "100",
        "--concurrency",
        "2",
        "--duration-s",
        "3",
        "--input",
        "examples/data/kws/synth_yes_en-us.wav",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    for key in [
        "requests",
        "answered",
        "answered_by_versions",
        "wrong",
        "versions",
        "ok",
        "failed",
        "dropped",
        "swaps",
        "swap_ms_p50",
        "swap_ms_p99",
        "latency_us_p50",
        "latency_us_p99",
        "per_s",
    ] {
        assert!(r.get(key).is_some(), "missing {key} in {r}");
    }
    assert_eq!(r["swaps"], 100);
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(r["wrong"], 0, "{r}");
    assert_eq!(r["dropped"], 0, "{r}");
    assert_eq!(r["answered"], r["requests"], "{r}");
    assert_eq!(r["answered_by_versions"], r["requests"], "{r}");
    // Both builds served.
    for v in ["0.1.0", "0.1.1"] {
        assert!(
            r["versions"][v].as_u64().unwrap_or(0) > 0,
            "{v} served nothing: {r}"
        );
    }
    assert!(
        r["ok"].as_u64().unwrap() > 0 && r["ok"] == r["requests"],
        "{r}"
    );
}
