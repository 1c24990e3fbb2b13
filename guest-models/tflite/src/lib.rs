//! `tflite`: runs any supported int8 TensorFlow Lite or ONNX model on raw
//! input tensors. The host hands the model bytes to `init`. It implements
//! `gatehouse:plugin@0.2.0`: a batch of requests is one `plan.invoke`.

mod description;
mod loaded;

use std::cell::RefCell;

use gatehouse_sdk::{
    Batch, Config, Descriptor, Inference, InputKind, Plugin, PluginError, Stat,
    export_batched_plugin, log, setting,
};
use loaded::Loaded as Model;

struct Tflite;

thread_local! {
    static MODEL: RefCell<Option<Model>> = const { RefCell::new(None) };
    /// With `describe=true`: the model's description, the answer to every request.
    static DESCRIPTION: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn described() -> Option<Inference> {
    DESCRIPTION.with(|d| {
        d.borrow().as_ref().map(|text| Inference {
            output: Some(text.as_bytes().to_vec()),
            ..Inference::empty()
        })
    })
}

impl Plugin for Tflite {
    fn describe() -> Descriptor {
        Descriptor {
            name: "tflite".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Runs an int8 TFLite or ONNX model given at init on raw input tensors".into(),
            input_kinds: vec![InputKind::RawTensor],
            labels: vec![],
        }
    }

    fn init(config: Config) -> Result<(), PluginError> {
        log::install_panic_hook();
        let bytes = config.model.as_deref().ok_or_else(|| {
            PluginError::InvalidConfig(
                "no model given; pass the .tflite or .onnx bytes at init".into(),
            )
        })?;
        if setting(&config, "describe") == Some("true") {
            let text = description::describe(bytes).map_err(PluginError::InvalidConfig)?;
            DESCRIPTION.with(|d| *d.borrow_mut() = Some(text));
            return Ok(());
        }
        let model = Model::load(bytes, &config)?;
        log::info(&format!(
            "model loaded: {} operators, input {:?} {:?}, output {:?}, arena {:?} bytes",
            model.operators().len(),
            model.input().shape,
            model.input().dtype,
            model.output().shape,
            model.arena_bytes()
        ));
        MODEL.with(|m| *m.borrow_mut() = Some(model));
        Ok(())
    }

    fn process(input: Vec<u8>) -> Result<Inference, PluginError> {
        if let Some(d) = described() {
            return Ok(d);
        }
        MODEL.with(|m| {
            let m = m.borrow();
            let model = m.as_ref().ok_or(PluginError::NotInitialized)?;
            whole_inputs(model, &input)?;
            let output = model
                .invoke(&input)
                .map_err(|e| PluginError::Kernel(e.message()))?;
            Ok(Inference {
                output: Some(output),
                ..Inference::empty()
            })
        })
    }

    fn stats() -> Vec<Stat> {
        MODEL.with(|m| match m.borrow().as_ref() {
            Some(model) => {
                let mut stats = vec![Stat {
                    name: "operators".into(),
                    value: model.operators().len() as u64,
                }];
                if let Some(arena) = model.arena_bytes() {
                    stats.insert(
                        0,
                        Stat {
                            name: "arena-peak-bytes".into(),
                            value: arena as u64,
                        },
                    );
                }
                stats
            }
            None => vec![],
        })
    }
}

/// The number of whole model inputs in `input`, or why it is not one.
fn whole_inputs(model: &Model, input: &[u8]) -> Result<usize, PluginError> {
    let want = model.input().byte_len;
    if want == 0 || input.is_empty() || !input.len().is_multiple_of(want) {
        return Err(PluginError::InvalidInput(format!(
            "{} bytes is not a whole number of inputs: each is {want} bytes ({:?} {:?})",
            input.len(),
            model.input().shape,
            model.input().dtype
        )));
    }
    Ok(input.len() / want)
}

impl Batch for Tflite {
    /// The valid requests' tensors go to the host in one `plan.invoke`;
    /// each gets its own slice of the outputs. A malformed request gets its
    /// own error and does not hold up the others.
    fn process_batch(inputs: Vec<Vec<u8>>) -> Vec<Result<Inference, PluginError>> {
        if let Some(d) = described() {
            return inputs.iter().map(|_| Ok(d.clone())).collect();
        }
        MODEL.with(|m| {
            let m = m.borrow();
            let Some(model) = m.as_ref() else {
                return inputs
                    .iter()
                    .map(|_| Err(PluginError::NotInitialized))
                    .collect();
            };
            let counts: Vec<Result<usize, PluginError>> =
                inputs.iter().map(|i| whole_inputs(model, i)).collect();
            let mut joined = Vec::with_capacity(inputs.iter().map(Vec::len).sum());
            for (input, count) in inputs.iter().zip(&counts) {
                if count.is_ok() {
                    joined.extend_from_slice(input);
                }
            }
            let outputs = if joined.is_empty() {
                Ok(Vec::new())
            } else {
                model
                    .invoke(&joined)
                    .map_err(|e| PluginError::Kernel(e.message()))
            };
            let per_input = model.output_bytes();
            let mut at = 0;
            counts
                .into_iter()
                .map(|count| {
                    let count = count?;
                    let outputs = outputs.as_ref().map_err(Clone::clone)?;
                    let end = at + count * per_input;
                    let output = outputs.get(at..end).ok_or_else(|| {
                        PluginError::Kernel(format!(
                            "the host returned {} output bytes, fewer than {end}",
                            outputs.len()
                        ))
                    })?;
                    at = end;
                    Ok(Inference {
                        output: Some(output.to_vec()),
                        ..Inference::empty()
                    })
                })
                .collect()
        })
    }
}

export_batched_plugin!(Tflite);
