//! SOFTMAX: int8 in, int8 out with scale 1/256 and zero point -128; under
//! onnxruntime's semantics its QLinearSoftmax, any output quantization.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::softmax::{SoftmaxOnnxruntime, softmax_onnxruntime};

use super::operand::act_i8;
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// Softmax over the last dimension.
#[derive(Clone, Debug)]
pub struct Softmax {
    pub input: TensorKey,
    pub output: TensorKey,
    pub beta: f32,
}

impl Operator for Softmax {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let onnxruntime = cx.semantics.is_onnxruntime();
        let (di, s_in, _) = act_i8(cx.st, self.input, "softmax input")?;
        let (dout, s_out, z_out) = act_i8(cx.st, self.output, "softmax output")?;
        if di.shape != dout.shape {
            return Err(NnFault::invalid(format!(
                "softmax shapes differ: {:?} vs {:?}",
                di.shape, dout.shape
            )));
        }
        // onnxruntime takes any output quantization (through ⌊1/scale⌋).
        if !onnxruntime && (s_out != 1.0 / 256.0 || z_out != -128) {
            return Err(NnFault::invalid(
                "softmax output must have scale 1/256 and zero point -128",
            ));
        }
        let depth = *di
            .shape
            .last()
            .ok_or_else(|| NnFault::invalid("softmax of a scalar"))?;
        let outer = di.elements().checked_div(depth).unwrap_or(0);
        let kernel = if onnxruntime {
            if self.beta != 1.0 {
                return Err(NnFault::Unsupported(format!(
                    "softmax with beta {} under onnxruntime semantics (ONNX's has none)",
                    self.beta
                )));
            }
            Kernel::Onnxruntime(SoftmaxOnnxruntime::new(outer, depth, s_in, s_out, z_out)?)
        } else {
            Kernel::Tflite(gatehouse_kernels::Softmax::new(
                outer, depth, s_in, self.beta, s_out, z_out,
            )?)
        };
        Ok(Built::new("softmax", kernel, vec![self.input], self.output))
    }
}

enum Kernel {
    Tflite(gatehouse_kernels::Softmax),
    /// QLinearSoftmax.
    Onnxruntime(SoftmaxOnnxruntime),
}

impl Eval for Kernel {
    fn eval(&self, ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        match self {
            Kernel::Tflite(k) => io.one(|i, out| (ks.softmax)(k, i, out)),
            Kernel::Onnxruntime(k) => io.one(|i, out| softmax_onnxruntime(k, i, out)),
        }
    }

    /// Its exponent table.
    fn held_bytes(&self) -> u64 {
        1024
    }
}
