//! SOFTMAX: int8 in, int8 out with scale 1/256 and zero point -128.

use gatehouse_kernels::KernelSet;

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
        cx.fixed_point("softmax")?;
        let (di, s_in, _) = act_i8(cx.st, self.input, "softmax input")?;
        let (dout, s_out, z_out) = act_i8(cx.st, self.output, "softmax output")?;
        if di.shape != dout.shape {
            return Err(NnFault::invalid(format!(
                "softmax shapes differ: {:?} vs {:?}",
                di.shape, dout.shape
            )));
        }
        if s_out != 1.0 / 256.0 || z_out != -128 {
            return Err(NnFault::invalid(
                "softmax output must have scale 1/256 and zero point -128",
            ));
        }
        let depth = *di
            .shape
            .last()
            .ok_or_else(|| NnFault::invalid("softmax of a scalar"))?;
        let outer = if depth == 0 { 0 } else { di.elements() / depth };
        let k = gatehouse_kernels::Softmax::new(outer, depth, s_in, self.beta, s_out, z_out)?;
        Ok(Built::new(
            "softmax",
            Kernel(k),
            vec![self.input],
            self.output,
        ))
    }
}

struct Kernel(gatehouse_kernels::Softmax);

impl Eval for Kernel {
    fn eval(&self, ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.one(|i, out| (ks.softmax)(&self.0, i, out))
    }

    /// Its exponent table.
    fn held_bytes(&self) -> u64 {
        1024
    }
}
