//! RESHAPE, EXPAND_DIMS and SQUEEZE: the same bytes under another shape.
//! The output's shape is in the model, or follows from the shape input,
//! the axis, or the squeezed dimensions. An activation's reshape aliases
//! its input and costs nothing; a copy is made only where it cannot.

use super::options::elements;
use super::{At, Io, Reader, TfliteOp, fb};
use crate::nn::{self, Op};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Reshape {
    /// RESHAPE: to the shape input, or the model's output shape.
    NewShape,
    ExpandDims,
    /// Bit i set: squeeze dimension i; none set: every dimension of size 1.
    Squeeze(u32),
}

impl Reshape {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        use fb::BuiltinOperator as B;
        Ok(match r.builtin {
            B::ExpandDims => Reshape::ExpandDims,
            B::Squeeze => {
                let mut mask = 0u32;
                if let Some(fb::BuiltinOptionsRef::SqueezeOptions(o)) = r.options {
                    let rank = r.input_shape(0).map_or(0, <[u32]>::len) as i32;
                    for d in o
                        .squeeze_dims()?
                        .map(|v| v.iter().collect::<Vec<i32>>())
                        .unwrap_or_default()
                    {
                        let d = if d < 0 { d + rank } else { d };
                        if !(0..rank.min(32)).contains(&d) {
                            return Err(LoadError::Malformed(format!(
                                "operator {}: squeeze dimension {d} for rank {rank}",
                                r.index
                            )));
                        }
                        mask |= 1 << d;
                    }
                }
                Reshape::Squeeze(mask)
            }
            _ => Reshape::NewShape,
        })
    }
}

impl TfliteOp for Reshape {
    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        let s = at.shape(0);
        Ok(match *self {
            Reshape::NewShape => {
                let Some(t) = at.op.optional(1) else {
                    return Ok(at.ctx.shape(at.op.outputs[0]).to_vec());
                };
                let want = at.ctx.ints(at.index, t, "the new shape")?;
                let known: u64 = want
                    .iter()
                    .filter(|&&d| d >= 0)
                    .map(|&d| d as u64)
                    .product();
                let total = elements(s);
                want.iter()
                    .map(|&d| {
                        if d >= 0 {
                            Ok(d as u32)
                        } else if known > 0 && total.is_multiple_of(known) {
                            Ok((total / known) as u32)
                        } else {
                            Err(at.malformed(format!("cannot reshape {s:?} to {want:?}")))
                        }
                    })
                    .collect::<Result<_, _>>()?
            }
            Reshape::ExpandDims => {
                let a = at.ints(1, "the axis")?;
                let a = *a.first().ok_or_else(|| at.malformed("no axis"))?;
                let a = at.axis(a, s.len() + 1)? as usize;
                let mut o = s.to_vec();
                o.insert(a, 1);
                o
            }
            Reshape::Squeeze(mask) => s
                .iter()
                .enumerate()
                .filter(|&(i, &d)| !(d == 1 && (mask == 0 || mask & (1 << i) != 0)))
                .map(|(_, &d)| d)
                .collect(),
        })
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        if io.aliased {
            return Ok(None);
        }
        Ok(Some(Op::Reshape(nn::Unary {
            input: io.get(at.input(0))?,
            output: io.get(at.op.outputs[0])?,
        })))
    }
}
