//! CONCATENATION: any type, inputs and output quantized alike.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::movement;

use super::operand::{bytes, same_type};
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// The inputs joined along `axis`.
#[derive(Clone, Debug)]
pub struct Concatenation {
    pub inputs: Vec<TensorKey>,
    pub output: TensorKey,
    pub axis: usize,
}

impl Operator for Concatenation {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let st = &*cx.st;
        let mut shapes = Vec::with_capacity(self.inputs.len());
        for &i in &self.inputs {
            same_type(st, i, self.output, "concatenation")?;
            shapes.push(st.desc(i)?.shape.clone());
        }
        let dout = st.desc(self.output)?;
        // The kernel refuses more inputs than `MAX_CONCAT_INPUTS`, which is
        // no more than the store lends at once.
        let k = movement::Concat::new(&shapes, self.axis, dout.dtype.size())?;
        let total: usize = (0..self.inputs.len()).map(|i| k.input_len(i)).sum();
        if total != dout.byte_len()? {
            return Err(NnFault::invalid(format!(
                "concatenation of {shapes:?} on axis {} does not make {:?}",
                self.axis, dout.shape
            )));
        }
        Ok(Built::new(
            "concatenation",
            Kernel(k),
            self.inputs.clone(),
            self.output,
        ))
    }
}

struct Kernel(movement::Concat);

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.many(|ins, out| {
            let mut xs: [&[u8]; movement::MAX_CONCAT_INPUTS] = [&[]; movement::MAX_CONCAT_INPUTS];
            for (x, i) in xs.iter_mut().zip(ins) {
                *x = bytes(i);
            }
            let n = ins.len().min(xs.len());
            movement::concat(&self.0, &xs[..n], bytemuck::cast_slice_mut(out))
        })
    }
}
