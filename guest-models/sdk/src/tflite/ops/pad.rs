//! PAD with constant paddings.

use super::{At, Io, Reader, TfliteOp};
use crate::nn::{self, Op};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Pad;

impl Pad {
    pub(super) fn read(_r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        Ok(Pad)
    }
}

impl TfliteOp for Pad {
    fn required_inputs(&self) -> usize {
        2
    }

    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        let s = at.shape(0);
        let p = at.ints(1, "the paddings")?;
        if p.len() != 2 * s.len() {
            return Err(at.malformed(format!("paddings {p:?}")));
        }
        Ok(s.iter()
            .enumerate()
            .map(|(i, &d)| d + p[2 * i].max(0) as u32 + p[2 * i + 1].max(0) as u32)
            .collect())
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        let rank = at.shape(0).len();
        let p = at.ints(1, "the paddings")?;
        if p.len() != 2 * rank || p.iter().any(|&v| v < 0) {
            return Err(at.malformed(format!("paddings {p:?} for rank {rank}")));
        }
        Ok(Some(Op::Pad(nn::Pad {
            input: io.get(at.input(0))?,
            output: io.get(at.op.outputs[0])?,
            paddings: p
                .chunks_exact(2)
                .map(|c| (c[0] as u32, c[1] as u32))
                .collect(),
        })))
    }
}
