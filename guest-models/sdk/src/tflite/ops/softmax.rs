//! SOFTMAX.

use super::{At, Io, Reader, TfliteOp, fb};
use crate::nn::{self, Op};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Softmax {
    beta: f32,
}

impl Softmax {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        Ok(Softmax {
            beta: match r.options {
                Some(fb::BuiltinOptionsRef::SoftmaxOptions(o)) => o.beta()?,
                _ => 1.0,
            },
        })
    }
}

impl TfliteOp for Softmax {
    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        Ok(at.shape(0).to_vec())
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        Ok(Some(Op::Softmax(nn::Softmax {
            input: io.get(at.input(0))?,
            output: io.get(at.op.outputs[0])?,
            beta: self.beta,
        })))
    }
}
