//! STRIDED_SLICE: any type, with the begin, stride and count of each dimension resolved.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::movement;

use super::operand::{check_out_len, same_type};
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// `counts[d]` values from `begin[d]` by `strides[d]` in each dimension.
#[derive(Clone, Debug)]
pub struct StridedSlice {
    pub input: TensorKey,
    pub output: TensorKey,
    pub begin: Vec<i64>,
    pub strides: Vec<i64>,
    pub counts: Vec<usize>,
}

impl Operator for StridedSlice {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let st = &*cx.st;
        same_type(st, self.input, self.output, "strided_slice")?;
        let di = st.desc(self.input)?;
        let k = movement::StridedSlice::new(
            &di.shape,
            &self.begin,
            &self.strides,
            &self.counts,
            di.dtype.size(),
        )?;
        check_out_len(st, self.output, self.counts.iter().product())?;
        Ok(Built::new(
            "strided_slice",
            Kernel(k),
            vec![self.input],
            self.output,
        ))
    }
}

struct Kernel(movement::StridedSlice);

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.bytes(|i, out| movement::strided_slice(&self.0, i, out))
    }
}
