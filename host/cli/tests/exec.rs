//! `gatehouse exec`: a `wasi:cli/command` written against `wasi:nn` only, as
//! for wasmtime (`guest-models/wasi-nn-guest`), runs a TFLite and an ONNX
//! model with the outputs `gatehouse infer` gives.

use crate::common::{gatehouse, root, stderr, tmp};

fn guest() -> String {
    root()
        .join("target/components/wasi-nn-guest.wasm")
        .to_string_lossy()
        .into_owned()
}

/// `infer` on the first `bytes` of `inputs`.
fn infer(model: &str, inputs: &str, bytes: usize) -> Vec<u8> {
    let first = tmp(&format!("exec-in-{bytes}.bin"));
    std::fs::write(
        &first,
        &std::fs::read(root().join(inputs)).unwrap()[..bytes],
    )
    .unwrap();
    let out = tmp(&format!("exec-out-{bytes}.bin"));
    let o = gatehouse(&[
        "infer",
        "--model",
        root().join(model).to_str().unwrap(),
        "--input",
        first.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::read(out).unwrap()
}

#[test]
fn a_wasi_nn_guest_runs_tflite_and_onnx_models_as_infer_does() {
    let o = gatehouse(&["exec", &guest(), "onnx"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = infer(
        "tests/fixtures/onnx/cnn_int8/model.onnx",
        "tests/fixtures/onnx/cnn_int8/inputs.bin",
        3 * 16 * 16 * 4,
    );
    assert_eq!(o.stdout, want, "ONNX through wasi-nn and through infer");
    assert_eq!(o.stdout.len(), 16, "four float32 logits");

    let o = gatehouse(&["exec", &guest(), "tflite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = infer(
        "models/mlperf-tiny/kws_ref_model.tflite",
        "tests/fixtures/vectors/kws_ref_model/inputs.bin",
        49 * 10,
    );
    assert_eq!(o.stdout, want, "TFLite through wasi-nn and through infer");
    // And the TFLite interpreter's own outputs for that vector.
    let reference =
        std::fs::read(root().join("tests/fixtures/vectors/kws_ref_model/outputs.bin")).unwrap();
    assert_eq!(o.stdout, reference[..12]);
}

/// A model of three outputs (DynamicQuantizeLinear's): `compute` returns
/// each by its name, and their bytes are `infer`'s and the node test's.
#[test]
fn a_wasi_nn_guest_gets_every_output_by_name() {
    let case = "tests/fixtures/onnx-node/test_dynamicquantizelinear_min_adjusted";
    let o = gatehouse(&["exec", &guest(), "dynamic"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names = stderr(&o);
    for line in [
        "output y: TensorType::U8 [3, 4]",
        "output y_scale: TensorType::Fp32 []",
        "output y_zero_point: TensorType::U8 []",
    ] {
        assert!(names.contains(line), "{line} in {names}");
    }
    let want = infer(
        &format!("{case}/model.onnx"),
        &format!("{case}/input.bin"),
        12 * 4,
    );
    assert_eq!(o.stdout, want, "through wasi-nn and through infer");
    let expected = std::fs::read(root().join(case).join("output.bin")).unwrap();
    assert_eq!(
        o.stdout, expected,
        "the node test's y, y_scale and y_zero_point"
    );
}

/// The guest's exit status is the command's (WASI 0.2's `exit` carries
/// success or failure only, so a failing guest exits 1); a component that
/// is not a command, or a loader that is not one, is a clear error.
#[test]
fn exec_passes_the_exit_code_through_and_refuses_what_is_not_a_command() {
    let o = gatehouse(&["exec", &guest(), "no-such-model"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("usage"), "{}", stderr(&o));

    // An input bound under another name than the model's: the guest reads
    // the host's error and fails.
    let o = gatehouse(&["exec", &guest(), "onnx", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("InvalidArgument") && stderr(&o).contains("no input named 'nope'"),
        "{}",
        stderr(&o)
    );

    // A plugin is a component, but not a command.
    let plugin = root().join("target/plugins/tflite.wasm");
    let o = gatehouse(&["exec", plugin.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("wasi:cli/command"), "{}", stderr(&o));

    // Without a model loader, graph.load fails with an error the guest
    // reads, and the guest says so.
    let not_a_plugin = tmp("not-a-loader.wasm");
    std::fs::write(&not_a_plugin, b"\0asm\x0d\0\x01\0").unwrap();
    let o = gatehouse(&[
        "exec",
        "--loader",
        not_a_plugin.to_str().unwrap(),
        &guest(),
        "onnx",
    ]);
    assert!(!o.status.success());
}

/// The same wasi-nn code as a plugin (`guest-models/wasi-nn-plugin`): its
/// model, given at init, runs through `wasi:nn` with `infer`'s outputs, and
/// `check` says what `wasi:nn` gets.
#[test]
fn a_plugin_that_imports_wasi_nn_runs_its_model_as_infer_does() {
    let plugin = root().join("target/plugins/wasi-nn-plugin.wasm");
    let plugin = plugin.to_str().unwrap();
    for (model, inputs, bytes, sets) in [
        (
            "tests/fixtures/onnx/cnn_int8/model.onnx",
            "tests/fixtures/onnx/cnn_int8/inputs.bin",
            3 * 16 * 16 * 4,
            ["input=x", "dims=1,3,16,16", "type=fp32"],
        ),
        (
            "models/mlperf-tiny/kws_ref_model.tflite",
            "tests/fixtures/vectors/kws_ref_model/inputs.bin",
            49 * 10,
            ["input=input_1", "dims=1,49,10,1", "type=u8"],
        ),
    ] {
        let want = infer(model, inputs, bytes);
        let first = tmp(&format!("exec-in-{bytes}.bin"));
        let model = root().join(model);
        let out = tmp(&format!("wasi-nn-plugin-{bytes}.bin"));
        let mut args = vec![
            "infer",
            "--plugin",
            plugin,
            "--model",
            model.to_str().unwrap(),
            "--input",
            first.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ];
        for s in &sets {
            args.extend(["--set", s]);
        }
        let o = gatehouse(&args);
        assert!(o.status.success(), "{model:?}: {}", stderr(&o));
        assert_eq!(
            std::fs::read(&out).unwrap(),
            want,
            "{model:?} through a wasi-nn plugin"
        );
    }
    let o = gatehouse(&["check", plugin]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("wasi:nn/graph") && l.contains("granted")),
        "{text}"
    );
}
