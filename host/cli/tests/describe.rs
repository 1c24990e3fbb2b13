//! `gatehouse describe`: what a plugin is and what each instance costs.

use crate::common::gateway::ok;
use crate::common::{gatehouse, root};
use serde_json::Value;

#[test]
fn describe_reports_identity_load_and_cost_per_instance() {
    let kws = root().join("target/plugins/kws.wasm");
    let out = ok(&gatehouse(&["describe", kws.to_str().unwrap()]));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["plugin"], "kws");
    assert_eq!(v["input_kinds"][0], "wav");
    assert_eq!(v["labels"].as_array().map(Vec::len), Some(12));
    let whole = v["instantiate_and_init_us_median"].as_f64().unwrap();
    assert!(whole > 0.0, "{v}");
    // The two parts are timed apart (each a median, so only each is
    // bounded by the whole's largest, not their sum by its median).
    for part in ["instantiate_us_median", "init_us_median"] {
        let t = v[part].as_f64().unwrap_or(-1.0);
        assert!(t > 0.0 && t < 10.0 * whole, "{part}: {v}");
    }
    // Each kws instance holds its model's plan and a linear memory: more
    // than nothing, far less than its 64 MiB cap.
    let per = v["resident_bytes_per_instance"].as_u64().unwrap();
    assert!(per > 4096 && per < 64 << 20, "{per} bytes per instance");
}

fn describe_model(path: &str) -> Value {
    let out = ok(&gatehouse(&["describe", "--model", path]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn describe_model_gives_what_a_model_costs_before_it_is_deployed() {
    let m = root().join("models/mlperf-tiny/kws_ref_model.tflite");
    let v = describe_model(m.to_str().unwrap());
    let ops = v["operators"].as_array().unwrap();
    assert_eq!(ops.len(), 13, "{v}");
    assert_eq!(ops[0]["op"], "CONV_2D");
    assert_eq!(ops[12]["op"], "SOFTMAX");
    assert_eq!(v["all_supported"], true);
    // The operators' sums are the model's.
    let sum = |k: &str| ops.iter().map(|o| o[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("macs"), v["macs"].as_u64().unwrap());
    assert!(v["parameters"].as_u64().unwrap() <= sum("params"));
    assert_eq!(v["input"]["shape"], serde_json::json!([1, 49, 10, 1]));
    // Each layer reads one 25x5x64 activation and writes another; the
    // planner fits every layer's pair in the arena and no more than all
    // activations at once.
    let arena = v["arena_bytes"].as_u64().unwrap();
    assert!((2 * 8000..=13 * 8000).contains(&arena), "{arena}");
    assert!(v["weight_bytes"].as_u64().unwrap() < v["model_bytes"].as_u64().unwrap());
}

#[test]
fn describe_model_names_what_is_unsupported_instead_of_failing() {
    // tests/fixtures/models/README.md: the KWS model with SOFTMAX rewritten to LSTM.
    let m = root().join("tests/fixtures/models/unsupported_op.tflite");
    let v = describe_model(m.to_str().unwrap());
    assert_eq!(v["all_supported"], false);
    let ops = v["operators"].as_array().unwrap();
    assert_eq!(ops[12]["op"], "LSTM");
    assert_eq!(ops[12]["unsupported"], "no kernel for this operator");
    assert!(ops[..12].iter().all(|o| o["unsupported"].is_null()), "{v}");
    assert!(v["arena_bytes"].is_null());
    assert!(
        v["load_error"]
            .as_str()
            .unwrap()
            .contains("operator 12 (LSTM)"),
        "{v}"
    );

    // Bytes that are no model at all are an error, and say so.
    let junk = crate::common::tmp("junk.tflite");
    std::fs::write(&junk, b"0123456789abcdef").unwrap();
    let o = gatehouse(&["describe", "--model", junk.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        crate::common::stderr(&o).contains("not a TensorFlow Lite model"),
        "{}",
        crate::common::stderr(&o)
    );
}
