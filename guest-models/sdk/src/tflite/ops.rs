//! TFLite operators the loader understands, read from the flatbuffer and
//! turned into `gatehouse:nn` operator records.

use super::schema::tflite as fb;
use super::{FbTensor, LoadError};
use crate::nn::{self, Activation, Op, Padding, Tensor, Window};

/// A TFLite builtin operator code, or the name of one we cannot map.
pub(crate) enum Builtin {
    Known(fb::BuiltinOperator),
    Other(String),
}

/// `BuiltinOperator` variant names are CamelCase; TFLite prints SCREAMING_SNAKE.
fn tflite_name(op: fb::BuiltinOperator) -> String {
    let camel = format!("{op:?}");
    let mut out = String::with_capacity(camel.len() + 4);
    let mut prev: Option<char> = None;
    for c in camel.chars() {
        if let Some(p) = prev {
            let boundary = (c.is_ascii_uppercase() && (p.is_ascii_lowercase() || p.is_ascii_digit())) || (c.is_ascii_digit() && p.is_ascii_lowercase() && !camel.starts_with("Relu"));
            if boundary {
                out.push('_');
            }
        }
        out.push(c.to_ascii_uppercase());
        prev = Some(c);
    }
    out
}

/// The operator code, honouring `deprecated_builtin_code` as TFLite does.
pub(crate) fn builtin_code(code: &fb::OperatorCodeRef<'_>) -> Result<Builtin, LoadError> {
    let deprecated = code.deprecated_builtin_code()? as i32;
    // 127 is PLACEHOLDER_FOR_GREATER_OP_CODES: the real code is in `builtin_code`.
    let raw = if deprecated < 127 {
        deprecated
    } else {
        match code.builtin_code() {
            Ok(b) => b as i32,
            Err(e) => return Ok(Builtin::Other(format!("operator code outside the schema ({e})"))),
        }
    };
    let op = match fb::BuiltinOperator::try_from(raw) {
        Ok(op) => op,
        Err(_) => return Ok(Builtin::Other(format!("operator code {raw}"))),
    };
    if op == fb::BuiltinOperator::Custom {
        let name = code.custom_code()?.unwrap_or("?");
        return Ok(Builtin::Other(format!("CUSTOM {name}")));
    }
    Ok(Builtin::Known(op))
}

/// Options of a supported operator.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Conv2d { window: Window, activation: Activation },
    DepthwiseConv2d { window: Window, activation: Activation, depth_multiplier: u32 },
    FullyConnected { activation: Activation },
    AveragePool2d { filter_h: u32, filter_w: u32, window: Window, activation: Activation },
    MaxPool2d { filter_h: u32, filter_w: u32, window: Window, activation: Activation },
    Add { activation: Activation },
    Softmax { beta: f32 },
    Reshape,
}

/// One operator of the model.
pub(crate) struct ModelOp {
    pub name: String,
    pub kind: Kind,
    /// Input tensor indices; `None` for an omitted optional input (TFLite's -1).
    pub inputs: Vec<Option<usize>>,
    pub outputs: Vec<usize>,
}

fn activation(index: usize, a: fb::ActivationFunctionType) -> Result<Activation, LoadError> {
    Ok(match a {
        fb::ActivationFunctionType::None => Activation::None,
        fb::ActivationFunctionType::Relu => Activation::Relu,
        fb::ActivationFunctionType::ReluN1To1 => Activation::ReluN1To1,
        fb::ActivationFunctionType::Relu6 => Activation::Relu6,
        other => return Err(LoadError::Unsupported(format!("operator {index} fuses activation {other:?}"))),
    })
}

fn positive(index: usize, what: &str, v: i32) -> Result<u32, LoadError> {
    if v >= 1 { Ok(v as u32) } else { Err(LoadError::Malformed(format!("operator {index} has {what} {v}"))) }
}

fn padding(p: fb::Padding) -> Padding {
    match p {
        fb::Padding::Same => Padding::Same,
        fb::Padding::Valid => Padding::Valid,
    }
}

impl ModelOp {
    /// Read operator `index`, refusing it unless a host kernel can run it.
    pub fn read(index: usize, code: Builtin, op: &fb::OperatorRef<'_>, tensors: &[FbTensor<'_>]) -> Result<ModelOp, LoadError> {
        let builtin = match code {
            Builtin::Known(b) => b,
            Builtin::Other(name) => return Err(LoadError::UnsupportedOp { index, name }),
        };
        let name = tflite_name(builtin);
        let idx = |v: i32| -> Result<Option<usize>, LoadError> {
            match v {
                -1 => Ok(None),
                v if v >= 0 && (v as usize) < tensors.len() => Ok(Some(v as usize)),
                v => Err(LoadError::Malformed(format!("operator {index} refers to tensor {v} of {}", tensors.len()))),
            }
        };
        let inputs: Vec<Option<usize>> = op.inputs()?.map(|v| v.iter().map(idx).collect::<Result<_, _>>()).transpose()?.unwrap_or_default();
        let outputs: Vec<usize> = op
            .outputs()?
            .map(|v| v.iter().map(|t| idx(t)?.ok_or_else(|| LoadError::Malformed(format!("operator {index} has an omitted output")))).collect::<Result<_, _>>())
            .transpose()?
            .unwrap_or_default();
        let options = op.builtin_options()?;
        let missing = || LoadError::Malformed(format!("operator {index} ({name}) lacks its options"));
        use fb::BuiltinOptionsRef as O;
        let kind = match (builtin, options) {
            (fb::BuiltinOperator::Conv2d, Some(O::Conv2DOptions(o))) => Kind::Conv2d {
                window: Window {
                    padding: padding(o.padding()?),
                    stride_h: positive(index, "stride", o.stride_h()?)?,
                    stride_w: positive(index, "stride", o.stride_w()?)?,
                    dilation_h: positive(index, "dilation", o.dilation_h_factor()?)?,
                    dilation_w: positive(index, "dilation", o.dilation_w_factor()?)?,
                },
                activation: activation(index, o.fused_activation_function()?)?,
            },
            (fb::BuiltinOperator::DepthwiseConv2d, Some(O::DepthwiseConv2DOptions(o))) => Kind::DepthwiseConv2d {
                window: Window {
                    padding: padding(o.padding()?),
                    stride_h: positive(index, "stride", o.stride_h()?)?,
                    stride_w: positive(index, "stride", o.stride_w()?)?,
                    dilation_h: positive(index, "dilation", o.dilation_h_factor()?)?,
                    dilation_w: positive(index, "dilation", o.dilation_w_factor()?)?,
                },
                activation: activation(index, o.fused_activation_function()?)?,
                // TFLite derives the multiplier from the channel counts; so do we (below).
                depth_multiplier: 0,
            },
            (fb::BuiltinOperator::FullyConnected, options) => {
                let activation = match options {
                    Some(O::FullyConnectedOptions(o)) => {
                        if o.weights_format()? != fb::FullyConnectedOptionsWeightsFormat::Default {
                            return Err(LoadError::Unsupported(format!("operator {index} ({name}) uses shuffled weights")));
                        }
                        activation(index, o.fused_activation_function()?)?
                    }
                    _ => Activation::None,
                };
                Kind::FullyConnected { activation }
            }
            (fb::BuiltinOperator::AveragePool2d | fb::BuiltinOperator::MaxPool2d, Some(O::Pool2DOptions(o))) => {
                let window = Window {
                    padding: padding(o.padding()?),
                    stride_h: positive(index, "stride", o.stride_h()?)?,
                    stride_w: positive(index, "stride", o.stride_w()?)?,
                    dilation_h: 1,
                    dilation_w: 1,
                };
                let (filter_h, filter_w) = (positive(index, "filter height", o.filter_height()?)?, positive(index, "filter width", o.filter_width()?)?);
                let activation = activation(index, o.fused_activation_function()?)?;
                if builtin == fb::BuiltinOperator::AveragePool2d {
                    Kind::AveragePool2d { filter_h, filter_w, window, activation }
                } else {
                    Kind::MaxPool2d { filter_h, filter_w, window, activation }
                }
            }
            (fb::BuiltinOperator::Add, options) => {
                let activation = match options {
                    Some(O::AddOptions(o)) => activation(index, o.fused_activation_function()?)?,
                    _ => Activation::None,
                };
                Kind::Add { activation }
            }
            (fb::BuiltinOperator::Softmax, options) => Kind::Softmax {
                beta: match options {
                    Some(O::SoftmaxOptions(o)) => o.beta()?,
                    _ => 1.0,
                },
            },
            (fb::BuiltinOperator::Reshape, _) => Kind::Reshape,
            (
                fb::BuiltinOperator::Conv2d | fb::BuiltinOperator::DepthwiseConv2d | fb::BuiltinOperator::AveragePool2d | fb::BuiltinOperator::MaxPool2d,
                _,
            ) => return Err(missing()),
            _ => return Err(LoadError::UnsupportedOp { index, name }),
        };
        let (need_in, need_out) = match kind {
            Kind::Conv2d { .. } | Kind::DepthwiseConv2d { .. } | Kind::FullyConnected { .. } | Kind::Add { .. } => (2, 1),
            _ => (1, 1),
        };
        if inputs.len() < need_in || inputs[..need_in].iter().any(Option::is_none) || outputs.len() != need_out {
            return Err(LoadError::Malformed(format!("operator {index} ({name}) has {} inputs and {} outputs", inputs.len(), outputs.len())));
        }
        let mut op = ModelOp { name, kind, inputs, outputs };
        if let Kind::DepthwiseConv2d { window, activation, .. } = op.kind {
            let (i, o) = (&tensors[op.input(0)], &tensors[op.outputs[0]]);
            let (ic, oc) = (i.shape.last().copied().unwrap_or(0), o.shape.last().copied().unwrap_or(0));
            if ic == 0 || oc % ic != 0 {
                return Err(LoadError::Malformed(format!("operator {index}: {oc} output channels from {ic} input channels")));
            }
            op.kind = Kind::DepthwiseConv2d { window, activation, depth_multiplier: oc / ic };
        }
        Ok(op)
    }

    /// Required input `k` (checked present by [`read`](Self::read)).
    pub fn input(&self, k: usize) -> usize {
        self.inputs[k].unwrap_or_default()
    }

    fn optional(&self, k: usize) -> Option<usize> {
        self.inputs.get(k).copied().flatten()
    }

    /// Every tensor the operator reads or writes.
    pub fn tensors(&self) -> impl Iterator<Item = usize> + '_ {
        self.inputs.iter().flatten().copied().chain(self.outputs.iter().copied())
    }

    /// The host operator, or `None` when the operator needs no host work
    /// (a RESHAPE whose output aliases its input).
    pub fn host_op<'h>(&self, handles: &'h [Option<Tensor>], root: &[usize]) -> Result<Option<Op<'h>>, LoadError> {
        let get = |t: usize| handles.get(t).and_then(Option::as_ref).ok_or_else(|| LoadError::Malformed(format!("tensor {t} has no storage")));
        let input = get(self.input(0))?;
        let output = get(self.outputs[0])?;
        let bias = self.optional(2).map(get).transpose()?;
        Ok(Some(match self.kind {
            Kind::Conv2d { window, activation } => Op::Conv2d(nn::Conv2d { input, filter: get(self.input(1))?, bias, output, window, activation }),
            Kind::DepthwiseConv2d { window, activation, depth_multiplier } => {
                Op::DepthwiseConv2d(nn::DepthwiseConv2d { input, filter: get(self.input(1))?, bias, output, window, depth_multiplier, activation })
            }
            Kind::FullyConnected { activation } => Op::FullyConnected(nn::FullyConnected { input, weights: get(self.input(1))?, bias, output, activation }),
            Kind::AveragePool2d { filter_h, filter_w, window, activation } => Op::AveragePool2d(nn::Pool2d { input, output, filter_h, filter_w, window, activation }),
            Kind::MaxPool2d { filter_h, filter_w, window, activation } => Op::MaxPool2d(nn::Pool2d { input, output, filter_h, filter_w, window, activation }),
            Kind::Add { activation } => Op::Add(nn::Add { a: input, b: get(self.input(1))?, output, activation }),
            Kind::Softmax { beta } => Op::Softmax(nn::Softmax { input, output, beta }),
            Kind::Reshape => {
                if root[self.outputs[0]] == root[self.input(0)] {
                    return Ok(None);
                }
                Op::Reshape(nn::Reshape { input, output })
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_like_tflite() {
        assert_eq!(tflite_name(fb::BuiltinOperator::Conv2d), "CONV_2D");
        assert_eq!(tflite_name(fb::BuiltinOperator::DepthwiseConv2d), "DEPTHWISE_CONV_2D");
        assert_eq!(tflite_name(fb::BuiltinOperator::AveragePool2d), "AVERAGE_POOL_2D");
        assert_eq!(tflite_name(fb::BuiltinOperator::FullyConnected), "FULLY_CONNECTED");
        assert_eq!(tflite_name(fb::BuiltinOperator::Lstm), "LSTM");
        assert_eq!(tflite_name(fb::BuiltinOperator::Relu6), "RELU6");
        assert_eq!(tflite_name(fb::BuiltinOperator::SpaceToBatchNd), "SPACE_TO_BATCH_ND");
    }
}
