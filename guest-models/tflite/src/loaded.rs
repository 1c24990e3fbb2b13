//! A model of either format the SDK loads: TFLite (a flatbuffer whose
//! identifier is `TFL3`) or ONNX (protobuf), with the semantics each can
//! reproduce.

use gatehouse_sdk::model::{LoadError, TensorInfo};
use gatehouse_sdk::nn::{NnError, Semantics};
use gatehouse_sdk::{Config, PluginError, onnx, setting, tflite};

pub enum Loaded {
    Tflite(tflite::Model),
    Onnx(onnx::Model),
}

/// Whether `bytes` are a TFLite flatbuffer: its file identifier sits at
/// bytes 4 to 8. Anything else is read as ONNX, whose reader says if it
/// is not.
pub fn is_tflite(bytes: &[u8]) -> bool {
    bytes.get(4..8) == Some(b"TFL3")
}

/// Why bytes that are not TFLite failed as ONNX: when they are not ONNX
/// either, say so for both formats, since the file may have been meant
/// as either.
pub fn neither(e: LoadError) -> String {
    match e {
        LoadError::Malformed(m) => format!(
            "malformed model: not a TensorFlow Lite model (no TFL3 identifier at byte 4) nor an ONNX model: {m}"
        ),
        e => e.to_string(),
    }
}

impl Loaded {
    pub fn load(bytes: &[u8], config: &Config) -> Result<Loaded, PluginError> {
        let invalid = |m: String| PluginError::InvalidConfig(m);
        let semantics = setting(config, "semantics");
        if !is_tflite(bytes) {
            if !matches!(semantics, None | Some("onnxruntime")) {
                return Err(invalid(format!(
                    "semantics {:?} for an ONNX model: ONNX models run with onnxruntime's (the default)",
                    semantics.unwrap_or_default()
                )));
            }
            if setting(config, "output-tensor").is_some() {
                return Err(invalid("output-tensor is for TFLite models".into()));
            }
            return onnx::Model::load(bytes)
                .map(Loaded::Onnx)
                .map_err(|e| invalid(neither(e)));
        }
        let semantics = match semantics {
            None | Some("reference") => Semantics::TfliteReference,
            Some("micro") => Semantics::TfliteMicro,
            Some(other) => {
                return Err(invalid(format!(
                    "semantics {other:?} for a TFLite model: expected reference or micro"
                )));
            }
        };
        let output_tensor = match setting(config, "output-tensor") {
            None => None,
            Some(v) => Some(
                v.parse::<usize>()
                    .map_err(|_| invalid(format!("output-tensor {v:?} is not a tensor index")))?,
            ),
        };
        tflite::Model::load(
            bytes,
            tflite::LoadOptions {
                semantics,
                output_tensor,
            },
        )
        .map(Loaded::Tflite)
        .map_err(|e| invalid(e.to_string()))
    }

    pub fn input(&self) -> &TensorInfo {
        match self {
            Loaded::Tflite(m) => m.input(),
            Loaded::Onnx(m) => m.input(),
        }
    }

    pub fn output(&self) -> &TensorInfo {
        match self {
            Loaded::Tflite(m) => m.output(),
            Loaded::Onnx(m) => m.output(),
        }
    }

    /// The bytes one input's outputs take: an ONNX model may have several,
    /// back to back.
    pub fn output_bytes(&self) -> usize {
        match self {
            Loaded::Tflite(m) => m.output().byte_len,
            Loaded::Onnx(m) => m.output_bytes(),
        }
    }

    pub fn operators(&self) -> &[String] {
        match self {
            Loaded::Tflite(m) => m.operators(),
            Loaded::Onnx(m) => m.operators(),
        }
    }

    /// The planned activation arena; ONNX activations have a tensor each.
    pub fn arena_bytes(&self) -> Option<usize> {
        match self {
            Loaded::Tflite(m) => Some(m.arena_bytes()),
            Loaded::Onnx(_) => None,
        }
    }

    pub fn invoke(&self, data: &[u8]) -> Result<Vec<u8>, NnError> {
        match self {
            Loaded::Tflite(m) => m.invoke(data),
            Loaded::Onnx(m) => m.invoke(data),
        }
    }
}
