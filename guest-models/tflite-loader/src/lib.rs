//! `tflite-loader`: the Rust SDK's TFLite loader as a component that
//! exports `gatehouse:tflite/model@0.1.0`. A plugin written in Python or
//! JavaScript imports that interface and is composed with this component
//! (`wac plug`), so that model files are parsed inside the sandbox, in the
//! plugin's own instance and within its limits, never by the host.

use gatehouse_sdk::nn::Semantics;
use gatehouse_sdk::tflite::{LoadError, LoadOptions, Model, TensorInfo};

wit_bindgen::generate!({
    path: "../../wit",
    world: "gatehouse:tflite/loader@0.1.0",
    with: {
        "gatehouse:nn/tensors@0.1.0": gatehouse_sdk::bindings::gatehouse::nn0_1_0::tensors,
        "gatehouse:nn/ops@0.1.0": gatehouse_sdk::bindings::gatehouse::nn0_1_0::ops,
    },
});

use exports::gatehouse::tflite::model as wm;

struct Loader;

/// A loaded model: its plan and tensors live on the host.
struct Loaded(Model);

fn info(t: &TensorInfo) -> wm::TensorInfo {
    wm::TensorInfo {
        name: t.name.clone(),
        shape: t.shape.clone(),
        byte_len: u32::try_from(t.byte_len).unwrap_or(u32::MAX),
        scale: t.scale,
        zero_point: t.zero_point,
    }
}

fn load_error(e: LoadError) -> wm::ModelError {
    match e {
        LoadError::Malformed(_) => wm::ModelError::Malformed(e.to_string()),
        LoadError::Unsupported(_) | LoadError::UnsupportedOp { .. } => {
            wm::ModelError::Unsupported(e.to_string())
        }
        LoadError::Host { .. } => wm::ModelError::Kernel(e.to_string()),
    }
}

impl wm::Guest for Loader {
    type Model = Loaded;
}

impl wm::GuestModel for Loaded {
    fn load(bytes: Vec<u8>, semantics: Semantics) -> Result<wm::Model, wm::ModelError> {
        let model = Model::load(
            &bytes,
            LoadOptions {
                semantics,
                output_tensor: None,
            },
        )
        .map_err(load_error)?;
        Ok(wm::Model::new(Loaded(model)))
    }

    fn input(&self) -> wm::TensorInfo {
        info(self.0.input())
    }

    fn output(&self) -> wm::TensorInfo {
        info(self.0.output())
    }

    fn invoke(&self, data: Vec<u8>) -> Result<Vec<u8>, wm::ModelError> {
        let model = &self.0;
        let one = model.input().byte_len;
        if data.is_empty() || one == 0 || data.len() % one != 0 {
            return Err(wm::ModelError::InvalidInput(format!(
                "{} bytes of input; the model takes whole inputs of {one} bytes",
                data.len()
            )));
        }
        model
            .invoke(&data)
            .map_err(|e| wm::ModelError::Kernel(e.message()))
    }

    fn arena_bytes(&self) -> u64 {
        self.0.arena_bytes() as u64
    }

    fn operators(&self) -> Vec<String> {
        self.0.operators().to_vec()
    }
}

export!(Loader);
