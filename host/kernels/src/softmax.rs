//! SOFTMAX for int8, as the TFLite interpreter computes it: a 256-entry float
//! table of `exp(-scale·β·d)`, a float normaliser, and rounding of the
//! rescaled probability. (The reference interpreter registers no separate
//! reference softmax; its int8 path is this table.) And onnxruntime's
//! QLinearSoftmax, another table and other roundings.

use crate::error::{KernelError, check_len, ensure};
use crate::quant::cvtps_epi32;

const OP: &str = "softmax";

/// A softmax over the last dimension, ready to run.
#[derive(Clone, Debug)]
pub struct Softmax {
    pub(crate) outer: usize,
    pub(crate) depth: usize,
    pub(crate) table: Box<[f32; 256]>,
    pub(crate) out_scale: f32,
    pub(crate) out_zero_point: i32,
}

impl Softmax {
    pub fn new(
        outer: usize,
        depth: usize,
        input_scale: f32,
        beta: f32,
        out_scale: f32,
        out_zero_point: i32,
    ) -> Result<Self, KernelError> {
        check(outer, depth, input_scale, out_scale)?;
        ensure!(OP, beta.is_finite(), "beta {beta} is not finite");
        let scale = -input_scale * beta;
        let mut table = Box::new([0f32; 256]);
        for val in 0..=255i32 {
            table[(255 - val) as usize] = (scale * val as f32).exp();
        }
        Ok(Softmax {
            outer,
            depth,
            table,
            out_scale,
            out_zero_point,
        })
    }
}

/// What both softmaxes take: rows of a size that fits, positive scales.
fn check(outer: usize, depth: usize, input_scale: f32, out_scale: f32) -> Result<(), KernelError> {
    ensure!(
        OP,
        depth > 0 && outer.checked_mul(depth).is_some(),
        "bad shape {outer}x{depth}"
    );
    ensure!(
        OP,
        input_scale > 0.0 && out_scale > 0.0,
        "scales must be positive"
    );
    Ok(())
}

/// Scalar reference.
pub fn softmax_scalar(k: &Softmax, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    // table[255 - max + x] = exp(-s·β·(max - x)).
    rows(
        k.outer,
        k.depth,
        &k.table,
        input,
        output,
        |at, sum, row, out| {
            let inv = 1.0f32 / (sum * k.out_scale);
            for (o, &x) in out.iter_mut().zip(row) {
                let q = ((at(x) * inv).round() as i32).saturating_add(k.out_zero_point);
                *o = q.clamp(-128, 127) as i8;
            }
        },
    )
}

/// The first pass both runtimes share: each row of `depth` with its lookup
/// `at(x) = table[255 − max + x]` (an index in 0..=255) and the sum of its
/// lookups in single precision, in row order.
fn rows(
    outer: usize,
    depth: usize,
    table: &[f32; 256],
    input: &[i8],
    output: &mut [i8],
    mut f: impl FnMut(&dyn Fn(i8) -> f32, f32, &[i8], &mut [i8]),
) -> Result<(), KernelError> {
    check_len(OP, "input", input.len(), outer * depth)?;
    check_len(OP, "output", output.len(), outer * depth)?;
    for (row, out) in input
        .chunks_exact(depth)
        .zip(output.chunks_exact_mut(depth))
    {
        let max = row.iter().copied().max().unwrap_or(0) as i32;
        let at = |x: i8| table[(255 - max + x as i32) as usize];
        let sum = row.iter().fold(0f32, |s, &x| s + at(x));
        f(&at, sum, row, out);
    }
    Ok(())
}

/// onnxruntime's QLinearSoftmax (`contrib_ops/cpu/quantization/
/// qlinear_softmax.cc`, read in its source and measured against onnxruntime
/// 1.32): a table of `exp((d + shift) · input_scale)` for each difference
/// `d = x − max` in −255..=0, computed in double and kept in single
/// precision, where `shift = max(0, ln(f32::MAX / depth) − 5) / input_scale`
/// keeps the row's sum finite; the sum in single precision in row order;
/// each output `round_half_even(e · ⌊1 / output_scale⌋ / sum)` plus the
/// zero point, saturated. onnxruntime takes the output scale only through
/// `⌊1 / output_scale⌋` (it assumes 1/256), and the table depends on no
/// zero point, so a uint8 tensor shifted to int8 gives the same bytes.
#[derive(Clone, Debug)]
pub struct SoftmaxOnnxruntime {
    outer: usize,
    depth: usize,
    /// `table[255 + d]` for `d = x − max`.
    table: Box<[f32; 256]>,
    /// `⌊1 / output_scale⌋`.
    scale: f32,
    zero_point: i32,
}

impl SoftmaxOnnxruntime {
    pub fn new(
        outer: usize,
        depth: usize,
        input_scale: f32,
        out_scale: f32,
        out_zero_point: i32,
    ) -> Result<Self, KernelError> {
        check(outer, depth, input_scale, out_scale)?;
        let xs = input_scale as f64;
        let shift = (((f32::MAX as f64) / depth as f64).ln() - 5.0).max(0.0) / xs;
        let mut table = Box::new([0f32; 256]);
        for (i, t) in table.iter_mut().enumerate() {
            *t = (((i as f64) - 255.0 + shift) * xs).exp() as f32;
        }
        Ok(SoftmaxOnnxruntime {
            outer,
            depth,
            table,
            scale: (1.0f32 / out_scale).floor(),
            zero_point: out_zero_point,
        })
    }
}

/// [`SoftmaxOnnxruntime`], scalar: onnxruntime's own loop is scalar too.
pub fn softmax_onnxruntime(
    k: &SoftmaxOnnxruntime,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    rows(
        k.outer,
        k.depth,
        &k.table,
        input,
        output,
        |at, sum, row, out| {
            for (o, &x) in out.iter_mut().zip(row) {
                let q = cvtps_epi32(at(x) * k.scale / sum).saturating_add(k.zero_point);
                *o = q.clamp(-128, 127) as i8;
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_and_dominant_rows() {
        let k = Softmax::new(2, 4, 0.1, 1.0, 1.0 / 256.0, -128).unwrap();
        let mut out = [0i8; 8];
        softmax_scalar(&k, &[5, 5, 5, 5, 127, -128, -128, -128], &mut out).unwrap();
        // Uniform: 0.25 * 256 = 64 -> -64. Dominant: exp(-25.5) ≈ 0 -> 256 saturates to 127.
        assert_eq!(&out[..4], &[-64, -64, -64, -64]);
        assert_eq!(&out[4..], &[127, -128, -128, -128]);
    }

    /// onnxruntime's: a uniform row is exact; the dominant one saturates
    /// (256 − 128); an output scale of 1/200 enters as ⌊200⌋, so thirds
    /// are 66.67 → 67 steps.
    #[test]
    fn onnxruntimes_rows() {
        let k = SoftmaxOnnxruntime::new(3, 4, 0.1, 1.0 / 256.0, -128).unwrap();
        let mut out = [0i8; 12];
        let x = [5, 5, 5, 5, 127, -128, -128, -128, 0, 0, 0, -128];
        softmax_onnxruntime(&k, &x, &mut out).unwrap();
        assert_eq!(&out[..8], &[-64, -64, -64, -64, 127, -128, -128, -128]);
        assert_eq!(&out[8..], &[-43, -43, -43, -128]); // 85.33 − 128
        let k = SoftmaxOnnxruntime::new(1, 3, 0.1, 1.0 / 200.0, -100).unwrap();
        let mut out = [0i8; 3];
        softmax_onnxruntime(&k, &[1, 1, 1], &mut out).unwrap();
        assert_eq!(out, [-33, -33, -33]);
    }
}
