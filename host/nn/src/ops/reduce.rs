//! MEAN and REDUCE_MAX: int8 reductions over a set of axes.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::elementwise::Qp;
use gatehouse_kernels::reduce::{Reduction, mean_scalar, reduce_max_scalar};

use super::operand::{act_i8, check_out_len, qp};
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// The mean over `axes`, requantized to the output.
#[derive(Clone, Debug)]
pub struct Mean {
    pub input: TensorKey,
    pub output: TensorKey,
    pub axes: Vec<usize>,
    /// Only the output's shape differs; the bytes are the same.
    pub keep_dims: bool,
}

/// The largest value over `axes`, quantized as the input.
#[derive(Clone, Debug)]
pub struct ReduceMax {
    pub input: TensorKey,
    pub output: TensorKey,
    pub axes: Vec<usize>,
}

impl Operator for Mean {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let (di, s_in, z_in) = act_i8(cx.st, self.input, "mean input")?;
        let shape = di.shape.clone();
        let qo = qp(act_i8(cx.st, self.output, "mean output")?);
        let k = gatehouse_kernels::reduce::Mean::new(
            &shape,
            &self.axes,
            Qp {
                scale: s_in,
                zero_point: z_in,
            },
            qo,
            cx.semantics.conv(),
        )?;
        check_out_len(cx.st, self.output, k.reduction.out_len())?;
        Ok(Built::new(
            "mean",
            MeanKernel(k),
            vec![self.input],
            self.output,
        ))
    }
}

impl Operator for ReduceMax {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let (di, _, _) = act_i8(cx.st, self.input, "reduce_max input")?;
        let k = Reduction::new("reduce_max", &di.shape.clone(), &self.axes)?;
        act_i8(cx.st, self.output, "reduce_max output")?;
        check_out_len(cx.st, self.output, k.out_len())?;
        Ok(Built::new(
            "reduce_max",
            MaxKernel(k),
            vec![self.input],
            self.output,
        ))
    }
}

struct MeanKernel(gatehouse_kernels::reduce::Mean);

impl Eval for MeanKernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.one(|i, out| mean_scalar(&self.0, i, out))
    }
}

struct MaxKernel(Reduction);

impl Eval for MaxKernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.one(|i, out| reduce_max_scalar(&self.0, i, out))
    }
}
