//! AVERAGE_POOL_2D and MAX_POOL_2D with TFLite's int8 semantics
//! (`reference_integer_ops::AveragePool` / `MaxPool`), where input and output
//! share quantization, and onnxruntime's float-domain average pool.

use crate::elementwise::Qp;
use crate::error::{KernelError, check_len, ensure};
use crate::geometry::{Shape4, Window, WindowSpec};
use crate::quant::{UINT8_SHIFT, cvtps_epi32, saturate_shifted};

/// A pooling window ready to run.
#[derive(Clone, Debug)]
pub struct Pool2d {
    pub(crate) input: Shape4,
    pub(crate) output: Shape4,
    pub(crate) window: Window,
    pub(crate) act_min: i32,
    pub(crate) act_max: i32,
}

impl Pool2d {
    pub fn new(
        op: &'static str,
        input: Shape4,
        output: Shape4,
        window: WindowSpec,
        act_min: i32,
        act_max: i32,
    ) -> Result<Self, KernelError> {
        ensure!(
            op,
            input.len().is_some() && output.len().is_some(),
            "shape overflows"
        );
        ensure!(
            op,
            input.n == output.n && input.c == output.c,
            "pooling keeps batch and channels: {input:?} -> {output:?}"
        );
        ensure!(
            op,
            window.dilation_h == 1 && window.dilation_w == 1,
            "pooling has no dilation"
        );
        let window = window.resolve(op, input.h, input.w, output.h, output.w)?;
        ensure!(
            op,
            act_min <= act_max,
            "activation range {act_min}..{act_max} is empty"
        );
        Ok(Pool2d {
            input,
            output,
            window,
            act_min,
            act_max,
        })
    }

    /// Whether each output sees all of the input: one output cell, a window
    /// with no padding.
    pub fn is_global(&self) -> bool {
        let w = self.window;
        self.output.h == 1
            && self.output.w == 1
            && w.pad_top == 0
            && w.pad_left == 0
            && w.kernel_h == self.input.h
            && w.kernel_w == self.input.w
    }

    /// Input elements visited per run: each output's window.
    pub fn macs(&self) -> u64 {
        (self.output.len().unwrap_or(0) as u64)
            .saturating_mul((self.window.kernel_h * self.window.kernel_w) as u64)
    }
}

/// The input and output shapes, once the buffers are checked against them.
fn check_io(
    k: &Pool2d,
    op: &'static str,
    input: &[i8],
    output: &[i8],
) -> Result<(Shape4, Shape4), KernelError> {
    check_len(op, "input", input.len(), k.input.len().unwrap_or(0))?;
    check_len(op, "output", output.len(), k.output.len().unwrap_or(0))?;
    Ok((k.input, k.output))
}

/// Visit each output position with the clamped window of input rows/cols it covers.
#[inline(always)]
fn for_each_window(
    k: &Pool2d,
    mut f: impl FnMut(usize, usize, usize, std::ops::Range<usize>, std::ops::Range<usize>),
) {
    let (is, os, w) = (k.input, k.output, k.window);
    for b in 0..os.n {
        for oy in 0..os.h {
            let y0 = (oy * w.stride_h) as isize - w.pad_top as isize;
            let ys =
                y0.max(0) as usize..((y0 + w.kernel_h as isize).min(is.h as isize)).max(0) as usize;
            for ox in 0..os.w {
                let x0 = (ox * w.stride_w) as isize - w.pad_left as isize;
                let xs = x0.max(0) as usize
                    ..((x0 + w.kernel_w as isize).min(is.w as isize)).max(0) as usize;
                f(b, oy, ox, ys.clone(), xs);
            }
        }
    }
}

/// `sum / count` rounded half away from zero, as TFLite, then clamped.
/// Sums wrap as TFLite's int32 ones do (in C++, undefined) for windows of
/// more than 2^24 cells, which only a plugin's made-up shapes have.
#[inline(always)]
fn average(sum: i32, count: i32, k: &Pool2d) -> i8 {
    let avg = if sum > 0 {
        sum.wrapping_add(count / 2) / count
    } else {
        sum.wrapping_sub(count / 2) / count
    };
    avg.clamp(k.act_min, k.act_max) as i8
}

/// Scalar reference average pool; rounds half away from zero like TFLite.
pub fn average_pool2d_scalar(
    k: &Pool2d,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    const OP: &str = "average_pool2d";
    let (is, os) = check_io(k, OP, input, output)?;
    let mut empty = false;
    for_each_window(k, |b, oy, ox, ys, xs| {
        let count = (ys.len() * xs.len()) as i32;
        if count == 0 {
            empty = true;
            return;
        }
        for c in 0..os.c {
            let mut acc: i32 = 0;
            for y in ys.clone() {
                for x in xs.clone() {
                    acc = acc.wrapping_add(input[is.offset(b, y, x, c)] as i32);
                }
            }
            output[os.offset(b, oy, ox, c)] = average(acc, count, k);
        }
    });
    ensure!(OP, !empty, "a pooling window lies wholly in the padding");
    Ok(())
}

/// A [`Pool2d`] with onnxruntime's QLinearAveragePool arithmetic: the
/// input's 256 dequantized values, computed once, and the output's
/// quantization.
#[derive(Clone, Debug)]
pub struct AveragePoolOnnxruntime {
    pool: Pool2d,
    dequantized: Box<[f32; 256]>,
    output: Qp,
    /// [`UINT8_SHIFT`] when the output stands for uint8, else 0.
    shift: i32,
}

impl AveragePoolOnnxruntime {
    /// With `uint8`, the tensors stand for uint8 ones less [`UINT8_SHIFT`]:
    /// the output's uint8 zero point is added before the rounding, as
    /// onnxruntime adds it. (The dequantized inputs are the same on
    /// either.)
    pub fn new(pool: Pool2d, input: Qp, output: Qp, uint8: bool) -> Self {
        let mut dequantized = Box::new([0f32; 256]);
        for (i, d) in dequantized.iter_mut().enumerate() {
            *d = input.scale * (i as u8 as i8 as i32 - input.zero_point) as f32;
        }
        AveragePoolOnnxruntime {
            pool,
            dequantized,
            output,
            shift: if uint8 { UINT8_SHIFT } else { 0 },
        }
    }

    /// Input elements visited per run.
    pub fn macs(&self) -> u64 {
        self.pool.macs()
    }
}

/// onnxruntime's QLinearAveragePool (`contrib_ops/cpu/quantization/
/// qlinear_pool.cc`, read in its source and measured against onnxruntime
/// 1.32): each input dequantized in single precision, `sx · (x − zx)`,
/// summed in float row by row in window order, divided by the cells of the
/// window inside the input, then `round_half_even(mean / sy + zy)`,
/// saturated. Input and output may be quantized differently. The zero point
/// is added before the rounding: a uint8 output's own (see
/// [`AveragePoolOnnxruntime::new`]).
/// (onnxruntime computes a window that covers its whole unpadded input as
/// its global average pool, which is another formula: the caller sends
/// those to `reduce::Mean`.)
pub fn average_pool2d_onnxruntime(
    k: &AveragePoolOnnxruntime,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    const OP: &str = "average_pool2d";
    let (qo, dequantized, shift) = (k.output, &k.dequantized, k.shift);
    let k = &k.pool;
    let (is, os) = check_io(k, OP, input, output)?;
    let mut empty = false;
    for_each_window(k, |b, oy, ox, ys, xs| {
        let count = ys.len() * xs.len();
        if count == 0 {
            empty = true;
            return;
        }
        // Each channel's sum takes the window's cells in the same order as
        // onnxruntime's; a chunk of channels is summed side by side.
        for c0 in (0..os.c).step_by(CHANNEL_CHUNK) {
            let n = CHANNEL_CHUNK.min(os.c - c0);
            let mut sums = [0f32; CHANNEL_CHUNK];
            for y in ys.clone() {
                for x in xs.clone() {
                    let at = is.offset(b, y, x, c0);
                    for (s, &v) in sums[..n].iter_mut().zip(&input[at..at + n]) {
                        *s += dequantized[v as u8 as usize];
                    }
                }
            }
            for (j, &sum) in sums[..n].iter().enumerate() {
                let mean = sum / count as f32;
                // `static_cast<int32_t>` of the rounded float: x86's
                // `cvttss2si` gives i32::MIN for what does not fit, as
                // `cvtps_epi32` does.
                let zero_point = (qo.zero_point + shift) as f32;
                let v = saturate_shifted(cvtps_epi32(mean / qo.scale + zero_point), shift);
                output[os.offset(b, oy, ox, c0 + j)] = v.clamp(k.act_min, k.act_max) as i8;
            }
        }
    });
    ensure!(OP, !empty, "a pooling window lies wholly in the padding");
    Ok(())
}

/// Channels summed together by [`average_pool2d`]: a stack buffer, so
/// nothing is allocated per call.
const CHANNEL_CHUNK: usize = 64;

/// Average pool with channels innermost: each window row is a run of
/// `kernel_w · c` contiguous bytes, summed into a chunk of channel sums the
/// compiler vectorizes on any instruction set. Bit-exact with
/// [`average_pool2d_scalar`]: the same integer sums and rounding.
pub fn average_pool2d(k: &Pool2d, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    const OP: &str = "average_pool2d";
    let (is, os) = check_io(k, OP, input, output)?;
    let mut empty = false;
    for_each_window(k, |b, oy, ox, ys, xs| {
        let count = (ys.len() * xs.len()) as i32;
        if count == 0 {
            empty = true;
            return;
        }
        let out = os.offset(b, oy, ox, 0);
        for c0 in (0..os.c).step_by(CHANNEL_CHUNK) {
            let n = (os.c - c0).min(CHANNEL_CHUNK);
            let mut acc = [0i32; CHANNEL_CHUNK];
            for y in ys.clone() {
                for x in xs.clone() {
                    let at = is.offset(b, y, x, c0);
                    for (a, &v) in acc[..n].iter_mut().zip(&input[at..at + n]) {
                        *a = a.wrapping_add(v as i32);
                    }
                }
            }
            for (o, &a) in output[out + c0..out + c0 + n].iter_mut().zip(&acc[..n]) {
                *o = average(a, count, k);
            }
        }
    });
    ensure!(OP, !empty, "a pooling window lies wholly in the padding");
    Ok(())
}

/// Max pool with channels innermost, a chunk of channel maxima at a time,
/// which the compiler vectorizes on any instruction set (the reference's
/// one channel at a time was most of a small 1-D CNN's time). Bit-exact
/// with [`max_pool2d_scalar`].
pub fn max_pool2d(k: &Pool2d, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    const OP: &str = "max_pool2d";
    let (is, os) = check_io(k, OP, input, output)?;
    for_each_window(k, |b, oy, ox, ys, xs| {
        let out = os.offset(b, oy, ox, 0);
        for c0 in (0..os.c).step_by(CHANNEL_CHUNK) {
            let n = (os.c - c0).min(CHANNEL_CHUNK);
            let mut m = [i8::MIN; CHANNEL_CHUNK];
            for y in ys.clone() {
                for x in xs.clone() {
                    let at = is.offset(b, y, x, c0);
                    for (m, &v) in m[..n].iter_mut().zip(&input[at..at + n]) {
                        *m = (*m).max(v);
                    }
                }
            }
            for (o, &v) in output[out + c0..out + c0 + n].iter_mut().zip(&m[..n]) {
                *o = (v as i32).clamp(k.act_min, k.act_max) as i8;
            }
        }
    });
    Ok(())
}

/// Scalar reference max pool.
pub fn max_pool2d_scalar(k: &Pool2d, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    const OP: &str = "max_pool2d";
    let (is, os) = check_io(k, OP, input, output)?;
    for_each_window(k, |b, oy, ox, ys, xs| {
        for c in 0..os.c {
            let mut m = i8::MIN as i32;
            for y in ys.clone() {
                for x in xs.clone() {
                    m = m.max(input[is.offset(b, y, x, c)] as i32);
                }
            }
            output[os.offset(b, oy, ox, c)] = m.clamp(k.act_min, k.act_max) as i8;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Padding;

    fn pool(padding: Padding, out_hw: usize) -> Pool2d {
        Pool2d::new(
            "pool",
            Shape4::new(1, 3, 3, 1),
            Shape4::new(1, out_hw, out_hw, 1),
            WindowSpec {
                kernel_h: 2,
                kernel_w: 2,
                stride_h: 2,
                stride_w: 2,
                dilation_h: 1,
                dilation_w: 1,
                padding,
            },
            -128,
            127,
        )
        .unwrap()
    }

    #[test]
    fn average_rounds_half_away_from_zero() {
        let k = pool(Padding::Valid, 1);
        let mut out = [0i8; 1];
        // window (0,0),(0,1),(1,0),(1,1): 1+2+3+4 = 10 / 4 = 2.5 -> 3
        average_pool2d_scalar(&k, &[1, 2, 0, 3, 4, 0, 0, 0, 0], &mut out).unwrap();
        assert_eq!(out, [3]);
        average_pool2d_scalar(&k, &[-1, -2, 0, -3, -4, 0, 0, 0, 0], &mut out).unwrap();
        assert_eq!(out, [-3]);
    }

    /// onnxruntime's average: windows clipped by the padding divide by the
    /// cells they cover, and `mean / sy + zy` rounds half to even.
    #[test]
    fn onnxruntime_average_divides_by_the_covered_cells() {
        let k = pool(Padding::Same, 2);
        let (qi, qo) = (
            Qp {
                scale: 0.5,
                zero_point: 1,
            },
            Qp {
                scale: 0.25,
                zero_point: -2,
            },
        );
        let mut y = [0i8; 4];
        let ort = AveragePoolOnnxruntime::new(k.clone(), qi, qo, false);
        average_pool2d_onnxruntime(&ort, &[1, 2, 4, 6, 8, 9, 3, 4, -7], &mut y).unwrap();
        // Dequantized, (x − 1) / 2; SAME pads the bottom and right only:
        // [0, .5, 2.5, 3.5] → 1.625 → 6.5 − 2 = 4.5 → 4 (a tie, to even);
        // [1.5, 4] → 2.75 → 11 − 2 = 9; [1, 1.5] → 1.25 → 5 − 2 = 3;
        // [−4] → −16 − 2 = −18.
        assert_eq!(y, [4, 9, 3, -18]);
        assert!(!k.is_global() && !pool(Padding::Valid, 1).is_global());
    }

    #[test]
    fn same_padding_counts_only_real_cells() {
        let k = pool(Padding::Same, 2);
        let mut out = [0i8; 4];
        let input = [1, 1, 9, 1, 1, 9, 7, 7, 5];
        average_pool2d_scalar(&k, &input, &mut out).unwrap();
        // windows: {1,1,1,1}=1, {9,9}=9, {7,7}=7, {5}=5
        assert_eq!(out, [1, 9, 7, 5]);
        max_pool2d_scalar(&k, &[1, 2, 9, 3, 4, 8, 7, 6, -5], &mut out).unwrap();
        assert_eq!(out, [4, 9, 7, -5]);
    }
}
