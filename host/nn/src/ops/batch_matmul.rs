//! BATCH_MATMUL of two int8 activations, `[..., M, K] x [..., K, N]`, either
//! side transposed on request, the leading dimensions broadcast.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::batch_matmul::{BatchMatMulSpec, batch_matmul_scalar};

use super::operand::act_i8;
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// `output = lhs x rhs` per batch.
#[derive(Clone, Debug)]
pub struct BatchMatMul {
    pub lhs: TensorKey,
    pub rhs: TensorKey,
    pub output: TensorKey,
    /// Transpose lhs's last two dimensions.
    pub adj_x: bool,
    /// Transpose rhs's last two dimensions.
    pub adj_y: bool,
}

impl Operator for BatchMatMul {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let (dl, sl, zl) = act_i8(cx.st, self.lhs, "batch_matmul lhs")?;
        let (dr, sr, zr) = act_i8(cx.st, self.rhs, "batch_matmul rhs")?;
        let (dout, so, zo) = act_i8(cx.st, self.output, "batch_matmul output")?;
        let k = gatehouse_kernels::BatchMatMul::new(BatchMatMulSpec {
            lhs_shape: dl.shape.clone(),
            rhs_shape: dr.shape.clone(),
            adj_x: self.adj_x,
            adj_y: self.adj_y,
            lhs_quant: (sl, zl),
            rhs_quant: (sr, zr),
            output_quant: (so, zo),
            rounding: cx.semantics.batch_matmul(),
        })?;
        if dout.elements() != k.output_len() {
            return Err(NnFault::invalid(format!(
                "batch_matmul output must be {:?}, is {:?}",
                k.output_shape(),
                dout.shape
            )));
        }
        cx.stage(Ok(k.scratch_bytes()), "batch_matmul scratch")?;
        Ok(Built::new(
            "batch_matmul",
            Kernel(k),
            vec![self.lhs, self.rhs],
            self.output,
        ))
    }
}

struct Kernel(gatehouse_kernels::BatchMatMul);

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.two(|l, r, out| batch_matmul_scalar(&self.0, l, r, out))
    }

    fn held_bytes(&self) -> u64 {
        self.0.scratch_bytes() as u64
    }

    fn macs(&self) -> u64 {
        self.0.macs()
    }
}
