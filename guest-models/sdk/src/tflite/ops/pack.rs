//! PACK: a concatenation of its inputs viewed with a new axis of 1 (the
//! loader makes the views; see `Loader::pack_views`).

use super::{At, Io, ModelOp, Reader, TfliteOp, fb};
use crate::nn::{self, Op};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Pack {
    pub axis: i32,
}

impl Pack {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        let Some(fb::BuiltinOptionsRef::PackOptions(o)) = r.options else {
            return Err(r.missing());
        };
        Ok(Pack { axis: o.axis()? })
    }
}

impl TfliteOp for Pack {
    fn data_inputs(&self, op: &ModelOp) -> Vec<usize> {
        op.inputs.iter().flatten().copied().collect()
    }

    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        let s = at.shape(0);
        let a = at.axis(self.axis, s.len() + 1)? as usize;
        let mut o = s.to_vec();
        o.insert(a, at.op.inputs.iter().flatten().count() as u32);
        Ok(o)
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        Ok(Some(Op::Concatenation(nn::Concatenation {
            inputs: io.pack_views.iter().collect(),
            output: io.get(at.op.outputs[0])?,
            axis: at.axis(self.axis, at.shape(0).len() + 1)?,
        })))
    }
}
