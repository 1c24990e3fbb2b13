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
            let boundary = (c.is_ascii_uppercase()
                && (p.is_ascii_lowercase() || p.is_ascii_digit()))
                || (c.is_ascii_digit() && p.is_ascii_lowercase() && !camel.starts_with("Relu"));
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
            Err(e) => {
                return Ok(Builtin::Other(format!(
                    "operator code outside the schema ({e})"
                )));
            }
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

/// Operators with one input and one output that need only the tensors' quantization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    Logistic,
    Tanh,
    HardSwish,
    Relu,
    Relu6,
    ReluN1To1,
    Quantize,
    Dequantize,
}

/// Which reshaping operator, for shape inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReshapeForm {
    Reshape,
    ExpandDims,
    /// Bit i set: squeeze dimension i; none set: every dimension of size 1.
    Squeeze(u32),
}

/// Options of a supported operator. Parameters that live in constant tensors
/// (axes, paddings, slice bounds, block shapes) are read when the operator
/// is recorded, after constant folding.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Conv2d {
        window: Window,
        activation: Activation,
    },
    DepthwiseConv2d {
        window: Window,
        activation: Activation,
        depth_multiplier: u32,
    },
    FullyConnected {
        activation: Activation,
        keep_num_dims: bool,
    },
    AveragePool2d {
        filter_h: u32,
        filter_w: u32,
        window: Window,
        activation: Activation,
    },
    MaxPool2d {
        filter_h: u32,
        filter_w: u32,
        window: Window,
        activation: Activation,
    },
    Add {
        activation: Activation,
    },
    Mul {
        activation: Activation,
    },
    Softmax {
        beta: f32,
    },
    Unary(UnaryOp),
    Mean {
        keep_dims: bool,
    },
    ReduceMax {
        keep_dims: bool,
    },
    Pad,
    Concatenation {
        axis: i32,
    },
    Pack {
        axis: i32,
    },
    StridedSlice {
        begin_mask: i32,
        end_mask: i32,
        shrink_axis_mask: i32,
    },
    SpaceToBatch,
    BatchToSpace,
    /// RESHAPE, EXPAND_DIMS and SQUEEZE: the output's shape is in the model
    /// (or follows from the shape input, the axis, or the squeezed dimensions).
    Reshape(ReshapeForm),
    /// SHAPE: always folded to a constant.
    Shape,
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
        other => {
            return Err(LoadError::Unsupported(format!(
                "operator {index} fuses activation {other:?}"
            )));
        }
    })
}

fn positive(index: usize, what: &str, v: i32) -> Result<u32, LoadError> {
    if v >= 1 {
        Ok(v as u32)
    } else {
        Err(LoadError::Malformed(format!(
            "operator {index} has {what} {v}"
        )))
    }
}

fn padding(p: fb::Padding) -> Padding {
    match p {
        fb::Padding::Same => Padding::Same,
        fb::Padding::Valid => Padding::Valid,
    }
}

/// What a recorded operator needs to see of the model's tensors.
pub(crate) struct Ctx<'t, 'a> {
    pub tensors: &'t [FbTensor<'a>],
    /// Constant data per tensor: from the model's buffers, or folded.
    pub consts: &'t [Option<std::borrow::Cow<'a, [u8]>>],
}

impl Ctx<'_, '_> {
    fn shape(&self, t: usize) -> &[u32] {
        &self.tensors[t].shape
    }

    /// A constant int32 vector (axes, paddings, bounds...).
    fn ints(&self, index: usize, t: usize, what: &str) -> Result<Vec<i32>, LoadError> {
        let ft = &self.tensors[t];
        let data = self.consts[t].as_deref().ok_or_else(|| {
            LoadError::Unsupported(format!("operator {index}: {what} must be constant"))
        })?;
        if ft.dtype != crate::nn::Dtype::Int32 {
            return Err(LoadError::Unsupported(format!(
                "operator {index}: {what} must be int32, is {:?}",
                ft.dtype
            )));
        }
        Ok(data
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// Normalize a possibly negative axis against `rank`.
fn axis(index: usize, a: i32, rank: usize) -> Result<u32, LoadError> {
    let r = rank as i32;
    let v = if a < 0 { a + r } else { a };
    if (0..r).contains(&v) {
        Ok(v as u32)
    } else {
        Err(LoadError::Malformed(format!(
            "operator {index}: axis {a} out of range for rank {rank}"
        )))
    }
}

/// TFLite's `StartForAxis`/`StopForAxis`: (start, step, count) for one axis.
fn slice_axis(
    size: i64,
    begin: i64,
    end: i64,
    stride: i64,
    begin_masked: bool,
    end_masked: bool,
    shrink: bool,
) -> (i64, i64, u32) {
    let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
    let mut start = if begin_masked {
        if stride > 0 {
            i64::MIN / 2
        } else {
            i64::MAX / 2
        }
    } else {
        begin
    };
    if start < 0 {
        start += size;
    }
    start = if stride > 0 {
        clamp(start, 0, size)
    } else {
        clamp(start, -1, size - 1)
    };
    let stop = if shrink {
        start + 1
    } else {
        let mut stop = if end_masked {
            if stride > 0 {
                i64::MAX / 2
            } else {
                i64::MIN / 2
            }
        } else {
            end
        };
        if stop < 0 {
            stop += size;
        }
        if stride > 0 {
            clamp(stop, 0, size)
        } else {
            clamp(stop, -1, size - 1)
        }
    };
    let count = if stride > 0 {
        (stop - start + stride - 1) / stride
    } else {
        (start - stop + (-stride) - 1) / (-stride)
    };
    (start, stride, count.max(0) as u32)
}

impl ModelOp {
    /// Read operator `index`, refusing it unless a host kernel can run it.
    pub fn read(
        index: usize,
        code: Builtin,
        op: &fb::OperatorRef<'_>,
        tensors: &[FbTensor<'_>],
    ) -> Result<ModelOp, LoadError> {
        let builtin = match code {
            Builtin::Known(b) => b,
            Builtin::Other(name) => return Err(LoadError::UnsupportedOp { index, name }),
        };
        let name = tflite_name(builtin);
        let idx = |v: i32| -> Result<Option<usize>, LoadError> {
            match v {
                -1 => Ok(None),
                v if v >= 0 && (v as usize) < tensors.len() => Ok(Some(v as usize)),
                v => Err(LoadError::Malformed(format!(
                    "operator {index} refers to tensor {v} of {}",
                    tensors.len()
                ))),
            }
        };
        let inputs: Vec<Option<usize>> = op
            .inputs()?
            .map(|v| v.iter().map(idx).collect::<Result<_, _>>())
            .transpose()?
            .unwrap_or_default();
        let outputs: Vec<usize> = op
            .outputs()?
            .map(|v| {
                v.iter()
                    .map(|t| {
                        idx(t)?.ok_or_else(|| {
                            LoadError::Malformed(format!("operator {index} has an omitted output"))
                        })
                    })
                    .collect::<Result<_, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let options = op.builtin_options()?;
        let missing =
            || LoadError::Malformed(format!("operator {index} ({name}) lacks its options"));
        use fb::BuiltinOperator as B;
        use fb::BuiltinOptionsRef as O;
        let fused =
            |a: ::planus::Result<fb::ActivationFunctionType>| -> Result<Activation, LoadError> {
                activation(index, a?)
            };
        let kind = match (builtin, options) {
            (B::Conv2d, Some(O::Conv2DOptions(o))) => Kind::Conv2d {
                window: Window {
                    padding: padding(o.padding()?),
                    stride_h: positive(index, "stride", o.stride_h()?)?,
                    stride_w: positive(index, "stride", o.stride_w()?)?,
                    dilation_h: positive(index, "dilation", o.dilation_h_factor()?)?,
                    dilation_w: positive(index, "dilation", o.dilation_w_factor()?)?,
                },
                activation: fused(o.fused_activation_function())?,
            },
            (B::DepthwiseConv2d, Some(O::DepthwiseConv2DOptions(o))) => Kind::DepthwiseConv2d {
                window: Window {
                    padding: padding(o.padding()?),
                    stride_h: positive(index, "stride", o.stride_h()?)?,
                    stride_w: positive(index, "stride", o.stride_w()?)?,
                    dilation_h: positive(index, "dilation", o.dilation_h_factor()?)?,
                    dilation_w: positive(index, "dilation", o.dilation_w_factor()?)?,
                },
                activation: fused(o.fused_activation_function())?,
                // TFLite derives the multiplier from the channel counts; so do we (below).
                depth_multiplier: 0,
            },
            (B::FullyConnected, options) => {
                let (activation, keep_num_dims) = match options {
                    Some(O::FullyConnectedOptions(o)) => {
                        if o.weights_format()? != fb::FullyConnectedOptionsWeightsFormat::Default {
                            return Err(LoadError::Unsupported(format!(
                                "operator {index} ({name}) uses shuffled weights"
                            )));
                        }
                        (fused(o.fused_activation_function())?, o.keep_num_dims()?)
                    }
                    _ => (Activation::None, false),
                };
                Kind::FullyConnected {
                    activation,
                    keep_num_dims,
                }
            }
            (B::AveragePool2d | B::MaxPool2d, Some(O::Pool2DOptions(o))) => {
                let window = Window {
                    padding: padding(o.padding()?),
                    stride_h: positive(index, "stride", o.stride_h()?)?,
                    stride_w: positive(index, "stride", o.stride_w()?)?,
                    dilation_h: 1,
                    dilation_w: 1,
                };
                let (filter_h, filter_w) = (
                    positive(index, "filter height", o.filter_height()?)?,
                    positive(index, "filter width", o.filter_width()?)?,
                );
                let activation = fused(o.fused_activation_function())?;
                if builtin == B::AveragePool2d {
                    Kind::AveragePool2d {
                        filter_h,
                        filter_w,
                        window,
                        activation,
                    }
                } else {
                    Kind::MaxPool2d {
                        filter_h,
                        filter_w,
                        window,
                        activation,
                    }
                }
            }
            (B::Add, options) => Kind::Add {
                activation: match options {
                    Some(O::AddOptions(o)) => fused(o.fused_activation_function())?,
                    _ => Activation::None,
                },
            },
            (B::Mul, options) => Kind::Mul {
                activation: match options {
                    Some(O::MulOptions(o)) => fused(o.fused_activation_function())?,
                    _ => Activation::None,
                },
            },
            (B::Softmax, options) => Kind::Softmax {
                beta: match options {
                    Some(O::SoftmaxOptions(o)) => o.beta()?,
                    _ => 1.0,
                },
            },
            (B::Logistic, _) => Kind::Unary(UnaryOp::Logistic),
            (B::Tanh, _) => Kind::Unary(UnaryOp::Tanh),
            (B::HardSwish, _) => Kind::Unary(UnaryOp::HardSwish),
            (B::Relu, _) => Kind::Unary(UnaryOp::Relu),
            (B::Relu6, _) => Kind::Unary(UnaryOp::Relu6),
            (B::ReluN1To1, _) => Kind::Unary(UnaryOp::ReluN1To1),
            (B::Quantize, _) => Kind::Unary(UnaryOp::Quantize),
            (B::Dequantize, _) => Kind::Unary(UnaryOp::Dequantize),
            (B::Mean | B::ReduceMax, options) => {
                let keep_dims = match options {
                    Some(O::ReducerOptions(o)) => o.keep_dims()?,
                    _ => false,
                };
                if builtin == B::Mean {
                    Kind::Mean { keep_dims }
                } else {
                    Kind::ReduceMax { keep_dims }
                }
            }
            (B::Pad, _) => Kind::Pad,
            (B::Concatenation, Some(O::ConcatenationOptions(o))) => {
                if fused(o.fused_activation_function())? != Activation::None {
                    return Err(LoadError::Unsupported(format!(
                        "operator {index} ({name}) fuses an activation"
                    )));
                }
                Kind::Concatenation { axis: o.axis()? }
            }
            (B::Pack, Some(O::PackOptions(o))) => Kind::Pack { axis: o.axis()? },
            (B::StridedSlice, Some(O::StridedSliceOptions(o))) => {
                if o.ellipsis_mask()? != 0 || o.new_axis_mask()? != 0 {
                    return Err(LoadError::Unsupported(format!(
                        "operator {index} ({name}) uses an ellipsis or new-axis mask"
                    )));
                }
                Kind::StridedSlice {
                    begin_mask: o.begin_mask()?,
                    end_mask: o.end_mask()?,
                    shrink_axis_mask: o.shrink_axis_mask()?,
                }
            }
            (B::SpaceToBatchNd, _) => Kind::SpaceToBatch,
            (B::BatchToSpaceNd, _) => Kind::BatchToSpace,
            (B::Reshape, _) => Kind::Reshape(ReshapeForm::Reshape),
            (B::ExpandDims, _) => Kind::Reshape(ReshapeForm::ExpandDims),
            (B::Squeeze, options) => {
                let mut mask = 0u32;
                if let Some(O::SqueezeOptions(o)) = options {
                    let rank = tensors
                        .get(inputs.first().copied().flatten().unwrap_or(0))
                        .map_or(0, |t| t.shape.len()) as i32;
                    for d in o
                        .squeeze_dims()?
                        .map(|v| v.iter().collect::<Vec<i32>>())
                        .unwrap_or_default()
                    {
                        let d = if d < 0 { d + rank } else { d };
                        if !(0..rank.min(32)).contains(&d) {
                            return Err(LoadError::Malformed(format!(
                                "operator {index}: squeeze dimension {d} for rank {rank}"
                            )));
                        }
                        mask |= 1 << d;
                    }
                }
                Kind::Reshape(ReshapeForm::Squeeze(mask))
            }
            (B::Shape, _) => Kind::Shape,
            (
                B::Conv2d
                | B::DepthwiseConv2d
                | B::AveragePool2d
                | B::MaxPool2d
                | B::Concatenation
                | B::Pack
                | B::StridedSlice,
                _,
            ) => return Err(missing()),
            _ => return Err(LoadError::UnsupportedOp { index, name }),
        };
        let need_in = match kind {
            Kind::Conv2d { .. }
            | Kind::DepthwiseConv2d { .. }
            | Kind::FullyConnected { .. }
            | Kind::Add { .. }
            | Kind::Mul { .. } => 2,
            Kind::Mean { .. } | Kind::ReduceMax { .. } | Kind::Pad => 2,
            Kind::StridedSlice { .. } => 4,
            Kind::SpaceToBatch | Kind::BatchToSpace => 3,
            _ => 1,
        };
        if inputs.len() < need_in
            || inputs[..need_in].iter().any(Option::is_none)
            || outputs.len() != 1
        {
            return Err(LoadError::Malformed(format!(
                "operator {index} ({name}) has {} inputs and {} outputs",
                inputs.len(),
                outputs.len()
            )));
        }
        let mut op = ModelOp {
            name,
            kind,
            inputs,
            outputs,
        };
        if let Kind::DepthwiseConv2d {
            window, activation, ..
        } = op.kind
        {
            let (i, o) = (&tensors[op.input(0)], &tensors[op.outputs[0]]);
            let (ic, oc) = (
                i.shape.last().copied().unwrap_or(0),
                o.shape.last().copied().unwrap_or(0),
            );
            if ic == 0 || oc % ic != 0 {
                return Err(LoadError::Malformed(format!(
                    "operator {index}: {oc} output channels from {ic} input channels"
                )));
            }
            op.kind = Kind::DepthwiseConv2d {
                window,
                activation,
                depth_multiplier: oc / ic,
            };
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

    /// Inputs that carry data (not parameters such as axes or paddings).
    pub fn data_inputs(&self) -> Vec<usize> {
        match self.kind {
            Kind::Add { .. } | Kind::Mul { .. } => vec![self.input(0), self.input(1)],
            Kind::Concatenation { .. } | Kind::Pack { .. } => {
                self.inputs.iter().flatten().copied().collect()
            }
            _ => vec![self.input(0)],
        }
    }

    /// Every tensor the operator reads or writes.
    pub fn tensors(&self) -> impl Iterator<Item = usize> + '_ {
        self.inputs
            .iter()
            .flatten()
            .copied()
            .chain(self.outputs.iter().copied())
    }

    /// Whether the operator only reinterprets its input's bytes.
    pub fn is_reshape(&self) -> bool {
        matches!(self.kind, Kind::Reshape(_))
    }

    /// The output's shape for a batch of one, from the inputs' shapes and
    /// constant parameters: for models whose shapes are left open.
    pub fn infer_shape(&self, index: usize, ctx: &Ctx<'_, '_>) -> Result<Vec<u32>, LoadError> {
        let bad = |what: String| {
            LoadError::Malformed(format!("operator {index} ({}): {what}", self.name))
        };
        let s = ctx.shape(self.input(0)).to_vec();
        let elems = |s: &[u32]| s.iter().map(|&d| d as u64).product::<u64>();
        let window_out = |size: u32, k: u32, w: &Window, vertical: bool| -> u32 {
            let (stride, dil) = if vertical {
                (w.stride_h, w.dilation_h)
            } else {
                (w.stride_w, w.dilation_w)
            };
            let eff = (k.max(1) - 1) * dil + 1;
            match w.padding {
                Padding::Same => size.div_ceil(stride),
                Padding::Valid => (size + stride).saturating_sub(eff) / stride,
            }
        };
        let nhwc = |s: &[u32]| -> Result<[u32; 4], LoadError> {
            match s {
                &[n, h, w, c] => Ok([n, h, w, c]),
                other => Err(bad(format!("input {other:?} is not NHWC"))),
            }
        };
        Ok(match self.kind {
            Kind::Conv2d { window, .. } | Kind::DepthwiseConv2d { window, .. } => {
                let [n, h, w, _] = nhwc(&s)?;
                let f = ctx.shape(self.input(1));
                let (kh, kw, oc) = match (self.kind, f) {
                    (Kind::Conv2d { .. }, &[oc, kh, kw, _]) => (kh, kw, oc),
                    (_, &[_, kh, kw, oc]) => (kh, kw, oc),
                    _ => return Err(bad(format!("filter {f:?}"))),
                };
                vec![
                    n,
                    window_out(h, kh, &window, true),
                    window_out(w, kw, &window, false),
                    oc,
                ]
            }
            Kind::AveragePool2d {
                filter_h,
                filter_w,
                window,
                ..
            }
            | Kind::MaxPool2d {
                filter_h,
                filter_w,
                window,
                ..
            } => {
                let [n, h, w, c] = nhwc(&s)?;
                vec![
                    n,
                    window_out(h, filter_h, &window, true),
                    window_out(w, filter_w, &window, false),
                    c,
                ]
            }
            Kind::FullyConnected { keep_num_dims, .. } => {
                let (units, depth) = match ctx.shape(self.input(1)) {
                    &[u, d] if d > 0 => (u, d),
                    other => return Err(bad(format!("weights {other:?}"))),
                };
                if keep_num_dims {
                    let mut o = s.clone();
                    if let Some(l) = o.last_mut() {
                        *l = units;
                    }
                    o
                } else {
                    vec![(elems(&s) / depth as u64) as u32, units]
                }
            }
            Kind::Add { .. } | Kind::Mul { .. } => {
                let b = ctx.shape(self.input(1));
                let r = s.len().max(b.len());
                let at = |v: &[u32], i: usize| {
                    if i + v.len() >= r {
                        v[i + v.len() - r]
                    } else {
                        1
                    }
                };
                (0..r)
                    .map(|i| {
                        let (x, y) = (at(&s, i), at(b, i));
                        if x == y || y == 1 {
                            Ok(x)
                        } else if x == 1 {
                            Ok(y)
                        } else {
                            Err(bad(format!("{s:?} and {b:?} do not broadcast")))
                        }
                    })
                    .collect::<Result<_, _>>()?
            }
            Kind::Softmax { .. } | Kind::Unary(_) => s,
            Kind::Mean { keep_dims } | Kind::ReduceMax { keep_dims } => {
                let axes = ctx
                    .ints(index, self.input(1), "the reduction axes")?
                    .into_iter()
                    .map(|a| axis(index, a, s.len()))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut o = Vec::new();
                for (i, &d) in s.iter().enumerate() {
                    if !axes.contains(&(i as u32)) {
                        o.push(d);
                    } else if keep_dims {
                        o.push(1);
                    }
                }
                o
            }
            Kind::Pad => {
                let p = ctx.ints(index, self.input(1), "the paddings")?;
                if p.len() != 2 * s.len() {
                    return Err(bad(format!("paddings {p:?}")));
                }
                s.iter()
                    .enumerate()
                    .map(|(i, &d)| d + p[2 * i].max(0) as u32 + p[2 * i + 1].max(0) as u32)
                    .collect()
            }
            Kind::Concatenation { axis: a } => {
                let a = axis(index, a, s.len())? as usize;
                let mut o = s.clone();
                o[a] = self
                    .inputs
                    .iter()
                    .flatten()
                    .map(|&t| ctx.shape(t).get(a).copied().unwrap_or(0))
                    .sum();
                o
            }
            Kind::Pack { axis: a } => {
                let a = axis(index, a, s.len() + 1)? as usize;
                let mut o = s.clone();
                o.insert(a, self.inputs.iter().flatten().count() as u32);
                o
            }
            Kind::StridedSlice {
                begin_mask,
                end_mask,
                shrink_axis_mask,
            } => {
                let (b, e, st) = (
                    ctx.ints(index, self.input(1), "begin")?,
                    ctx.ints(index, self.input(2), "end")?,
                    ctx.ints(index, self.input(3), "strides")?,
                );
                if b.len() != s.len()
                    || e.len() != s.len()
                    || st.len() != s.len()
                    || st.contains(&0)
                {
                    return Err(bad(format!("slice {b:?}:{e:?}:{st:?} for {s:?}")));
                }
                let mut o = Vec::new();
                for d in 0..s.len() {
                    let bit = |m: i32| m & (1 << d) != 0;
                    let (_, _, n) = slice_axis(
                        s[d] as i64,
                        b[d] as i64,
                        e[d] as i64,
                        st[d] as i64,
                        bit(begin_mask),
                        bit(end_mask),
                        bit(shrink_axis_mask),
                    );
                    if !bit(shrink_axis_mask) {
                        o.push(n);
                    }
                }
                o
            }
            Kind::SpaceToBatch | Kind::BatchToSpace => {
                let [n, h, w, c] = nhwc(&s)?;
                let block = ctx.ints(index, self.input(1), "the block shape")?;
                let p = ctx.ints(index, self.input(2), "the paddings or crops")?;
                let (&[bh, bw], &[t, bo, l, r]) = (block.as_slice(), p.as_slice()) else {
                    return Err(bad(format!("block {block:?}, paddings {p:?}")));
                };
                let (bh, bw) = (bh.max(1) as u32, bw.max(1) as u32);
                let pad = |v: i32| v.max(0) as u32;
                if matches!(self.kind, Kind::SpaceToBatch) {
                    vec![
                        n * bh * bw,
                        (h + pad(t) + pad(bo)) / bh,
                        (w + pad(l) + pad(r)) / bw,
                        c,
                    ]
                } else {
                    vec![
                        n / (bh * bw),
                        (h * bh).saturating_sub(pad(t) + pad(bo)),
                        (w * bw).saturating_sub(pad(l) + pad(r)),
                        c,
                    ]
                }
            }
            Kind::Reshape(ReshapeForm::Reshape) => {
                let Some(t) = self.optional(1) else {
                    return Ok(ctx.shape(self.outputs[0]).to_vec());
                };
                let want = ctx.ints(index, t, "the new shape")?;
                let known: u64 = want
                    .iter()
                    .filter(|&&d| d >= 0)
                    .map(|&d| d as u64)
                    .product();
                let total = elems(&s);
                want.iter()
                    .map(|&d| {
                        if d >= 0 {
                            Ok(d as u32)
                        } else if known > 0 && total % known == 0 {
                            Ok((total / known) as u32)
                        } else {
                            Err(bad(format!("cannot reshape {s:?} to {want:?}")))
                        }
                    })
                    .collect::<Result<_, _>>()?
            }
            Kind::Reshape(ReshapeForm::ExpandDims) => {
                let a = ctx.ints(index, self.input(1), "the axis")?;
                let a = *a.first().ok_or_else(|| bad("no axis".into()))?;
                let a = axis(index, a, s.len() + 1)? as usize;
                let mut o = s.clone();
                o.insert(a, 1);
                o
            }
            Kind::Reshape(ReshapeForm::Squeeze(mask)) => s
                .iter()
                .enumerate()
                .filter(|&(i, &d)| !(d == 1 && (mask == 0 || mask & (1 << i) != 0)))
                .map(|(_, &d)| d)
                .collect(),
            Kind::Shape => vec![s.len() as u32],
        })
    }

    /// The host operator over `handles`. PACK's inputs must already be views
    /// with the new axis (`pack_views`). `None` when no host work is needed (a
    /// RESHAPE whose output aliases its input).
    pub fn host_op<'h>(
        &self,
        index: usize,
        handles: &'h [Option<Tensor>],
        pack_views: &'h [Tensor],
        aliased: bool,
        ctx: &Ctx<'_, '_>,
    ) -> Result<Option<Op<'h>>, LoadError> {
        let get = |t: usize| {
            handles
                .get(t)
                .and_then(Option::as_ref)
                .ok_or_else(|| LoadError::Malformed(format!("tensor {t} has no storage")))
        };
        let input = get(self.input(0))?;
        let out_t = self.outputs[0];
        let output = get(out_t)?;
        let unary = nn::Unary { input, output };
        let in_shape = ctx.shape(self.input(0)).to_vec();
        Ok(Some(match self.kind {
            Kind::Conv2d { window, activation } => Op::Conv2d(nn::Conv2d {
                input,
                filter: get(self.input(1))?,
                bias: self.optional(2).map(get).transpose()?,
                output,
                window,
                activation,
            }),
            Kind::DepthwiseConv2d {
                window,
                activation,
                depth_multiplier,
            } => Op::DepthwiseConv2d(nn::DepthwiseConv2d {
                input,
                filter: get(self.input(1))?,
                bias: self.optional(2).map(get).transpose()?,
                output,
                window,
                depth_multiplier,
                activation,
            }),
            Kind::FullyConnected { activation, .. } => Op::FullyConnected(nn::FullyConnected {
                input,
                weights: get(self.input(1))?,
                bias: self.optional(2).map(get).transpose()?,
                output,
                activation,
            }),
            Kind::AveragePool2d {
                filter_h,
                filter_w,
                window,
                activation,
            } => Op::AveragePool2d(nn::Pool2d {
                input,
                output,
                filter_h,
                filter_w,
                window,
                activation,
            }),
            Kind::MaxPool2d {
                filter_h,
                filter_w,
                window,
                activation,
            } => Op::MaxPool2d(nn::Pool2d {
                input,
                output,
                filter_h,
                filter_w,
                window,
                activation,
            }),
            Kind::Add { activation } => Op::Add(nn::Binary {
                a: input,
                b: get(self.input(1))?,
                output,
                activation,
            }),
            Kind::Mul { activation } => Op::Mul(nn::Binary {
                a: input,
                b: get(self.input(1))?,
                output,
                activation,
            }),
            Kind::Softmax { beta } => Op::Softmax(nn::Softmax {
                input,
                output,
                beta,
            }),
            Kind::Unary(u) => match u {
                UnaryOp::Logistic => Op::Logistic(unary),
                UnaryOp::Tanh => Op::Tanh(unary),
                UnaryOp::HardSwish => Op::HardSwish(unary),
                UnaryOp::Relu => Op::Relu(unary),
                UnaryOp::Relu6 => Op::Relu6(unary),
                UnaryOp::ReluN1To1 => Op::ReluN1To1(unary),
                UnaryOp::Quantize => Op::Quantize(unary),
                UnaryOp::Dequantize => Op::Dequantize(unary),
            },
            Kind::Mean { keep_dims } | Kind::ReduceMax { keep_dims } => {
                let axes = ctx
                    .ints(index, self.input(1), "the reduction axes")?
                    .into_iter()
                    .map(|a| axis(index, a, in_shape.len()))
                    .collect::<Result<Vec<_>, _>>()?;
                let r = nn::Reduce {
                    input,
                    output,
                    axes,
                    keep_dims,
                };
                if matches!(self.kind, Kind::Mean { .. }) {
                    Op::Mean(r)
                } else {
                    Op::ReduceMax(r)
                }
            }
            Kind::Pad => {
                let p = ctx.ints(index, self.input(1), "the paddings")?;
                if p.len() != 2 * in_shape.len() || p.iter().any(|&v| v < 0) {
                    return Err(LoadError::Malformed(format!(
                        "operator {index}: paddings {p:?} for rank {}",
                        in_shape.len()
                    )));
                }
                Op::Pad(nn::Pad {
                    input,
                    output,
                    paddings: p
                        .chunks_exact(2)
                        .map(|c| (c[0] as u32, c[1] as u32))
                        .collect(),
                })
            }
            Kind::Concatenation { axis: a } => {
                let inputs = self
                    .inputs
                    .iter()
                    .flatten()
                    .map(|&t| get(t))
                    .collect::<Result<Vec<_>, _>>()?;
                Op::Concatenation(nn::Concatenation {
                    inputs,
                    output,
                    axis: axis(index, a, in_shape.len())?,
                })
            }
            Kind::Pack { axis: a } => Op::Concatenation(nn::Concatenation {
                inputs: pack_views.iter().collect(),
                output,
                axis: axis(index, a, in_shape.len() + 1)?,
            }),
            Kind::StridedSlice {
                begin_mask,
                end_mask,
                shrink_axis_mask,
            } => {
                let (b, e, s) = (
                    ctx.ints(index, self.input(1), "begin")?,
                    ctx.ints(index, self.input(2), "end")?,
                    ctx.ints(index, self.input(3), "strides")?,
                );
                let r = in_shape.len();
                if b.len() != r || e.len() != r || s.len() != r || s.contains(&0) {
                    return Err(LoadError::Malformed(format!(
                        "operator {index}: slice {b:?}:{e:?}:{s:?} for rank {r}"
                    )));
                }
                let (mut begin, mut strides, mut counts) = (vec![], vec![], vec![]);
                for d in 0..r {
                    let bit = |m: i32| m & (1 << d) != 0;
                    let (st, step, n) = slice_axis(
                        in_shape[d] as i64,
                        b[d] as i64,
                        e[d] as i64,
                        s[d] as i64,
                        bit(begin_mask),
                        bit(end_mask),
                        bit(shrink_axis_mask),
                    );
                    begin.push(if n == 0 { 0 } else { st as i32 });
                    strides.push(step as i32);
                    counts.push(n);
                }
                Op::StridedSlice(nn::StridedSlice {
                    input,
                    output,
                    begin,
                    strides,
                    counts,
                })
            }
            Kind::SpaceToBatch | Kind::BatchToSpace => {
                let block = ctx.ints(index, self.input(1), "the block shape")?;
                let pads = ctx.ints(index, self.input(2), "the paddings or crops")?;
                let (block, before) = match (block.as_slice(), pads.as_slice()) {
                    ([bh, bw], [t, _, l, _]) if *bh > 0 && *bw > 0 && *t >= 0 && *l >= 0 => {
                        ((*bh as u32, *bw as u32), (*t as u32, *l as u32))
                    }
                    ([b1], [t, _]) if *b1 > 0 && *t >= 0 => ((*b1 as u32, 1), (*t as u32, 0)),
                    _ => {
                        return Err(LoadError::Unsupported(format!(
                            "operator {index}: block {block:?} with paddings {pads:?}"
                        )));
                    }
                };
                let sb = nn::SpaceBatch {
                    input,
                    output,
                    block,
                    before,
                };
                if matches!(self.kind, Kind::SpaceToBatch) {
                    Op::SpaceToBatch(sb)
                } else {
                    Op::BatchToSpace(sb)
                }
            }
            Kind::Reshape(_) if aliased => return Ok(None),
            Kind::Reshape(_) => Op::Reshape(unary),
            Kind::Shape => {
                return Err(LoadError::Malformed(format!(
                    "operator {index}: SHAPE should have been folded"
                )));
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
        assert_eq!(
            tflite_name(fb::BuiltinOperator::DepthwiseConv2d),
            "DEPTHWISE_CONV_2D"
        );
        assert_eq!(
            tflite_name(fb::BuiltinOperator::AveragePool2d),
            "AVERAGE_POOL_2D"
        );
        assert_eq!(
            tflite_name(fb::BuiltinOperator::FullyConnected),
            "FULLY_CONNECTED"
        );
        assert_eq!(tflite_name(fb::BuiltinOperator::Lstm), "LSTM");
        assert_eq!(tflite_name(fb::BuiltinOperator::Relu6), "RELU6");
        assert_eq!(
            tflite_name(fb::BuiltinOperator::SpaceToBatchNd),
            "SPACE_TO_BATCH_ND"
        );
    }
}
