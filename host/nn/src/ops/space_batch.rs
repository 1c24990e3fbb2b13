//! SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND: how TFLite lowers dilated
//! convolutions, any type.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::movement::{self, SpaceBatch};

use super::operand::{nhwc, pad_value, same_type};
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// Spatial blocks moved into the batch, after padding `before` (the
/// output's shape gives the padding after).
#[derive(Clone, Debug)]
pub struct SpaceToBatch {
    pub input: TensorKey,
    pub output: TensorKey,
    pub block: [usize; 2],
    pub before: [usize; 2],
}

/// The inverse: batches back into space, cropping `before`.
#[derive(Clone, Debug)]
pub struct BatchToSpace {
    pub input: TensorKey,
    pub output: TensorKey,
    pub block: [usize; 2],
    pub before: [usize; 2],
}

impl Operator for SpaceToBatch {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let name = "space_to_batch_nd";
        let st = &*cx.st;
        same_type(st, self.input, self.output, name)?;
        let (i4, o4) = (
            nhwc(st.desc(self.input)?, name)?,
            nhwc(st.desc(self.output)?, name)?,
        );
        let k = SpaceBatch::space_to_batch(
            i4,
            o4,
            self.block,
            self.before,
            pad_value(st.desc(self.output)?),
        )?;
        Ok(Built::new(
            name,
            Kernel { k, to_batch: true },
            vec![self.input],
            self.output,
        ))
    }
}

impl Operator for BatchToSpace {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let name = "batch_to_space_nd";
        let st = &*cx.st;
        same_type(st, self.input, self.output, name)?;
        let (i4, o4) = (
            nhwc(st.desc(self.input)?, name)?,
            nhwc(st.desc(self.output)?, name)?,
        );
        let k = SpaceBatch::batch_to_space(
            i4,
            o4,
            self.block,
            self.before,
            st.desc(self.input)?.dtype.size(),
        )?;
        Ok(Built::new(
            name,
            Kernel { k, to_batch: false },
            vec![self.input],
            self.output,
        ))
    }
}

struct Kernel {
    k: SpaceBatch,
    to_batch: bool,
}

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        let run = if self.to_batch {
            movement::space_to_batch
        } else {
            movement::batch_to_space
        };
        io.bytes(|i, out| run(&self.k, i, out))
    }
}
