//! `gatehouse infer` on the MLPerf Tiny conformance vectors: byte-identical to
//! the TFLite interpreter's reference kernels (tests/fixtures/vectors/README.md).

use crate::common::{gatehouse, gatehouse_with, kernel_sets, root, stderr, tmp};

fn check(model: &str, semantics: &str, expected: &str) {
    check_with(model, semantics, expected, &[]);
}

fn check_with(model: &str, semantics: &str, expected: &str, env: &[(&str, &str)]) {
    check_on(model, semantics, expected, env, "1");
}

fn check_on(model: &str, semantics: &str, expected: &str, env: &[(&str, &str)], threads: &str) {
    let dir = root().join("tests/fixtures/vectors").join(model);
    let out = tmp(&format!("{model}-{semantics}.bin"));
    let o = gatehouse_with(
        &[
            "infer",
            "--threads",
            threads,
            "--model",
            root()
                .join(format!("models/mlperf-tiny/{model}.tflite"))
                .to_str()
                .unwrap(),
            "--input",
            dir.join("inputs.bin").to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--semantics",
            semantics,
        ],
        env,
    );
    assert!(o.status.success(), "{model} on {threads}: {}", stderr(&o));
    let got = std::fs::read(&out).expect("output");
    let want = std::fs::read(dir.join(expected)).expect("reference");
    assert_eq!(got.len(), want.len(), "{model}: output size");
    let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert_eq!(
        diff,
        0,
        "{model} on {threads} thread(s): {diff} of {} bytes differ from {expected}",
        want.len()
    );
}

#[test]
fn every_kernel_set_this_cpu_runs_is_bit_exact() {
    let sets = kernel_sets();
    assert!(sets.contains(&"scalar".to_string()), "{sets:?}");
    for set in &sets {
        for model in [
            "kws_ref_model",
            "vww_96_int8",
            "pretrainedResnet_quant",
            "ad01_int8",
            "str_ww_ref_model",
        ] {
            check_with(
                model,
                "reference",
                "outputs.bin",
                &[("GATEHOUSE_KERNELS", set)],
            );
        }
        check_with(
            "ad01_int8",
            "micro",
            "outputs_tflm.bin",
            &[("GATEHOUSE_KERNELS", set)],
        );
    }
}

/// Layers split over threads compute each output row as the whole layer
/// does: every set gives the reference's bytes at any thread count, with
/// as many threads as cores and more (slabs of unequal heights). Every
/// layer big enough is split here, whatever its work per byte: the `amx`
/// set would keep these models' layers whole.
#[test]
fn every_kernel_set_is_bit_exact_on_several_threads() {
    for set in &kernel_sets() {
        for threads in ["2", "3"] {
            for model in [
                "kws_ref_model",
                "vww_96_int8",
                "pretrainedResnet_quant",
                "str_ww_ref_model",
            ] {
                check_on(
                    model,
                    "reference",
                    "outputs.bin",
                    &[
                        ("GATEHOUSE_KERNELS", set),
                        ("GATEHOUSE_SPLIT_MACS_PER_BYTE", "0"),
                    ],
                    threads,
                );
            }
        }
    }
}

#[test]
fn kws_is_bit_exact() {
    check("kws_ref_model", "reference", "outputs.bin");
}

#[test]
fn vww_is_bit_exact() {
    check("vww_96_int8", "reference", "outputs.bin");
}

#[test]
fn ic_is_bit_exact() {
    check("pretrainedResnet_quant", "reference", "outputs.bin");
}

#[test]
fn anomaly_is_bit_exact() {
    check("ad01_int8", "reference", "outputs.bin");
}

#[test]
fn streaming_wakeword_is_bit_exact() {
    check("str_ww_ref_model", "reference", "outputs.bin");
}

#[test]
fn anomaly_matches_tflite_micro_in_micro_mode() {
    check("ad01_int8", "micro", "outputs_tflm.bin");
}

#[test]
fn wrong_input_size_is_a_one_line_error() {
    let input = tmp("short.bin");
    std::fs::write(&input, [0u8; 100]).unwrap();
    let o = gatehouse(&[
        "infer",
        "--model",
        "models/mlperf-tiny/kws_ref_model.tflite",
        "--input",
        input.to_str().unwrap(),
        "--output",
        tmp("x").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(
        e.contains("100 bytes is not a whole number of inputs: each is 490 bytes"),
        "{e}"
    );
}

#[test]
fn an_unsupported_operator_is_named_with_its_index() {
    let o = gatehouse(&[
        "infer",
        "--model",
        "tests/fixtures/models/unsupported_op.tflite",
        "--input",
        "tests/fixtures/vectors/kws_ref_model/inputs.bin",
        "--output",
        tmp("y").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("operator 12 (LSTM) is not supported"), "{e}");
}

#[test]
fn a_malformed_model_is_a_one_line_error() {
    let model = tmp("bad.tflite");
    std::fs::write(&model, b"this is not a flatbuffer at all").unwrap();
    let o = gatehouse(&[
        "infer",
        "--model",
        model.to_str().unwrap(),
        "--input",
        "tests/fixtures/vectors/kws_ref_model/inputs.bin",
        "--output",
        tmp("z").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("malformed model"), "{e}");
}
