//! MEAN and REDUCE_MAX over constant axes.

use super::{At, Io, Reader, TfliteOp, fb};
use crate::nn::{self, Op};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Reduce {
    mean: bool,
    keep_dims: bool,
}

impl Reduce {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        Ok(Reduce {
            mean: r.builtin == fb::BuiltinOperator::Mean,
            keep_dims: match r.options {
                Some(fb::BuiltinOptionsRef::ReducerOptions(o)) => o.keep_dims()?,
                _ => false,
            },
        })
    }

    fn axes(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        let rank = at.shape(0).len();
        at.ints(1, "the reduction axes")?
            .into_iter()
            .map(|a| at.axis(a, rank))
            .collect()
    }
}

impl TfliteOp for Reduce {
    fn required_inputs(&self) -> usize {
        2
    }

    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        let axes = self.axes(at)?;
        let mut o = Vec::new();
        for (i, &d) in at.shape(0).iter().enumerate() {
            if !axes.contains(&(i as u32)) {
                o.push(d);
            } else if self.keep_dims {
                o.push(1);
            }
        }
        Ok(o)
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        let r = nn::Reduce {
            input: io.get(at.input(0))?,
            output: io.get(at.op.outputs[0])?,
            axes: self.axes(at)?,
            keep_dims: self.keep_dims,
        };
        Ok(Some(if self.mean {
            Op::Mean(r)
        } else {
            Op::ReduceMax(r)
        }))
    }
}
