//! `wasi-nn-plugin`: a plugin whose model runs through `wasi:nn`, the way
//! code written for wasmtime's wasi-nn drives it, rather than through
//! Gatehouse's own `gatehouse:nn` plans. The model's bytes come at `init`
//! (`gatehouse infer --plugin`), and as wasi-nn cannot describe a model,
//! its input does in settings: `input` (its tensor name), `dims`
//! (comma-separated) and `type` (`fp32` or `u8`, for int8 and uint8).
//! `process` binds the raw input bytes and returns the output tensor's.

use std::cell::RefCell;

use gatehouse_sdk::{
    Config, Descriptor, Inference, InputKind, Plugin, PluginError, Stat, export_plugin, log,
    setting,
};

wit_bindgen::generate!({
    path: "../../wit/deps/wasi-nn",
    world: "ml",
});

use wasi::nn::errors::Error;
use wasi::nn::graph::{self, ExecutionTarget, Graph, GraphEncoding};
use wasi::nn::inference::GraphExecutionContext;
use wasi::nn::tensor::{Tensor, TensorType};

struct Loaded {
    // The graph outlives its execution context.
    _graph: Graph,
    context: GraphExecutionContext,
    input: String,
    dims: Vec<u32>,
    ty: TensorType,
}

thread_local! {
    static MODEL: RefCell<Option<Loaded>> = const { RefCell::new(None) };
}

fn describe(e: Error) -> String {
    format!("{:?}: {}", e.code(), e.data())
}

struct WasiNnPlugin;

impl Plugin for WasiNnPlugin {
    fn describe() -> Descriptor {
        Descriptor {
            name: "wasi-nn-plugin".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Runs a TFLite or ONNX model given at init through wasi:nn".into(),
            input_kinds: vec![InputKind::RawTensor],
            labels: vec![],
        }
    }

    fn init(config: Config) -> Result<(), PluginError> {
        log::install_panic_hook();
        let invalid = PluginError::InvalidConfig;
        let model = config
            .model
            .clone()
            .ok_or_else(|| invalid("no model given".into()))?;
        let input = setting(&config, "input")
            .ok_or_else(|| invalid("set input=NAME, the model's input tensor".into()))?
            .to_string();
        let dims = setting(&config, "dims")
            .ok_or_else(|| invalid("set dims=D,D,...".into()))?
            .split(',')
            .map(|d| d.trim().parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("dims: {e}")))?;
        let ty = match setting(&config, "type") {
            Some("fp32") | None => TensorType::Fp32,
            Some("u8") => TensorType::U8,
            Some(other) => return Err(invalid(format!("type {other:?}: fp32 or u8"))),
        };
        let graph = graph::load(&[model], GraphEncoding::Autodetect, ExecutionTarget::Cpu)
            .map_err(|e| invalid(describe(e)))?;
        let context = graph
            .init_execution_context()
            .map_err(|e| invalid(describe(e)))?;
        MODEL.with(|m| {
            *m.borrow_mut() = Some(Loaded {
                _graph: graph,
                context,
                input,
                dims,
                ty,
            })
        });
        Ok(())
    }

    fn process(input: Vec<u8>) -> Result<Inference, PluginError> {
        MODEL.with(|m| {
            let m = m.borrow();
            let model = m.as_ref().ok_or(PluginError::NotInitialized)?;
            let tensor = Tensor::new(&model.dims, model.ty, &input);
            let outputs = model
                .context
                .compute(vec![(model.input.clone(), tensor)])
                .map_err(|e| PluginError::InvalidInput(describe(e)))?;
            let output = outputs.into_iter().next().map(|(_, t)| t.data());
            Ok(Inference {
                output,
                ..Inference::empty()
            })
        })
    }

    fn stats() -> Vec<Stat> {
        vec![]
    }
}

export_plugin!(WasiNnPlugin);
