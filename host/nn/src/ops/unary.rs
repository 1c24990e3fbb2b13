//! Operators of one input and one output of equal size: LOGISTIC, TANH,
//! HARD_SWISH, RELU, RELU6, RELU_N1_TO_1, QUANTIZE, DEQUANTIZE, RESHAPE.
//! They share their checks; each kind picks its kernel in `prepare`.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::elementwise::{
    HardSwish, Lut, Qp, Rescale, dequantize_i8, quantize_f32, quantize_linear_f32,
};

use super::operand::{act_i8, bytes, qp};
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::{DType, TensorKey};

/// Which one-input operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryKind {
    Logistic,
    Tanh,
    HardSwish,
    Relu,
    Relu6,
    ReluN1To1,
    Quantize,
    Dequantize,
    Reshape,
}

impl UnaryKind {
    fn name(self) -> &'static str {
        match self {
            UnaryKind::Logistic => "logistic",
            UnaryKind::Tanh => "tanh",
            UnaryKind::HardSwish => "hard_swish",
            UnaryKind::Relu => "relu",
            UnaryKind::Relu6 => "relu6",
            UnaryKind::ReluN1To1 => "relu_n1_to_1",
            UnaryKind::Quantize => "quantize",
            UnaryKind::Dequantize => "dequantize",
            UnaryKind::Reshape => "reshape",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Unary {
    pub kind: UnaryKind,
    pub input: TensorKey,
    pub output: TensorKey,
}

impl Operator for Unary {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let (kind, input, output) = (self.kind, self.input, self.output);
        let st = &*cx.st;
        let (di, dout) = (st.desc(input)?.clone(), st.desc(output)?.clone());
        if di.elements() != dout.elements() {
            return Err(NnFault::invalid(format!(
                "{kind:?}: {:?} and {:?} differ in size",
                di.shape, dout.shape
            )));
        }
        let name = kind.name();
        let built = |k| Ok(Built::new(name, k, vec![input], output));
        match kind {
            UnaryKind::Reshape => {
                if di.dtype != dout.dtype || di.byte_len()? != dout.byte_len()? {
                    return Err(NnFault::invalid(format!(
                        "reshape from {:?} {:?} to {:?} {:?} changes size or type",
                        di.dtype, di.shape, dout.dtype, dout.shape
                    )));
                }
                built(Kernel::Copy)
            }
            UnaryKind::Quantize if di.dtype == DType::F32 => {
                let q = qp(act_i8(st, output, "quantize output")?);
                built(match cx.semantics {
                    s if s.is_onnxruntime() => Kernel::QuantizeLinear(q),
                    _ => Kernel::QuantizeF32(q),
                })
            }
            UnaryKind::Dequantize => {
                let qi = qp(act_i8(st, input, "dequantize input")?);
                if dout.dtype != DType::F32 {
                    return Err(NnFault::invalid("dequantize output must be float32"));
                }
                built(Kernel::Dequantize(qi))
            }
            UnaryKind::Logistic if cx.semantics.is_onnxruntime() => {
                let qi = qp(act_i8(&*cx.st, input, "input")?);
                let qo = qp(act_i8(&*cx.st, output, "output")?);
                built(Kernel::Lut(Lut::logistic_onnxruntime(qi, qo)))
            }
            _ => {
                cx.fixed_point(name)?;
                let qi = qp(act_i8(&*cx.st, input, "input")?);
                let qo = qp(act_i8(&*cx.st, output, "output")?);
                let r = cx.semantics.conv();
                built(match kind {
                    UnaryKind::Logistic => Kernel::Lut(Lut::logistic(qi, qo)),
                    UnaryKind::Tanh => Kernel::Lut(Lut::tanh(qi, qo)),
                    UnaryKind::HardSwish => Kernel::HardSwish(HardSwish::new(qi, qo)?),
                    UnaryKind::Relu => {
                        Kernel::Rescale(Rescale::relu(qi, qo, (0.0, f32::INFINITY), r))
                    }
                    UnaryKind::Relu6 => Kernel::Rescale(Rescale::relu(qi, qo, (0.0, 6.0), r)),
                    UnaryKind::ReluN1To1 => Kernel::Rescale(Rescale::relu(qi, qo, (-1.0, 1.0), r)),
                    _ => Kernel::Rescale(Rescale::requantize(qi, qo, r)),
                })
            }
        }
    }
}

enum Kernel {
    Lut(Lut),
    HardSwish(HardSwish),
    Rescale(Rescale),
    QuantizeF32(Qp),
    /// onnxruntime's QuantizeLinear: `x / scale` rounded half to even.
    QuantizeLinear(Qp),
    Dequantize(Qp),
    /// A reshape: the same bytes, or a copy when the output is elsewhere.
    Copy,
}

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        match self {
            Kernel::Lut(k) => io.one(|i, out| k.apply(i, out)),
            Kernel::HardSwish(k) => io.one(|i, out| k.apply(i, out)),
            Kernel::Rescale(k) => io.one(|i, out| k.apply(i, out)),
            Kernel::QuantizeF32(q) => io.one(|i, out| quantize_f32(*q, bytes(i), out)),
            Kernel::QuantizeLinear(q) => io.one(|i, out| quantize_linear_f32(*q, bytes(i), out)),
            Kernel::Dequantize(q) => io.bytes(|i, out| {
                dequantize_i8(*q, bytemuck::cast_slice(i), bytemuck::cast_slice_mut(out))
            }),
            // A reshape in place has nothing to do.
            Kernel::Copy if io.inputs.first() == Some(&io.output) => Ok(()),
            Kernel::Copy => io.one(|i, out| {
                out.copy_from_slice(i);
                Ok(())
            }),
        }
    }

    fn held_bytes(&self) -> u64 {
        match self {
            Kernel::Lut(_) => 256,
            _ => 0,
        }
    }

    fn may_alias(&self) -> bool {
        matches!(self, Kernel::Copy)
    }
}
