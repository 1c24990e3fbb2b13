//! Runs one model through `wasi:nn` and writes its output tensors' bytes,
//! back to back, to stdout (and their names to stderr): `wasi_nn_guest
//! onnx` (a QDQ CNN, float32 NCHW in and out), `wasi_nn_guest tflite`
//! (MLPerf Tiny's keyword spotter, int8 as `U8` bytes) or `wasi_nn_guest
//! dynamic` (ONNX's DynamicQuantizeLinear node test: three outputs); a
//! second argument binds the input under that name instead of
//! the model's, to see the host's error. Written only against the wasi-nn WIT, as a guest for wasmtime's
//! wasi-nn is: no Gatehouse interface. The models and their first inputs
//! are compiled in, so the guest needs no file access.

use std::io::Write;
use std::process::ExitCode;

wit_bindgen::generate!({
    path: "../../wit/deps/wasi-nn",
    world: "ml",
});

use wasi::nn::errors::Error;
use wasi::nn::graph::{self, ExecutionTarget, GraphEncoding};
use wasi::nn::tensor::{Tensor, TensorType};

/// `tests/fixtures/onnx/cnn_int8/`: its model and the first of its inputs.
const ONNX: &[u8] = include_bytes!("../../../tests/fixtures/onnx/cnn_int8/model.onnx");
const ONNX_INPUTS: &[u8] = include_bytes!("../../../tests/fixtures/onnx/cnn_int8/inputs.bin");
/// MLPerf Tiny's keyword spotter and the first conformance vector.
const KWS: &[u8] = include_bytes!("../../../models/mlperf-tiny/kws_ref_model.tflite");
const KWS_INPUTS: &[u8] =
    include_bytes!("../../../tests/fixtures/vectors/kws_ref_model/inputs.bin");
/// `tests/fixtures/onnx-node/test_dynamicquantizelinear_min_adjusted/`.
const DYNAMIC: &[u8] = include_bytes!(
    "../../../tests/fixtures/onnx-node/test_dynamicquantizelinear_min_adjusted/model.onnx"
);
const DYNAMIC_INPUT: &[u8] = include_bytes!(
    "../../../tests/fixtures/onnx-node/test_dynamicquantizelinear_min_adjusted/input.bin"
);

struct Case {
    model: &'static [u8],
    encoding: GraphEncoding,
    input: &'static str,
    dims: &'static [u32],
    ty: TensorType,
    data: &'static [u8],
}

fn case(which: &str) -> Option<Case> {
    Some(match which {
        "onnx" => Case {
            model: ONNX,
            encoding: GraphEncoding::Onnx,
            input: "x",
            dims: &[1, 3, 16, 16],
            ty: TensorType::Fp32,
            data: ONNX_INPUTS.get(..3 * 16 * 16 * 4)?,
        },
        "tflite" => Case {
            model: KWS,
            encoding: GraphEncoding::Tensorflowlite,
            input: "input_1",
            dims: &[1, 49, 10, 1],
            ty: TensorType::U8,
            data: KWS_INPUTS.get(..49 * 10)?,
        },
        "dynamic" => Case {
            model: DYNAMIC,
            encoding: GraphEncoding::Onnx,
            input: "x",
            dims: &[3, 4],
            ty: TensorType::Fp32,
            data: DYNAMIC_INPUT,
        },
        _ => return None,
    })
}

fn describe(e: Error) -> String {
    format!("{:?}: {}", e.code(), e.data())
}

fn run(c: &Case, input_name: &str) -> Result<Vec<u8>, String> {
    let g = graph::load(&[c.model.to_vec()], c.encoding, ExecutionTarget::Cpu).map_err(describe)?;
    let ctx = g.init_execution_context().map_err(describe)?;
    let input = Tensor::new(c.dims, c.ty, c.data);
    let outputs = ctx
        .compute(vec![(input_name.to_string(), input)])
        .map_err(describe)?;
    if outputs.is_empty() {
        return Err("no output tensor".into());
    }
    let mut bytes = Vec::new();
    for (name, t) in outputs {
        eprintln!("output {name}: {:?} {:?}", t.ty(), t.dimensions());
        bytes.extend(t.data());
    }
    Ok(bytes)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(c) = args.get(1).and_then(|w| case(w)) else {
        eprintln!("usage: wasi_nn_guest onnx|tflite|dynamic [INPUT-NAME]");
        return ExitCode::from(2);
    };
    let name = args.get(2).map_or(c.input, String::as_str);
    match run(&c, name) {
        Ok(bytes) => match std::io::stdout().write_all(&bytes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("writing the output: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("wasi-nn: {e}");
            ExitCode::FAILURE
        }
    }
}
