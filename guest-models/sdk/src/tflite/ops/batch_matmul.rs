//! BATCH_MATMUL of int8 activations (attention's products): the host's
//! `gatehouse:nn/sequence` operator.

use super::{At, Io, ModelOp, Reader, TfliteOp, fb};
use crate::nn::{self, AnyOp, SequenceOp};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchMatMul {
    adj_x: bool,
    adj_y: bool,
}

impl BatchMatMul {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        Ok(match r.options {
            Some(fb::BuiltinOptionsRef::BatchMatMulOptions(o)) => BatchMatMul {
                adj_x: o.adj_x()?,
                adj_y: o.adj_y()?,
            },
            _ => BatchMatMul {
                adj_x: false,
                adj_y: false,
            },
        })
    }
}

impl TfliteOp for BatchMatMul {
    fn required_inputs(&self) -> usize {
        2
    }

    fn data_inputs(&self, op: &ModelOp) -> Vec<usize> {
        vec![op.input(0), op.input(1)]
    }

    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        let (l, r) = (at.shape(0), at.shape(1));
        if l.len() < 2 || r.len() < 2 {
            return Err(at.malformed(format!("operands {l:?} and {r:?}")));
        }
        let m = if self.adj_x {
            l[l.len() - 1]
        } else {
            l[l.len() - 2]
        };
        let n = if self.adj_y {
            r[r.len() - 2]
        } else {
            r[r.len() - 1]
        };
        let (lb, rb) = (&l[..l.len() - 2], &r[..r.len() - 2]);
        let rank = lb.len().max(rb.len());
        let dim = |s: &[u32], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
        let mut out = Vec::with_capacity(rank + 2);
        for i in 0..rank {
            let (a, b) = (dim(lb, i), dim(rb, i));
            if a != b && a != 1 && b != 1 {
                return Err(at.malformed(format!("batch dimensions of {l:?} and {r:?}")));
            }
            out.push(a.max(b));
        }
        out.extend([m, n]);
        Ok(out)
    }

    fn any_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<AnyOp<'h>>, LoadError> {
        Ok(Some(AnyOp::Sequence(SequenceOp::BatchMatmul(
            nn::BatchMatmul {
                lhs: io.get(at.input(0))?,
                rhs: io.get(at.input(1))?,
                output: io.get(at.op.outputs[0])?,
                adj_x: self.adj_x,
                adj_y: self.adj_y,
            },
        ))))
    }
}
