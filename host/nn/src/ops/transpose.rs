//! TRANSPOSE: any type; bytes move, nothing is rescaled.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::movement;

use super::operand::same_type;
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// Output dimension `i` is input dimension `perm[i]`.
#[derive(Clone, Debug)]
pub struct Transpose {
    pub input: TensorKey,
    pub output: TensorKey,
    pub perm: Vec<usize>,
}

impl Operator for Transpose {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let st = &*cx.st;
        same_type(st, self.input, self.output, "transpose")?;
        let (di, dout) = (st.desc(self.input)?, st.desc(self.output)?);
        let k = movement::Transpose::new(&di.shape, &self.perm, di.dtype.size())?;
        if k.out_dims() != dout.shape.as_slice() {
            return Err(NnFault::invalid(format!(
                "transpose output is {:?}, {:?} of {:?} gives {:?}",
                dout.shape,
                self.perm,
                di.shape,
                k.out_dims()
            )));
        }
        Ok(Built::new(
            "transpose",
            Kernel(k),
            vec![self.input],
            self.output,
        ))
    }
}

struct Kernel(movement::Transpose);

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.bytes(|i, out| movement::transpose(&self.0, i, out))
    }
}
