//! The ONNX backend node tests of the integer operators
//! (tests/fixtures/onnx-node/, generated from the cases inside the `onnx`
//! package): the ones whose types the loader takes give the cases' own
//! outputs byte for byte; every other one is refused with a reason, which
//! this test prints. A refused case that starts to pass fails the test
//! until it is listed here, so the list stays what is true.

use crate::common::{gatehouse, root, stderr, tmp};

/// The cases that run, exactly.
const PASSING: &[&str] = &[
    "test_convinteger_with_padding",
    "test_convinteger_without_padding",
    "test_dequantizelinear",
    "test_dequantizelinear_axis",
    "test_dequantizelinear_blocked",
    "test_dynamicquantizelinear",
    "test_dynamicquantizelinear_max_adjusted",
    "test_dynamicquantizelinear_min_adjusted",
    "test_matmulinteger",
    "test_qlinearmatmul_2D_int8_float32",
    "test_qlinearconv",
    "test_qlinearmatmul_2D_uint8_float32",
    "test_qlinearmatmul_3D_int8_float32",
    "test_qlinearmatmul_3D_uint8_float32",
    "test_quantizelinear",
    "test_quantizelinear_axis",
    "test_quantizelinear_blocked_asymmetric",
];

#[test]
fn onnx_node_tests_pass_exactly_or_are_refused_with_a_reason() {
    let dir = root().join("tests/fixtures/onnx-node");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("the node-test fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 40,
        "expected the node tests, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut refused = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let out = tmp(&format!("node-{name}.bin"));
        let o = gatehouse(&[
            "infer",
            "--model",
            case.join("model.onnx").to_str().unwrap(),
            "--input",
            case.join("input.bin").to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ]);
        let listed = PASSING.contains(&name.as_str());
        if o.status.success() {
            let same =
                std::fs::read(&out).unwrap() == std::fs::read(case.join("output.bin")).unwrap();
            match (same, listed) {
                (true, true) => {}
                (true, false) => failures.push(format!("{name} now passes: list it in PASSING")),
                (false, _) => failures.push(format!("{name}: ran, but its output differs")),
            }
            continue;
        }
        let why = stderr(&o);
        let why = why.trim();
        if listed {
            failures.push(format!("{name} is refused: {why}"));
        } else if !(why.contains("unsupported") || why.contains("not supported")) {
            failures.push(format!(
                "{name} fails without saying what is unsupported: {why}"
            ));
        } else {
            refused.push(format!("{name}: {why}"));
        }
    }
    eprintln!("refused, with the loader's reason:\n{}", refused.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(refused.len() + PASSING.len(), cases.len());
}
