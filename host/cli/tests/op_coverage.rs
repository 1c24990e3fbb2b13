//! `gatehouse infer` on the op-coverage models (tests/fixtures/ops/README.md):
//! every operator the loader maps, byte-identical to the TFLite interpreter's
//! reference kernels, on every kernel set this CPU runs.

use crate::common::{gatehouse_with, kernel_sets, root, stderr, tmp};

#[test]
fn every_op_coverage_model_is_bit_exact() {
    let dir = root().join("tests/fixtures/ops");
    let mut models: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("model.tflite").is_file())
        .collect();
    models.sort();
    assert!(
        models.len() >= 20,
        "expected the op-coverage models, found {}",
        models.len()
    );
    let mut failures = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    for set in kernel_sets() {
        for m in &models {
            let name = m.file_name().unwrap().to_string_lossy().into_owned();
            let meta: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(m.join("meta.json")).unwrap())
                    .unwrap();
            for op in meta["operators"].as_array().unwrap() {
                covered.insert(op.as_str().unwrap().to_string());
            }
            let out = tmp(&format!("op-{name}-{set}.bin"));
            let o = gatehouse_with(
                &[
                    "infer",
                    "--model",
                    m.join("model.tflite").to_str().unwrap(),
                    "--input",
                    m.join("inputs.bin").to_str().unwrap(),
                    "--output",
                    out.to_str().unwrap(),
                ],
                &[("GATEHOUSE_KERNELS", &set)],
            );
            if !o.status.success() {
                failures.push(format!("{set} {name}: {}", stderr(&o).trim()));
                continue;
            }
            let (got, want) = (
                std::fs::read(&out).unwrap(),
                std::fs::read(m.join("outputs.bin")).unwrap(),
            );
            if got != want {
                let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
                failures.push(format!(
                    "{set} {name}: {diff} of {} bytes differ (sizes {} and {})",
                    want.len(),
                    got.len(),
                    want.len()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The operator list, all exercised.
    for op in [
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "AVERAGE_POOL_2D",
        "MAX_POOL_2D",
        "ADD",
        "MUL",
        "SOFTMAX",
        "LOGISTIC",
        "TANH",
        "HARD_SWISH",
        "RELU",
        "RELU6",
        "MEAN",
        "REDUCE_MAX",
        "PAD",
        "CONCATENATION",
        "RESHAPE",
        "EXPAND_DIMS",
        "SQUEEZE",
        "SHAPE",
        "STRIDED_SLICE",
        "PACK",
        "SPACE_TO_BATCH_ND",
        "BATCH_TO_SPACE_ND",
        "QUANTIZE",
        "DEQUANTIZE",
    ] {
        assert!(covered.contains(op), "no op-coverage model uses {op}");
    }
}
