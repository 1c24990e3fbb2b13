//! MEAN and REDUCE_MAX over a set of axes, with TFLite's int8 semantics.

use crate::elementwise::Qp;
use crate::error::{KernelError, check_len, ensure};
use crate::quant::{Requant, Rounding};

pub const MAX_RANK: usize = 6;

/// Which input elements feed each output element.
#[derive(Clone, Debug)]
pub struct Reduction {
    in_len: usize,
    out_len: usize,
    kept_dims: Vec<usize>,
    kept_strides: Vec<usize>,
    reduced_dims: Vec<usize>,
    reduced_strides: Vec<usize>,
    count: usize,
}

impl Reduction {
    pub fn new(op: &'static str, shape: &[usize], axes: &[usize]) -> Result<Self, KernelError> {
        ensure!(
            op,
            shape.len() <= MAX_RANK,
            "rank {} exceeds {MAX_RANK}",
            shape.len()
        );
        ensure!(
            op,
            axes.iter().all(|&a| a < shape.len()),
            "axes {axes:?} out of range for rank {}",
            shape.len()
        );
        let in_len = shape
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .ok_or_else(|| KernelError::new(op, "shape overflows"))?;
        let mut strides = vec![1usize; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * shape[i + 1];
        }
        let (mut kd, mut ks, mut rd, mut rs) = (vec![], vec![], vec![], vec![]);
        for (i, (&d, &s)) in shape.iter().zip(&strides).enumerate() {
            if axes.contains(&i) {
                rd.push(d);
                rs.push(s);
            } else {
                kd.push(d);
                ks.push(s);
            }
        }
        let count: usize = rd.iter().product();
        let out_len: usize = kd.iter().product();
        Ok(Reduction {
            in_len,
            out_len,
            kept_dims: kd,
            kept_strides: ks,
            reduced_dims: rd,
            reduced_strides: rs,
            count,
        })
    }

    pub fn out_len(&self) -> usize {
        self.out_len
    }

    /// Elements folded into each output.
    pub fn count(&self) -> usize {
        self.count
    }

    /// For each output in order, fold `f` over the input offsets it covers.
    fn for_each<A>(&self, init: A, mut f: impl FnMut(A, usize) -> A, mut out: impl FnMut(usize, A))
    where
        A: Copy,
    {
        let mut o = 0;
        walk(&self.kept_dims, &self.kept_strides, &mut |base| {
            let mut acc = init;
            walk(&self.reduced_dims, &self.reduced_strides, &mut |r| {
                acc = f(acc, base + r)
            });
            out(o, acc);
            o += 1;
        });
    }

    /// Each output's wrapping int32 sum of its inputs, given to `out` in
    /// output order. Integer sums do not depend on the order they are
    /// taken in, so when the innermost kept dimension is the input's
    /// innermost (MEAN over an NHWC tensor's H and W), runs of it are added
    /// a row at a time, in chunks summed on the stack.
    fn for_each_sum(&self, input: &[i8], mut out: impl FnMut(usize, i32)) {
        const CHUNK: usize = 256;
        let (Some(&c), Some(&1)) = (self.kept_dims.last(), self.kept_strides.last()) else {
            return self.for_each(0i32, |acc, i| acc.wrapping_add(input[i] as i32), out);
        };
        let outer = self.kept_dims.len() - 1;
        let mut acc = [0i32; CHUNK];
        let mut o = 0;
        walk(
            &self.kept_dims[..outer],
            &self.kept_strides[..outer],
            &mut |base| {
                for c0 in (0..c).step_by(CHUNK) {
                    let n = CHUNK.min(c - c0);
                    acc[..n].fill(0);
                    walk(&self.reduced_dims, &self.reduced_strides, &mut |r| {
                        let row = &input[base + r + c0..base + r + c0 + n];
                        for (a, &x) in acc[..n].iter_mut().zip(row) {
                            *a = a.wrapping_add(x as i32);
                        }
                    });
                    for (j, &a) in acc[..n].iter().enumerate() {
                        out(o + c0 + j, a);
                    }
                }
                o += c;
            },
        );
    }
}

/// Calls `g` with the offset of every index of `dims` (at most
/// [`MAX_RANK`] of them, as [`Reduction::new`] checks), in row-major
/// order. The index lives on the stack: this runs once per output row.
fn walk(dims: &[usize], strides: &[usize], g: &mut dyn FnMut(usize)) {
    let n: usize = dims.iter().product();
    let mut idx = [0usize; MAX_RANK];
    let idx = &mut idx[..dims.len()];
    for _ in 0..n {
        let off: usize = idx.iter().zip(strides).map(|(i, s)| i * s).sum();
        g(off);
        for k in (0..dims.len()).rev() {
            idx[k] += 1;
            if idx[k] < dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

/// MEAN over axes: the sum, less N input zero points, times
/// `input_scale / (N · output_scale)` in fixed point. TFLite folds 1/N into
/// the multiplier by shifting it left by floor(log2 N) (capped) and dividing
/// the significand by N, truncating; we do the same so every bit agrees.
#[derive(Clone, Debug)]
pub struct Mean {
    pub reduction: Reduction,
    requant: Requant,
    rounding: Rounding,
    input: Qp,
    output: Qp,
}

impl Mean {
    pub fn new(
        shape: &[usize],
        axes: &[usize],
        input: Qp,
        output: Qp,
        rounding: Rounding,
    ) -> Result<Self, KernelError> {
        let reduction = Reduction::new("mean", shape, axes)?;
        if rounding == Rounding::Nearest {
            // onnxruntime's QLinearGlobalAveragePool: the sum less N zero
            // points, times `input_scale / (output_scale · N)` in single
            // precision, in that order (N below 2^24 is exact in a float).
            let n = reduction.count.max(1) as f32;
            return Ok(Mean {
                reduction,
                requant: Requant::nearest(input.scale / (output.scale * n)),
                rounding,
                input,
                output,
            });
        }
        let base = Requant::from_real(input.scale as f64 / output.scale as f64, rounding);
        let n = reduction.count.max(1) as i64;
        let shift = (63 - (n as u64).leading_zeros() as i32)
            .min(32)
            .min(31 + base.shift);
        let multiplier = (((base.multiplier as i64) << shift) / n) as i32;
        Ok(Mean {
            reduction,
            requant: Requant {
                multiplier,
                shift: base.shift - shift,
            },
            rounding,
            input,
            output,
        })
    }
}

pub fn mean_scalar(k: &Mean, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    check_len("mean", "input", input.len(), k.reduction.in_len)?;
    check_len("mean", "output", output.len(), k.reduction.out_len)?;
    // int32 arithmetic that wraps, as TFLite's does (in C++, undefined)
    // past 2^24 elements summed, which only a plugin's made-up shapes reach.
    let zp_sum = k.input.zero_point.wrapping_mul(k.reduction.count as i32);
    k.reduction.for_each_sum(input, |o, acc| {
        let v = k
            .requant
            .apply(acc.wrapping_sub(zp_sum), k.rounding)
            .saturating_add(k.output.zero_point);
        output[o] = v.clamp(-128, 127) as i8;
    });
    Ok(())
}

/// REDUCE_MAX over axes: the largest raw int8 value (TFLite does not rescale).
pub fn reduce_max_scalar(
    k: &Reduction,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    check_len("reduce_max", "input", input.len(), k.in_len)?;
    check_len("reduce_max", "output", output.len(), k.out_len)?;
    k.for_each(i8::MIN, |m, i| m.max(input[i]), |o, m| output[o] = m);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Qp = Qp {
        scale: 0.5,
        zero_point: 1,
    };

    #[test]
    fn reduces_the_named_axes() {
        // 2x3 -> max over axis 1 and axis 0.
        let x = [1i8, 5, -3, 7, 0, 2];
        let r = Reduction::new("reduce_max", &[2, 3], &[1]).unwrap();
        let mut out = [0i8; 2];
        reduce_max_scalar(&r, &x, &mut out).unwrap();
        assert_eq!(out, [5, 7]);
        let r = Reduction::new("reduce_max", &[2, 3], &[0]).unwrap();
        let mut out = [0i8; 3];
        reduce_max_scalar(&r, &x, &mut out).unwrap();
        assert_eq!(out, [7, 5, 2]);
    }

    #[test]
    fn mean_by_hand() {
        let mut out = [0i8; 1];
        // (1+3+5+7 - 4·1) · 0.5 / (4 · 0.25) = 6.
        let m = Mean::new(
            &[1, 4],
            &[1],
            Q,
            Qp {
                scale: 0.25,
                zero_point: 0,
            },
            Rounding::Double,
        )
        .unwrap();
        mean_scalar(&m, &[1, 3, 5, 7], &mut out).unwrap();
        assert_eq!(out, [6]);
        // Same quantization over H and W: (0+2+4+6)/4 = 3, + 1.
        let m = Mean::new(&[1, 2, 2, 1], &[1, 2], Q, Q, Rounding::Double).unwrap();
        mean_scalar(&m, &[1, 3, 5, 7], &mut out).unwrap();
        assert_eq!(out, [4]);
    }

    proptest::proptest! {
        /// The row-wise sums equal the element-wise fold on any shape and
        /// axes, channels past a stack chunk included.
        #[test]
        fn row_sums_are_the_fold(
            dims in proptest::collection::vec(1usize..6, 1..=4),
            last in proptest::prop_oneof![1usize..8, 250usize..300],
            mask in 0u8..32,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let mut shape = dims;
            shape.push(last);
            let axes: Vec<usize> = (0..shape.len()).filter(|a| mask >> a & 1 == 1).collect();
            let r = Reduction::new("mean", &shape, &axes).unwrap();
            let n: usize = shape.iter().product();
            let x: Vec<i8> = (0..n)
                .map(|i| (seed.wrapping_mul(i as u64 + 1).rotate_left(17) >> 56) as i8)
                .collect();
            let mut fold = vec![0i32; r.out_len];
            r.for_each(0i32, |a, i| a.wrapping_add(x[i] as i32), |o, a| fold[o] = a);
            let mut rows = vec![i32::MAX; r.out_len];
            r.for_each_sum(&x, |o, a| rows[o] = a);
            proptest::prop_assert_eq!(rows, fold);
        }
    }
}
