//! SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND (how the converter lowers
//! dilated convolutions), with constant block shapes and paddings.

use super::options::nhwc;
use super::{At, Io, Reader, TfliteOp, fb};
use crate::nn::{self, Op};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct SpaceBatch {
    to_batch: bool,
}

impl SpaceBatch {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        Ok(SpaceBatch {
            to_batch: r.builtin == fb::BuiltinOperator::SpaceToBatchNd,
        })
    }
}

impl TfliteOp for SpaceBatch {
    fn required_inputs(&self) -> usize {
        3
    }

    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        let [n, h, w, c] = nhwc(at.shape(0)).map_err(|e| at.malformed(e))?;
        let block = at.ints(1, "the block shape")?;
        let p = at.ints(2, "the paddings or crops")?;
        let (&[bh, bw], &[t, bo, l, r]) = (block.as_slice(), p.as_slice()) else {
            return Err(at.malformed(format!("block {block:?}, paddings {p:?}")));
        };
        let (bh, bw) = (bh.max(1) as u32, bw.max(1) as u32);
        let pad = |v: i32| v.max(0) as u32;
        Ok(if self.to_batch {
            vec![
                n * bh * bw,
                (h + pad(t) + pad(bo)) / bh,
                (w + pad(l) + pad(r)) / bw,
                c,
            ]
        } else {
            vec![
                n / (bh * bw),
                (h * bh).saturating_sub(pad(t) + pad(bo)),
                (w * bw).saturating_sub(pad(l) + pad(r)),
                c,
            ]
        })
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        let block = at.ints(1, "the block shape")?;
        let pads = at.ints(2, "the paddings or crops")?;
        let (block, before) = match (block.as_slice(), pads.as_slice()) {
            ([bh, bw], [t, _, l, _]) if *bh > 0 && *bw > 0 && *t >= 0 && *l >= 0 => {
                ((*bh as u32, *bw as u32), (*t as u32, *l as u32))
            }
            ([b1], [t, _]) if *b1 > 0 && *t >= 0 => ((*b1 as u32, 1), (*t as u32, 0)),
            _ => {
                return Err(LoadError::Unsupported(format!(
                    "operator {}: block {block:?} with paddings {pads:?}",
                    at.index
                )));
            }
        };
        let sb = nn::SpaceBatch {
            input: io.get(at.input(0))?,
            output: io.get(at.op.outputs[0])?,
            block,
            before,
        };
        Ok(Some(if self.to_batch {
            Op::SpaceToBatch(sb)
        } else {
            Op::BatchToSpace(sb)
        }))
    }
}
