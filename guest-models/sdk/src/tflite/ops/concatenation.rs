//! CONCATENATION.

use super::{At, Io, ModelOp, Reader, TfliteOp, fb};
use crate::nn::{self, Activation, Op};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Concatenation {
    axis: i32,
}

impl Concatenation {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        let Some(fb::BuiltinOptionsRef::ConcatenationOptions(o)) = r.options else {
            return Err(r.missing());
        };
        if r.fused(o.fused_activation_function())? != Activation::None {
            return Err(r.unsupported("fuses an activation"));
        }
        Ok(Concatenation { axis: o.axis()? })
    }
}

impl TfliteOp for Concatenation {
    fn data_inputs(&self, op: &ModelOp) -> Vec<usize> {
        op.inputs.iter().flatten().copied().collect()
    }

    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        let s = at.shape(0);
        let a = at.axis(self.axis, s.len())? as usize;
        let mut o = s.to_vec();
        o[a] = at
            .op
            .inputs
            .iter()
            .flatten()
            .map(|&t| at.ctx.shape(t).get(a).copied().unwrap_or(0))
            .sum();
        Ok(o)
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        let inputs = at
            .op
            .inputs
            .iter()
            .flatten()
            .map(|&t| io.get(t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Op::Concatenation(nn::Concatenation {
            inputs,
            output: io.get(at.op.outputs[0])?,
            axis: at.axis(self.axis, at.shape(0).len())?,
        })))
    }
}
