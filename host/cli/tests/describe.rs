//! `gatehouse describe`: what a plugin is and what each instance costs.

mod common;

use common::gateway::ok;
use common::{gatehouse, root};
use serde_json::Value;

#[test]
fn describe_reports_identity_load_and_cost_per_instance() {
    let kws = root().join("target/plugins/kws.wasm");
    let out = ok(&gatehouse(&["describe", kws.to_str().unwrap()]));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["plugin"], "kws");
    assert_eq!(v["input_kinds"][0], "wav");
    assert_eq!(v["labels"].as_array().map(Vec::len), Some(12));
    assert!(
        v["instantiate_and_init_us_median"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    // Each kws instance holds its model's plan and a linear memory: more
    // than nothing, far less than its 64 MiB cap.
    let per = v["resident_bytes_per_instance"].as_u64().unwrap();
    assert!(per > 4096 && per < 64 << 20, "{per} bytes per instance");
}
