//! PAD: any type, filled with the zero point (or zero bytes).

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::movement;

use super::operand::{pad_value, same_type};
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// Padding `(before, after)` per dimension.
#[derive(Clone, Debug)]
pub struct Pad {
    pub input: TensorKey,
    pub output: TensorKey,
    pub paddings: Vec<(usize, usize)>,
}

impl Operator for Pad {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let st = &*cx.st;
        let di = st.desc(self.input)?.clone();
        same_type(st, self.input, self.output, "pad")?;
        let value = pad_value(st.desc(self.output)?);
        let k = movement::Pad::new(&di.shape, &self.paddings, value)?;
        if k.out_dims() != st.desc(self.output)?.shape.as_slice() {
            return Err(NnFault::invalid(format!(
                "pad output is {:?}, padding gives {:?}",
                st.desc(self.output)?.shape,
                k.out_dims()
            )));
        }
        Ok(Built::new("pad", Kernel(k), vec![self.input], self.output))
    }
}

struct Kernel(movement::Pad);

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.bytes(|i, out| movement::pad(&self.0, i, out))
    }
}
