//! What a model is and what it costs, read without the host and without
//! refusing anything: every operator as TFLite names it, whether this
//! loader runs it (and why not), its multiply-accumulates and parameters,
//! and the model's totals. `gatehouse describe --model` shows it, so that
//! a vendor knows before deploying.

use super::LoadError;
use super::ops::{Builtin, builtin_code, supports, tflite_name};
use super::schema::tflite as fb;

/// One operator.
#[derive(Clone, Debug, PartialEq)]
pub struct OpSummary {
    pub index: usize,
    /// As TFLite names it: `CONV_2D`, `UNIDIRECTIONAL_SEQUENCE_LSTM`, ...
    pub name: String,
    /// Why the loader cannot run it, if it cannot.
    pub unsupported: Option<String>,
    /// Multiply-accumulates for one inference (batch of one); 0 for
    /// operators without a matrix product.
    pub macs: u64,
    /// Elements of its constant inputs (weights, biases).
    pub params: u64,
    /// Its first output's shape as the model gives it.
    pub output_shape: Vec<i64>,
}

/// The whole model.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub operators: Vec<OpSummary>,
    /// Elements of every constant tensor, each counted once.
    pub parameters: u64,
    /// Bytes of every constant tensor's data, each counted once.
    pub weight_bytes: u64,
    pub macs: u64,
    pub tensors: usize,
}

impl Summary {
    pub fn all_supported(&self) -> bool {
        self.operators.iter().all(|o| o.unsupported.is_none())
    }
}

struct Tensor {
    shape: Vec<i64>,
    ty: Option<fb::TensorType>,
    /// Bytes of constant data, if any.
    data: Option<u64>,
    /// A state tensor (an LSTM's), which the host operator keeps itself.
    variable: bool,
}

impl Tensor {
    fn elements(&self) -> u64 {
        self.shape.iter().map(|&d| d.max(0) as u64).product()
    }
}

fn dtype_supported(t: &Tensor) -> bool {
    use fb::TensorType as T;
    matches!(t.ty, Some(T::Int8 | T::Uint8 | T::Int32 | T::Float32))
        || (t.variable && t.ty == Some(T::Int16))
}

/// Read `bytes` leniently: a malformed flatbuffer is an error; anything
/// well-formed is described, supported or not.
pub fn summarize(bytes: &[u8]) -> Result<Summary, LoadError> {
    if bytes.len() < 8 || &bytes[4..8] != b"TFL3" {
        return Err(LoadError::Malformed(
            "no TFL3 file identifier; not a TensorFlow Lite model".into(),
        ));
    }
    let model = <fb::ModelRef<'_> as planus::ReadAsRoot>::read_as_root(bytes)?;
    let buffers = model.buffers()?;
    let subgraphs = model
        .subgraphs()?
        .ok_or_else(|| LoadError::Malformed("no subgraphs".into()))?;
    let sg = subgraphs
        .get(0)
        .ok_or_else(|| LoadError::Malformed("no subgraph 0".into()))??;
    let mut tensors = Vec::new();
    for t in sg.tensors()?.into_iter().flatten() {
        let t = t?;
        let shape: Vec<i64> = t
            .shape()?
            .map(|s| s.iter().map(i64::from).collect())
            .unwrap_or_default();
        let data = match (t.buffer()?, buffers) {
            (0, _) | (_, None) => None,
            (b, Some(bufs)) => match bufs.get(b as usize) {
                Some(buf) => buf?.data()?.map(|d| d.len() as u64).filter(|&n| n > 0),
                None => return Err(LoadError::Malformed(format!("buffer {b} does not exist"))),
            },
        };
        tensors.push(Tensor {
            shape,
            ty: t.type_().ok(),
            data,
            variable: t.is_variable().unwrap_or(false),
        });
    }
    let codes = model
        .operator_codes()?
        .ok_or_else(|| LoadError::Malformed("no operator codes".into()))?;
    let tensor =
        |i: i32| -> Option<&Tensor> { usize::try_from(i).ok().and_then(|i| tensors.get(i)) };
    let mut operators = Vec::new();
    for (index, op) in sg.operators()?.into_iter().flatten().enumerate() {
        let op = op?;
        let code = codes.get(op.opcode_index()? as usize).ok_or_else(|| {
            LoadError::Malformed(format!("operator {index} has an unknown opcode index"))
        })??;
        let inputs: Vec<i32> = op.inputs()?.map(|v| v.iter().collect()).unwrap_or_default();
        let outputs: Vec<i32> = op
            .outputs()?
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        let (name, builtin) = match builtin_code(&code)? {
            Builtin::Known(b) => (tflite_name(b), Some(b)),
            Builtin::Other(name) => (name, None),
        };
        let out = outputs.first().and_then(|&o| tensor(o));
        let out_elems = out.map(Tensor::elements).unwrap_or(0);
        let shape_of = |k: usize| {
            inputs
                .get(k)
                .and_then(|&i| tensor(i))
                .map(|t| t.shape.as_slice())
        };
        let dim = |k: usize, d: usize| shape_of(k).and_then(|s| s.get(d)).map(|&v| v.max(0) as u64);
        use fb::BuiltinOperator as B;
        let macs = match builtin {
            // Filter [OC, KH, KW, IC].
            Some(B::Conv2d) => {
                out_elems * dim(1, 1).unwrap_or(0) * dim(1, 2).unwrap_or(0) * dim(1, 3).unwrap_or(0)
            }
            // Filter [1, KH, KW, OC].
            Some(B::DepthwiseConv2d) => out_elems * dim(1, 1).unwrap_or(0) * dim(1, 2).unwrap_or(0),
            // Filter [units, depth].
            Some(B::FullyConnected) => out_elems * dim(1, 1).unwrap_or(0),
            // The contracted dimension is the left operand's last.
            Some(B::BatchMatmul) => {
                let k = shape_of(0).and_then(|s| s.last()).map(|&v| v.max(0) as u64);
                out_elems * k.unwrap_or(0)
            }
            // Inputs 1-8 are the gates' input and recurrent weights, each
            // applied once per step: [batch, time, ...] steps in all.
            Some(B::UnidirectionalSequenceLstm) => {
                let steps = shape_of(0)
                    .map(|s| {
                        s[..s.len().saturating_sub(1)]
                            .iter()
                            .map(|&d| d.max(0) as u64)
                            .product()
                    })
                    .unwrap_or(0);
                let weights: u64 = (1..=8)
                    .filter_map(|k| inputs.get(k).and_then(|&i| tensor(i)))
                    .map(Tensor::elements)
                    .sum();
                steps * weights
            }
            _ => 0,
        };
        let params: u64 = inputs
            .iter()
            .filter_map(|&i| tensor(i))
            .filter(|t| t.data.is_some())
            .map(Tensor::elements)
            .sum();
        let unsupported =
            match builtin {
                Some(b) if supports(b) => inputs
                    .iter()
                    .chain(&outputs)
                    .filter(|&&i| i >= 0)
                    .find_map(|&i| {
                        let t = tensor(i)?;
                        (!dtype_supported(t)).then(|| format!("tensor {i} has type {:?}", t.ty))
                    }),
                _ => Some("no kernel for this operator".to_string()),
            };
        operators.push(OpSummary {
            index,
            name,
            unsupported,
            macs,
            params,
            output_shape: out.map(|t| t.shape.clone()).unwrap_or_default(),
        });
    }
    let constants = tensors.iter().filter(|t| t.data.is_some());
    Ok(Summary {
        parameters: constants.clone().map(Tensor::elements).sum(),
        weight_bytes: constants.filter_map(|t| t.data).sum(),
        macs: operators.iter().map(|o| o.macs).sum(),
        tensors: tensors.len(),
        operators,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str) -> Vec<u8> {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/mlperf-tiny/");
        std::fs::read(format!("{p}{name}")).unwrap()
    }

    #[test]
    fn ds_cnn_costs_what_its_architecture_says() {
        // MLPerf Tiny's DS-CNN: a 10x4 convolution, stride 2, to 64
        // channels over 49x10 features (25x5 out), four blocks of a 3x3
        // depthwise and a 1x1 pointwise convolution, average pooling, and
        // a 64 -> 12 fully connected layer; biases of 64 or 12.
        let s = summarize(&model("kws_ref_model.tflite")).unwrap();
        let names: Vec<&str> = s.operators.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names[..3], ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"]);
        assert_eq!(
            names[9..],
            ["AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
        );
        let out = 25 * 5 * 64;
        let macs: Vec<u64> = s.operators.iter().map(|o| o.macs).collect();
        assert_eq!(macs[..3], [out * 10 * 4, out * 9, out * 64]);
        assert_eq!(macs[11], 64 * 12);
        assert_eq!(s.macs, out * 10 * 4 + 4 * (out * 9 + out * 64) + 64 * 12);
        // Weights and biases, plus RESHAPE's two-element shape.
        let params = (10 * 4 * 64 + 64) + 4 * ((9 * 64 + 64) + (64 * 64 + 64)) + (64 * 12 + 12);
        assert_eq!(s.parameters, params + 2);
        assert!(s.all_supported());
    }

    #[test]
    fn the_anomaly_autoencoder_costs_its_layers() {
        // 640 -> 128 x4 -> 8 -> 128 x4 -> 640, fully connected.
        let s = summarize(&model("ad01_int8.tflite")).unwrap();
        let dims = [640u64, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640];
        let macs: u64 = dims.windows(2).map(|w| w[0] * w[1]).sum();
        let biases: u64 = dims[1..].iter().sum();
        assert_eq!(s.macs, macs);
        assert_eq!(s.parameters, macs + biases);
        assert_eq!(s.operators.len(), 10);
    }

    /// The kws model with its SOFTMAX made a GATHER, and one tensor made
    /// int16: a model this loader cannot run, described anyway.
    fn unsupported_kws() -> Vec<u8> {
        let bytes = model("kws_ref_model.tflite");
        let root = <fb::ModelRef<'_> as planus::ReadAsRoot>::read_as_root(&bytes[..]).unwrap();
        let mut m = fb::Model::try_from(root).unwrap();
        for code in m.operator_codes.iter_mut().flatten() {
            // Older converters fill in only the deprecated code.
            if code.deprecated_builtin_code == fb::BuiltinOperator::Softmax as i8 {
                code.builtin_code = fb::BuiltinOperator::Gather;
                code.deprecated_builtin_code = fb::BuiltinOperator::Gather as i8;
            }
        }
        let sg = &mut m.subgraphs.as_mut().unwrap()[0];
        let fc = &sg.operators.as_ref().unwrap()[11];
        let fc_out = fc.outputs.as_ref().unwrap()[0] as usize;
        sg.tensors.as_mut().unwrap()[fc_out].type_ = fb::TensorType::Int16;
        // Without planus's file identifier (it lands before the root
        // offset), then with one inserted after it: every offset past it
        // is relative, so moving the rest by 4 bytes keeps them right.
        let mut b = planus::Builder::new();
        let plain = b.finish(&m, None).to_vec();
        let root = u32::from_le_bytes(plain[..4].try_into().unwrap()) + 4;
        [&root.to_le_bytes()[..], b"TFL3", &plain[4..]].concat()
    }

    #[test]
    fn unsupported_operators_and_types_are_named_not_refused() {
        let s = summarize(&unsupported_kws()).unwrap();
        assert!(!s.all_supported());
        let fc = &s.operators[11];
        assert_eq!(fc.name, "FULLY_CONNECTED");
        assert!(
            fc.unsupported.as_deref().unwrap().contains("Int16"),
            "{fc:?}"
        );
        let last = &s.operators[12];
        assert_eq!(last.name, "GATHER");
        assert_eq!(
            last.unsupported.as_deref(),
            Some("no kernel for this operator")
        );
        assert!(s.operators[..11].iter().all(|o| o.unsupported.is_none()));
    }

    /// The op-coverage suite's LSTM with attention: its int16 cell state is
    /// an LSTM's own, so every operator is supported, and the sequence
    /// operators cost what their shapes say.
    #[test]
    fn an_lstm_with_attention_is_supported_and_costed() {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/ops/lstm_attention/model.tflite"
        );
        let s = summarize(&std::fs::read(p).unwrap()).unwrap();
        assert!(s.all_supported(), "{:?}", s.operators);
        let macs = |name: &str| -> Vec<u64> {
            s.operators
                .iter()
                .filter(|o| o.name == name)
                .map(|o| o.macs)
                .collect()
        };
        // 10 steps of four gates over 6 inputs and 12 cells.
        assert_eq!(
            macs("UNIDIRECTIONAL_SEQUENCE_LSTM"),
            [10 * 4 * 12 * (6 + 12)]
        );
        // q·qT: [10, 8] x [8, 10]; then attention · h: [10, 10] x [10, 12].
        assert_eq!(macs("BATCH_MATMUL"), [10 * 10 * 8, 10 * 12 * 10]);
    }

    #[test]
    fn not_a_model_is_an_error() {
        assert!(summarize(b"not a model at all").is_err());
        let mut truncated = model("kws_ref_model.tflite");
        truncated.truncate(200);
        assert!(summarize(&truncated).is_err());
    }
}
