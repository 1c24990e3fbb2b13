//! `gatehouse stress`: 100 swaps under continuous load, nothing failed or lost.

mod common;
use common::{gatehouse, stderr};

#[test]
fn a_hundred_swaps_under_load_report_no_failure_and_no_loss() {
    let o = gatehouse(&[
        "stress",
        "--plugin",
        "target/plugins/kws.wasm",
        "--swap-to",
        "target/plugins/kws.wasm",
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
    assert_eq!(r["dropped"], 0, "{r}");
    assert!(
        r["ok"].as_u64().unwrap() > 0 && r["ok"] == r["requests"],
        "{r}"
    );
}
