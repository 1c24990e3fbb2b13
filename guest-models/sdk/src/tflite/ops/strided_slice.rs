//! STRIDED_SLICE with constant bounds (no ellipsis or new-axis masks).

use super::{At, Io, Reader, TfliteOp, fb};
use crate::nn::{self, Op};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct StridedSlice {
    begin_mask: i32,
    end_mask: i32,
    shrink_axis_mask: i32,
}

/// Per axis: (start, step, count) and whether the axis is shrunk away.
type Axes = Vec<((i64, i64, u32), bool)>;

impl StridedSlice {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        let Some(fb::BuiltinOptionsRef::StridedSliceOptions(o)) = r.options else {
            return Err(r.missing());
        };
        if o.ellipsis_mask()? != 0 || o.new_axis_mask()? != 0 {
            return Err(r.unsupported("uses an ellipsis or new-axis mask"));
        }
        Ok(StridedSlice {
            begin_mask: o.begin_mask()?,
            end_mask: o.end_mask()?,
            shrink_axis_mask: o.shrink_axis_mask()?,
        })
    }

    /// Every axis resolved against the input's shape, as TFLite does.
    fn axes(&self, at: &At<'_>) -> Result<Axes, LoadError> {
        let s = at.shape(0);
        let (b, e, st) = (
            at.ints(1, "begin")?,
            at.ints(2, "end")?,
            at.ints(3, "strides")?,
        );
        let r = s.len();
        if b.len() != r || e.len() != r || st.len() != r || st.contains(&0) {
            return Err(at.malformed(format!("slice {b:?}:{e:?}:{st:?} for {s:?}")));
        }
        Ok((0..r)
            .map(|d| {
                let bit = |m: i32| m & (1 << d) != 0;
                let shrink = bit(self.shrink_axis_mask);
                let axis = slice_axis(
                    s[d] as i64,
                    b[d] as i64,
                    e[d] as i64,
                    st[d] as i64,
                    bit(self.begin_mask),
                    bit(self.end_mask),
                    shrink,
                );
                (axis, shrink)
            })
            .collect())
    }
}

impl TfliteOp for StridedSlice {
    fn required_inputs(&self) -> usize {
        4
    }

    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        Ok(self
            .axes(at)?
            .into_iter()
            .filter(|&(_, shrink)| !shrink)
            .map(|((_, _, n), _)| n)
            .collect())
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        let (mut begin, mut strides, mut counts) = (vec![], vec![], vec![]);
        for ((start, step, n), _) in self.axes(at)? {
            begin.push(if n == 0 { 0 } else { start as i32 });
            strides.push(step as i32);
            counts.push(n);
        }
        Ok(Some(Op::StridedSlice(nn::StridedSlice {
            input: io.get(at.input(0))?,
            output: io.get(at.op.outputs[0])?,
            begin,
            strides,
            counts,
        })))
    }
}

/// TFLite's `StartForAxis`/`StopForAxis`: (start, step, count) for one axis.
fn slice_axis(
    size: i64,
    begin: i64,
    end: i64,
    stride: i64,
    begin_masked: bool,
    end_masked: bool,
    shrink: bool,
) -> (i64, i64, u32) {
    let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
    let mut start = if begin_masked {
        if stride > 0 {
            i64::MIN / 2
        } else {
            i64::MAX / 2
        }
    } else {
        begin
    };
    if start < 0 {
        start += size;
    }
    start = if stride > 0 {
        clamp(start, 0, size)
    } else {
        clamp(start, -1, size - 1)
    };
    let stop = if shrink {
        start + 1
    } else {
        let mut stop = if end_masked {
            if stride > 0 {
                i64::MAX / 2
            } else {
                i64::MIN / 2
            }
        } else {
            end
        };
        if stop < 0 {
            stop += size;
        }
        if stride > 0 {
            clamp(stop, 0, size)
        } else {
            clamp(stop, -1, size - 1)
        }
    };
    let count = if stride > 0 {
        (stop - start + stride - 1) / stride
    } else {
        (start - stop + (-stride) - 1) / (-stride)
    };
    (start, stride, count.max(0) as u32)
}
