//! TFLite operators the loader understands, one file each (as TFLite Micro
//! keeps them): reading the operator's options from the flatbuffer, the
//! shape of its output when the model leaves it open, and the
//! `gatehouse:nn` operator it becomes. A new operator is a new file here
//! and one line in the `operators!` table below.

mod options;

mod batch_matmul;
mod binary;
mod concatenation;
mod conv2d;
mod depthwise_conv2d;
mod fully_connected;
mod lstm;
mod pack;
mod pad;
mod pool2d;
mod reduce;
mod reshape;
mod shape;
mod softmax;
mod space_batch;
mod strided_slice;
mod unary;

use super::schema::tflite as fb;
use super::{FbTensor, LoadError};
use crate::nn::{AnyOp, Op, Tensor};

pub(crate) use pack::Pack;

/// The operator table: each variant of [`Kind`], the type (in its own
/// file) that reads, shapes and lowers it, and the TFLite builtins it takes.
macro_rules! operators {
    ($($variant:ident($ty:ty) = $($builtin:ident)|+;)*) => {
        /// A supported operator with its options. Parameters that live in
        /// constant tensors (axes, paddings, slice bounds, block shapes) are
        /// read when the operator is recorded, after constant folding.
        #[derive(Clone, Copy, Debug)]
        pub(crate) enum Kind {
            $($variant($ty),)*
        }

        impl Kind {
            fn read(r: &Reader<'_, '_>) -> Result<Kind, LoadError> {
                use fb::BuiltinOperator as B;
                Ok(match r.builtin {
                    $($(B::$builtin)|+ => Kind::$variant(<$ty>::read(r)?),)*
                    _ => {
                        return Err(LoadError::UnsupportedOp {
                            index: r.index,
                            name: r.name.to_string(),
                        })
                    }
                })
            }

            /// Whether the table takes `builtin`.
            fn takes(builtin: fb::BuiltinOperator) -> bool {
                use fb::BuiltinOperator as B;
                matches!(builtin, $($(B::$builtin)|+)|*)
            }

            fn op(&self) -> &dyn TfliteOp {
                match self {
                    $(Kind::$variant(op) => op,)*
                }
            }
        }
    };
}

operators! {
    Conv2d(conv2d::Conv2d) = Conv2d;
    DepthwiseConv2d(depthwise_conv2d::DepthwiseConv2d) = DepthwiseConv2d;
    FullyConnected(fully_connected::FullyConnected) = FullyConnected;
    Pool2d(pool2d::Pool2d) = AveragePool2d | MaxPool2d;
    Binary(binary::Binary) = Add | Mul;
    Softmax(softmax::Softmax) = Softmax;
    Unary(unary::Unary) = Logistic | Tanh | HardSwish | Relu | Relu6 | ReluN1To1 | Quantize | Dequantize;
    Reduce(reduce::Reduce) = Mean | ReduceMax;
    Pad(pad::Pad) = Pad;
    Concatenation(concatenation::Concatenation) = Concatenation;
    Pack(pack::Pack) = Pack;
    StridedSlice(strided_slice::StridedSlice) = StridedSlice;
    SpaceBatch(space_batch::SpaceBatch) = SpaceToBatchNd | BatchToSpaceNd;
    Reshape(reshape::Reshape) = Reshape | ExpandDims | Squeeze;
    Shape(shape::Shape) = Shape;
    Lstm(lstm::Lstm) = UnidirectionalSequenceLstm;
    BatchMatMul(batch_matmul::BatchMatMul) = BatchMatmul;
}

/// What each operator's file implements.
trait TfliteOp {
    /// How many leading inputs must be present.
    fn required_inputs(&self) -> usize {
        1
    }

    /// Inputs that carry data (not parameters such as axes or paddings).
    fn data_inputs(&self, op: &ModelOp) -> Vec<usize> {
        vec![op.input(0)]
    }

    /// The output's shape for a batch of one, from the inputs' shapes and
    /// constant parameters.
    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError>;

    /// The host operator of `gatehouse:nn/ops@0.1.0`, or `None` when no
    /// host work is needed.
    fn host_op<'h>(&self, _at: &At<'_>, _io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        Ok(None)
    }

    /// The host operator of either interface: operators of 0.2.0's
    /// `sequence` override this instead of [`host_op`](Self::host_op).
    fn any_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<AnyOp<'h>>, LoadError> {
        Ok(self.host_op(at, io)?.map(AnyOp::Core))
    }
}

/// An operator in its model: what shaping and lowering look at.
struct At<'x> {
    op: &'x ModelOp,
    index: usize,
    ctx: &'x Ctx<'x, 'x>,
}

impl At<'_> {
    /// Input `k`'s tensor index.
    fn input(&self, k: usize) -> usize {
        self.op.input(k)
    }

    /// Input `k`'s shape.
    fn shape(&self, k: usize) -> &[u32] {
        self.ctx.shape(self.op.input(k))
    }

    /// Input `k` as a constant int32 vector.
    fn ints(&self, k: usize, what: &str) -> Result<Vec<i32>, LoadError> {
        self.ctx.ints(self.index, self.op.input(k), what)
    }

    /// A possibly negative axis normalized against `rank`.
    fn axis(&self, a: i32, rank: usize) -> Result<u32, LoadError> {
        options::axis(self.index, a, rank)
    }

    /// A malformed-model error naming the operator.
    fn malformed(&self, what: impl std::fmt::Display) -> LoadError {
        LoadError::Malformed(format!(
            "operator {} ({}): {what}",
            self.index, self.op.name
        ))
    }
}

/// A TFLite builtin operator code, or the name of one we cannot map.
pub(crate) enum Builtin {
    Known(fb::BuiltinOperator),
    Other(String),
}

/// Whether a host kernel runs `builtin` (given tensors of supported types).
pub(crate) fn supports(builtin: fb::BuiltinOperator) -> bool {
    Kind::takes(builtin)
}

/// `BuiltinOperator` variant names are CamelCase; TFLite prints SCREAMING_SNAKE.
pub(crate) fn tflite_name(op: fb::BuiltinOperator) -> String {
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

/// What an operator's `read` sees: the operator, its options and operands.
struct Reader<'r, 'a> {
    index: usize,
    name: &'r str,
    builtin: fb::BuiltinOperator,
    options: Option<fb::BuiltinOptionsRef<'a>>,
    tensors: &'r [FbTensor<'a>],
    inputs: &'r [Option<usize>],
    outputs: &'r [usize],
    /// Tensors the operator names as its intermediates (an LSTM's gate
    /// and hidden-state quantization).
    intermediates: &'r [usize],
}

impl Reader<'_, '_> {
    /// The operator's options are absent or of another operator's type.
    fn missing(&self) -> LoadError {
        LoadError::Malformed(format!(
            "operator {} ({}) lacks its options",
            self.index, self.name
        ))
    }

    fn unsupported(&self, what: &str) -> LoadError {
        LoadError::Unsupported(format!("operator {} ({}) {what}", self.index, self.name))
    }

    /// A fused activation the host kernels apply.
    fn fused(
        &self,
        a: ::planus::Result<fb::ActivationFunctionType>,
    ) -> Result<crate::nn::Activation, LoadError> {
        options::activation(self.index, a?)
    }

    fn positive(&self, what: &str, v: i32) -> Result<u32, LoadError> {
        options::positive(self.index, what, v)
    }

    /// The shape of the tensor at input `k` or output `k`, if present.
    fn input_shape(&self, k: usize) -> Option<&[u32]> {
        let t = self.inputs.get(k).copied().flatten()?;
        self.tensors.get(t).map(|t| t.shape.as_slice())
    }

    fn output_shape(&self, k: usize) -> Option<&[u32]> {
        let t = *self.outputs.get(k)?;
        self.tensors.get(t).map(|t| t.shape.as_slice())
    }
}

/// The host tensors an operator is recorded over.
pub(crate) struct Io<'h> {
    pub handles: &'h [Option<Tensor>],
    /// PACK's inputs, viewed with the new axis.
    pub pack_views: &'h [Tensor],
    /// Whether a reshape's output already aliases its input.
    pub aliased: bool,
}

impl<'h> Io<'h> {
    fn get(&self, t: usize) -> Result<&'h Tensor, LoadError> {
        self.handles
            .get(t)
            .and_then(Option::as_ref)
            .ok_or_else(|| LoadError::Malformed(format!("tensor {t} has no storage")))
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

/// One operator of the model.
pub(crate) struct ModelOp {
    pub name: String,
    pub kind: Kind,
    /// Input tensor indices; `None` for an omitted optional input (TFLite's -1).
    pub inputs: Vec<Option<usize>>,
    pub outputs: Vec<usize>,
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
        let intermediates: Vec<usize> = op
            .intermediates()?
            .map(|v| {
                v.iter()
                    .map(|t| {
                        idx(t)?.ok_or_else(|| {
                            LoadError::Malformed(format!(
                                "operator {index} has an omitted intermediate"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let kind = Kind::read(&Reader {
            index,
            name: &name,
            builtin,
            options: op.builtin_options()?,
            tensors,
            inputs: &inputs,
            outputs: &outputs,
            intermediates: &intermediates,
        })?;
        let need_in = kind.op().required_inputs();
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
        Ok(ModelOp {
            name,
            kind,
            inputs,
            outputs,
        })
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
        self.kind.op().data_inputs(self)
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
        let at = At {
            op: self,
            index,
            ctx,
        };
        self.kind.op().infer_shape(&at)
    }

    /// The host operator over `io`'s tensors. PACK's inputs must already be
    /// views with the new axis. `None` when no host work is needed (a
    /// RESHAPE whose output aliases its input).
    pub fn host_op<'h>(
        &self,
        index: usize,
        io: &Io<'h>,
        ctx: &Ctx<'_, '_>,
    ) -> Result<Option<AnyOp<'h>>, LoadError> {
        let at = At {
            op: self,
            index,
            ctx,
        };
        self.kind.op().any_op(&at, io)
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
