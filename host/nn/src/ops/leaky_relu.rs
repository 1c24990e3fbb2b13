//! LEAKY_RELU: onnxruntime's QLinearLeakyRelu, a table of 256 entries.
//! TFLite's fixed-point LEAKY_RELU is not reproduced yet, so a plan under
//! TFLite's semantics refuses it rather than compute something close.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::elementwise::Lut;

use super::operand::{act_i8, qp};
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// `output = input < 0 ? alpha · input : input`, on int8 tensors of one size.
#[derive(Clone, Debug)]
pub struct LeakyRelu {
    pub input: TensorKey,
    pub output: TensorKey,
    pub alpha: f32,
}

impl Operator for LeakyRelu {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        if !cx.semantics.is_onnxruntime() {
            return Err(NnFault::Unsupported(
                "leaky_relu under TFLite semantics (onnxruntime's only, so far)".into(),
            ));
        }
        if !self.alpha.is_finite() {
            return Err(NnFault::invalid(format!("leaky_relu alpha {}", self.alpha)));
        }
        let (di, si, zi) = act_i8(cx.st, self.input, "leaky_relu input")?;
        let elements = di.elements();
        let (dout, so, zo) = act_i8(cx.st, self.output, "leaky_relu output")?;
        if elements != dout.elements() {
            return Err(NnFault::invalid(format!(
                "leaky_relu: {:?} and {:?} differ in size",
                di.shape, dout.shape
            )));
        }
        let lut = Lut::leaky_relu_onnxruntime(qp((di, si, zi)), qp((dout, so, zo)), self.alpha);
        Ok(Built::new(
            "leaky_relu",
            Kernel(lut),
            vec![self.input],
            self.output,
        ))
    }
}

struct Kernel(Lut);

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.one(|i, out| self.0.apply(i, out))
    }

    fn held_bytes(&self) -> u64 {
        256
    }
}
