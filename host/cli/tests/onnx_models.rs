//! `gatehouse infer` and `describe --model` on int8 ONNX models
//! (tests/fixtures/onnx/: QDQ models made by onnxruntime's quantizer, with
//! onnxruntime's optimized session's outputs; and the bundled example,
//! examples/onnx/anomaly/): byte-identical on every kernel set this CPU
//! runs; and what a model the loader cannot reproduce gets instead.

use serde_json::Value;

use crate::common::gateway::ok;
use crate::common::{gatehouse, gatehouse_with, kernel_sets, root, stderr, tmp};

fn models() -> Vec<std::path::PathBuf> {
    let mut models = Vec::new();
    for dir in ["tests/fixtures/onnx", "examples/onnx"] {
        models.extend(
            std::fs::read_dir(root().join(dir))
                .expect("the ONNX models")
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.join("model.onnx").is_file()),
        );
    }
    models.sort();
    models
}

#[test]
fn every_onnx_model_is_onnxruntimes_bytes_on_every_kernel_set() {
    let models = models();
    assert!(
        models.len() >= 19,
        "expected the ONNX fixtures, found {}",
        models.len()
    );
    let mut failures = Vec::new();
    for set in kernel_sets() {
        for m in &models {
            let name = m.file_name().unwrap().to_string_lossy().into_owned();
            let out = tmp(&format!("onnx-{name}-{set}.bin"));
            let o = gatehouse_with(
                &[
                    "infer",
                    "--model",
                    m.join("model.onnx").to_str().unwrap(),
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
                let diff = got
                    .chunks(4)
                    .zip(want.chunks(4))
                    .filter(|(a, b)| a != b)
                    .count();
                failures.push(format!(
                    "{set} {name}: {diff} of {} floats differ (sizes {} and {})",
                    want.len() / 4,
                    got.len(),
                    want.len()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn describe_names_the_fused_host_operators_of_an_onnx_model() {
    let m = root().join("tests/fixtures/onnx/cnn_int8/model.onnx");
    let out = ok(&gatehouse(&["describe", "--model", m.to_str().unwrap()]));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["format"], "onnx", "{v}");
    assert_eq!(v["semantics"], "onnxruntime", "{v}");
    assert_eq!(v["load_error"], Value::Null, "{v}");
    assert_eq!(v["input"]["shape"], serde_json::json!([1, 3, 16, 16]));
    assert_eq!(v["input"]["dtype"], "float32");
    // 26 QDQ nodes become 9 host operators, as onnxruntime fuses them (a
    // PAD before the stride-2 conv, whose pads are not TFLite's SAME).
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(26), "{v}");
    let ops: Vec<&str> = v["host_operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        [
            "quantize",
            "conv2d",
            "pad",
            "conv2d",
            "max_pool2d",
            "mean",
            "reshape",
            "fully_connected",
            "dequantize"
        ]
    );

    // A model whose activations are uint8 runs under the uint8 semantics.
    let m = root().join("tests/fixtures/onnx/residual_uint8/model.onnx");
    let out = ok(&gatehouse(&["describe", "--model", m.to_str().unwrap()]));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["semantics"], "onnxruntime-uint8", "{v}");
    assert_eq!(v["input"]["dtype"], "float32", "{v}");
}

/// Bytes that are not a model, a model with an operator the host does not
/// reproduce, and a TFLite semantics asked of an ONNX model: each a clear
/// error, naming what is wrong.
#[test]
fn what_cannot_run_as_onnxruntime_would_is_refused_by_name() {
    let input = root().join("tests/fixtures/onnx/cnn_int8/inputs.bin");
    let infer = |model: &std::path::Path, extra: &[&str]| {
        let out = tmp("onnx-refused.bin");
        let mut args = vec![
            "infer",
            "--model",
            model.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = gatehouse(&args);
        assert!(!o.status.success(), "{model:?} {extra:?} ran");
        stderr(&o)
    };
    let garbage = tmp("garbage.onnx");
    std::fs::write(&garbage, b"\x0a\xff\xff\xff\xff\x0fnot a model").unwrap();
    let e = infer(&garbage, &[]);
    assert!(
        e.contains("malformed model") && e.contains("nor an ONNX model"),
        "{e}"
    );

    let model = root().join("tests/fixtures/onnx/cnn_int8/model.onnx");
    let e = infer(&model, &["--semantics", "reference"]);
    assert!(e.contains("onnxruntime"), "{e}");

    // The Gemm's op type renamed to one no loader knows: refused with the
    // node's index and name.
    let mut bytes = std::fs::read(&model).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"Gemm")
        .expect("the model has a Gemm");
    bytes[at..at + 4].copy_from_slice(b"Gelu");
    let renamed = tmp("renamed.onnx");
    std::fs::write(&renamed, &bytes).unwrap();
    let e = infer(&renamed, &[]);
    assert!(e.contains("Gelu") && e.contains("not supported"), "{e}");

    // Made by make_models.py: an int8 Add in a model whose activations are
    // otherwise uint8, and an Add whose first operand broadcasts, where
    // onnxruntime's order depends on the layout it picks and matters.
    let refused = root().join("tests/fixtures/onnx/refused");
    let e = infer(&refused.join("broadcast_first_uint8.onnx"), &[]);
    assert!(
        e.contains("Add") && e.contains("NHWC") && e.contains("round some sums apart"),
        "{e}"
    );
    let e = infer(&refused.join("mixed_types.onnx"), &[]);
    assert!(
        e.contains("Add") && e.contains("an int8 operand") && e.contains("are uint8"),
        "{e}"
    );
    // A MatMul of two 4-D activations (attention's heads at once).
    let e = infer(&refused.join("heads_4d.onnx"), &[]);
    assert!(
        e.contains("MatMul") && e.contains("2-D or 3-D operands only"),
        "{e}"
    );
    // DynamicQuantizeLinear into MatMulInteger (written by hand).
    let e = infer(&refused.join("dynamic_consumed.onnx"), &[]);
    assert!(
        e.contains("MatMulInteger") && e.contains("known only at run time"),
        "{e}"
    );
}

/// A model of several outputs (ONNX's DynamicQuantizeLinear node test)
/// given two inputs at once: each input's outputs come back to back, in
/// the graph's order, as they do for one.
#[test]
fn several_outputs_come_back_per_input_in_the_graphs_order() {
    let case = root().join("tests/fixtures/onnx-node/test_dynamicquantizelinear_min_adjusted");
    let x = std::fs::read(case.join("input.bin")).unwrap();
    let want = std::fs::read(case.join("output.bin")).unwrap();
    assert_eq!(want.len(), 12 + 4 + 1, "y, y_scale, y_zero_point");
    // The second input: the first negated, so another scale and zero point.
    let negated: Vec<u8> = x
        .chunks_exact(4)
        .flat_map(|c| (-f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes())
        .collect();
    let (one, two) = (tmp("dql-one.bin"), tmp("dql-two.bin"));
    std::fs::write(&one, &negated).unwrap();
    std::fs::write(&two, [x.clone(), negated].concat()).unwrap();
    let run = |input: &std::path::Path, name: &str| {
        let out = tmp(name);
        let o = gatehouse(&[
            "infer",
            "--model",
            case.join("model.onnx").to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(out).unwrap()
    };
    let negated_out = run(&one, "dql-one.out");
    assert_ne!(negated_out, want, "the negated input quantizes otherwise");
    assert_eq!(run(&two, "dql-two.out"), [want, negated_out].concat());
}
