//! Elementwise int8 operators with TFLite's reference semantics: MUL,
//! LOGISTIC and TANH (256-entry tables built in float, as TFLite builds
//! them), HARD_SWISH (TFLite's 16-bit fixed-point formulation), RELU/RELU6
//! (requantizing clamp), QUANTIZE and DEQUANTIZE; and onnxruntime's
//! float-domain forms of MUL and of its table-driven operators
//! (QLinearMul, QLinearSigmoid, QLinearConcat's requantization).

use crate::broadcast::Broadcast;
use crate::error::{KernelError, check_len, ensure};
use crate::quant::{
    Requant, Rounding, UINT8_SHIFT, cvtps_epi32, rounding_divide_by_pot, saturate_shifted,
};

/// MUL of two int8 tensors, with broadcasting.
#[derive(Clone, Debug)]
pub struct Mul {
    pub(crate) shape: Broadcast,
    pub(crate) input1_offset: i32,
    pub(crate) input2_offset: i32,
    pub(crate) output_offset: i32,
    pub(crate) output: Requant,
    pub(crate) act_min: i32,
    pub(crate) act_max: i32,
    pub(crate) rounding: Rounding,
    /// onnxruntime's arithmetic instead of the requantization above: the
    /// single-precision `sa·sb/sc` of [`mul_scalar`]'s float form.
    pub(crate) ratio: Option<f32>,
    /// [`UINT8_SHIFT`] when the float form's output stands for uint8, else 0.
    pub(crate) shift: i32,
}

/// Quantization of a tensor: scale and zero point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Qp {
    pub scale: f32,
    pub zero_point: i32,
}

impl Mul {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shape1: &[usize],
        shape2: &[usize],
        out: &[usize],
        q1: Qp,
        q2: Qp,
        qo: Qp,
        act: (i32, i32),
        rounding: Rounding,
        uint8: bool,
    ) -> Result<Self, KernelError> {
        let shape = Broadcast::new("mul", shape1, shape2, out)?;
        // TFLite multiplies the float scales in float, then widens.
        let real = (q1.scale * q2.scale / qo.scale) as f64;
        let ratio = (rounding == Rounding::Nearest).then_some(q1.scale * q2.scale / qo.scale);
        Ok(Mul {
            shape,
            input1_offset: -q1.zero_point,
            input2_offset: -q2.zero_point,
            output_offset: qo.zero_point,
            output: Requant::from_real(real, rounding),
            act_min: act.0,
            act_max: act.1,
            rounding,
            ratio,
            shift: if uint8 { UINT8_SHIFT } else { 0 },
        })
    }
}

pub fn mul_scalar(k: &Mul, in1: &[i8], in2: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    check_len("mul", "input 1", in1.len(), k.shape.len1)?;
    check_len("mul", "input 2", in2.len(), k.shape.len2)?;
    check_len("mul", "output", output.len(), k.shape.out_len)?;
    k.shape.for_each(|o, a, b| {
        let p = (in1[a] as i32 + k.input1_offset) * (in2[b] as i32 + k.input2_offset);
        let v = match k.ratio {
            // onnxruntime's QLinearMul (`MlasQLinearMulKernel`, the same on
            // its SSE2 and NEON paths, measured against onnxruntime 1.32):
            // the exact product converted to float, times the ratio, plus
            // the zero point, two single-precision roundings, then rounded
            // half to even. The zero point is added before the rounding, so
            // a uint8 output's is its uint8 one. Every step is commutative,
            // so a broadcast operand on either side agrees.
            Some(ratio) => {
                let zero_point = (k.output_offset + k.shift) as f32;
                saturate_shifted(cvtps_epi32((p as f32) * ratio + zero_point), k.shift)
            }
            None => k.output.apply(p, k.rounding) + k.output_offset,
        };
        output[o] = v.clamp(k.act_min, k.act_max) as i8;
    });
    Ok(())
}

/// A 256-entry int8 → int8 table.
#[derive(Clone, Debug)]
pub struct Lut {
    pub(crate) table: Box<[i8; 256]>,
}

impl Lut {
    /// TFLite's `PopulateLookupTable`: dequantize in float, transform,
    /// round to the output scale, saturate.
    pub fn new(input: Qp, output: Qp, f: impl Fn(f32) -> f32) -> Self {
        let inverse_scale = 1.0f32 / output.scale;
        let mut table = Box::new([0i8; 256]);
        for val in -128i32..=127 {
            let dequantized = input.scale * (val - input.zero_point) as f32;
            let rescaled = (f(dequantized) * inverse_scale).round();
            let q = (rescaled + output.zero_point as f32) as i32;
            table[(val as i8 as u8) as usize] = q.clamp(-128, 127) as i8;
        }
        Lut { table }
    }

    pub fn logistic(input: Qp, output: Qp) -> Self {
        Lut::new(input, output, |v| 1.0f32 / (1.0f32 + (-v).exp()))
    }

    pub fn tanh(input: Qp, output: Qp) -> Self {
        Lut::new(input, output, f32::tanh)
    }

    /// onnxruntime's `QlinearBuildLookupTable`: each input dequantized in
    /// single precision, `scale · (x − zero_point)`, transformed, then
    /// quantized as its QuantizeLinear does ([`quantize_linear`]). That
    /// quantization adds the zero point after rounding, so the table is
    /// the same for a uint8 tensor shifted to int8.
    pub fn onnxruntime(input: Qp, output: Qp, f: impl Fn(f32) -> f32) -> Self {
        let mut table = Box::new([0i8; 256]);
        for val in -128i32..=127 {
            let dequantized = input.scale * (val - input.zero_point) as f32;
            table[(val as i8 as u8) as usize] = quantize_linear(output, f(dequantized));
        }
        Lut { table }
    }

    /// QLinearSigmoid: onnxruntime's table of [`mlas_logistic`].
    pub fn logistic_onnxruntime(input: Qp, output: Qp) -> Self {
        Lut::onnxruntime(input, output, mlas_logistic)
    }

    /// QLinearLeakyRelu (measured against onnxruntime 1.32): the
    /// dequantized input if it is not negative, else `alpha` times it in
    /// single precision, quantized as QuantizeLinear does (half to even;
    /// older onnxruntime rounded half away with `std::round`).
    pub fn leaky_relu_onnxruntime(input: Qp, output: Qp, alpha: f32) -> Self {
        Lut::onnxruntime(input, output, |v| if v >= 0.0 { v } else { alpha * v })
    }

    /// QLinearConcat's table for an input quantized unlike the output:
    /// dequantize, then quantize again.
    pub fn requantize_onnxruntime(input: Qp, output: Qp) -> Self {
        Lut::onnxruntime(input, output, |v| v)
    }

    /// The 256 entries, indexed by the input's byte.
    pub fn table(&self) -> &[i8; 256] {
        &self.table
    }

    pub fn apply(&self, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
        check_len("lookup", "output", output.len(), input.len())?;
        for (o, &x) in output.iter_mut().zip(input) {
            *o = self.table[x as u8 as usize];
        }
        Ok(())
    }
}

/// onnxruntime's `MlasComputeLogistic`: Eigen's rational approximation on
/// `[-18, 18]`, `x·p(x²) / q(x²) + 1/2` clamped to `[0, 1]`, with each
/// polynomial step a fused multiply-add as its x86 FMA3 and ARM64 kernels
/// compute it (constants and order read in `mlas/lib/logistic.cpp`). It
/// is not the correctly rounded logistic: tables built from `exp` differ.
pub(crate) fn mlas_logistic(x: f32) -> f32 {
    // onnxruntime's decimal constants, as written there.
    #[allow(clippy::excessive_precision)]
    const ALPHA: [f32; 5] = [
        4.37031012579801e-11,
        1.15627324459942e-07,
        6.08574864600143e-05,
        8.51377133304701e-03,
        2.48287947061529e-01,
    ];
    #[allow(clippy::excessive_precision)]
    const BETA: [f32; 6] = [
        6.10247389755681e-13,
        5.76102136993427e-09,
        6.29106785017040e-06,
        1.70198817374094e-03,
        1.16817656904453e-01,
        9.93151921023180e-01,
    ];
    let x = x.clamp(-18.0, 18.0);
    let x2 = x * x;
    let p = ALPHA[1..].iter().fold(ALPHA[0], |p, &a| p.mul_add(x2, a)) * x;
    let q = BETA[1..].iter().fold(BETA[0], |q, &b| q.mul_add(x2, b));
    (p / q + 0.5).clamp(0.0, 1.0)
}

/// HARD_SWISH parameters, as TFLite's `HardSwishPrepare` derives them.
#[derive(Clone, Copy, Debug)]
pub struct HardSwish {
    pub(crate) input_zero_point: i32,
    pub(crate) output_zero_point: i32,
    pub(crate) output_multiplier: i16,
    pub(crate) output_exponent: i32,
    pub(crate) reluish_multiplier: i16,
    pub(crate) reluish_exponent: i32,
}

fn downscale_to_i16(m: i32) -> i16 {
    const ROUND: i32 = 1 << 15;
    if m >= i32::MAX - ROUND {
        i16::MAX
    } else {
        ((m + ROUND) >> 16) as i16
    }
}

fn srdhm16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    let ab = a as i32 * b as i32;
    let nudge: i32 = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    ((ab + nudge) / (1 << 15)) as i16
}

/// Like `srdhm16` but truncating (ARM `SQDMULH`).
fn sdhm16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    ((a as i32 * b as i32) / (1 << 15)) as i16
}

fn saturating_left_shift16(v: i16, amount: i32) -> i16 {
    (v as i64 * (1i64 << amount)).clamp(i16::MIN as i64, i16::MAX as i64) as i16
}

fn rdbpot16(x: i16, exponent: i32) -> i16 {
    rounding_divide_by_pot(x as i32, exponent) as i16
}

impl HardSwish {
    pub fn new(input: Qp, output: Qp) -> Result<Self, KernelError> {
        let hires_input_scale = (1.0f32 / 128.0f32) * input.scale;
        let reluish_scale = 3.0f32 / 32768.0f32;
        let out = Requant::from_real((hires_input_scale / output.scale) as f64, Rounding::Double);
        ensure!(
            "hard_swish",
            out.shift <= 0,
            "output multiplier exponent {} is positive",
            out.shift
        );
        let reluish =
            Requant::from_real((hires_input_scale / reluish_scale) as f64, Rounding::Double);
        Ok(HardSwish {
            input_zero_point: input.zero_point,
            output_zero_point: output.zero_point,
            output_multiplier: downscale_to_i16(out.multiplier),
            output_exponent: out.shift,
            reluish_multiplier: downscale_to_i16(reluish.multiplier),
            reluish_exponent: reluish.shift,
        })
    }

    fn one(&self, x: i8) -> i8 {
        let input_value = (x as i32 - self.input_zero_point) as i16;
        let hires = input_value.wrapping_mul(1 << 7);
        let preshift_output = srdhm16(hires, self.output_multiplier);
        let mut reluish = hires;
        if self.reluish_exponent > 0 {
            reluish = saturating_left_shift16(reluish, self.reluish_exponent - 1);
        }
        reluish = srdhm16(reluish, self.reluish_multiplier);
        if self.reluish_exponent > 0 {
            reluish = saturating_left_shift16(reluish, 1);
        }
        if self.reluish_exponent < 0 {
            reluish = rdbpot16(reluish, -self.reluish_exponent);
        }
        reluish = ((reluish as i32 + (1 << 15)) >> 1) as i16;
        let preshift = sdhm16(reluish, preshift_output);
        let out = rdbpot16(preshift, -self.output_exponent) as i32 + self.output_zero_point;
        out.clamp(-128, 127) as i8
    }

    pub fn apply(&self, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
        check_len("hard_swish", "output", output.len(), input.len())?;
        for (o, &x) in output.iter_mut().zip(input) {
            *o = self.one(x);
        }
        Ok(())
    }
}

/// RELU, RELU6, RELU_N1_TO_1 and int8 → int8 QUANTIZE: rescale by
/// `input_scale / output_scale`, then clamp.
#[derive(Clone, Copy, Debug)]
pub struct Rescale {
    pub(crate) input_zero_point: i32,
    pub(crate) output_zero_point: i32,
    pub(crate) requant: Requant,
    pub(crate) min: i32,
    pub(crate) max: i32,
    pub(crate) rounding: Rounding,
}

impl Rescale {
    /// `bounds` in real units (e.g. `(0.0, 6.0)` for RELU6; infinite for none).
    pub fn relu(input: Qp, output: Qp, bounds: (f32, f32), rounding: Rounding) -> Self {
        // TFLite: float ratio widened to double; bounds rounded with roundf.
        let real = (input.scale / output.scale) as f64;
        // A plugin may give a scale so small that the bound saturates i32.
        let q = |f: f32| {
            output
                .zero_point
                .saturating_add((f / output.scale).round() as i32)
        };
        let min = if bounds.0.is_finite() {
            q(bounds.0).max(-128)
        } else {
            -128
        };
        let max = if bounds.1.is_finite() {
            q(bounds.1).min(127)
        } else {
            127
        };
        Rescale {
            input_zero_point: input.zero_point,
            output_zero_point: output.zero_point,
            requant: Requant::from_real(real, rounding),
            min,
            max,
            rounding,
        }
    }

    /// QUANTIZE int8 → int8: `input_scale / output_scale` computed in double.
    pub fn requantize(input: Qp, output: Qp, rounding: Rounding) -> Self {
        let real = input.scale as f64 / output.scale as f64;
        Rescale {
            input_zero_point: input.zero_point,
            output_zero_point: output.zero_point,
            requant: Requant::from_real(real, rounding),
            min: -128,
            max: 127,
            rounding,
        }
    }

    pub fn apply(&self, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
        check_len("rescale", "output", output.len(), input.len())?;
        for (o, &x) in output.iter_mut().zip(input) {
            let v = self
                .requant
                .apply(x as i32 - self.input_zero_point, self.rounding)
                + self.output_zero_point;
            *o = v.clamp(self.min, self.max) as i8;
        }
        Ok(())
    }
}

/// QUANTIZE float32 (little-endian bytes) → int8: `round(x / scale) + zero_point`, saturated.
pub fn quantize_f32(q: Qp, input: &[u8], output: &mut [i8]) -> Result<(), KernelError> {
    check_len("quantize", "input bytes", input.len(), output.len() * 4)?;
    for (o, x) in output.iter_mut().zip(input.chunks_exact(4)) {
        let x = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
        let v = (x / q.scale).round() as i32;
        *o = v.saturating_add(q.zero_point).clamp(-128, 127) as i8;
    }
    Ok(())
}

/// onnxruntime's QuantizeLinear float32 → int8 (`MlasQuantizeLinear`):
/// `x / scale`, clamped to the int8 range less the zero point, rounded half
/// to even, plus the zero point. A NaN becomes the lower bound, as
/// `maxps(NaN, lo)` gives there; `f32::max` ignores the NaN alike.
pub fn quantize_linear_f32(q: Qp, input: &[u8], output: &mut [i8]) -> Result<(), KernelError> {
    check_len("quantize", "input bytes", input.len(), output.len() * 4)?;
    for (o, x) in output.iter_mut().zip(input.chunks_exact(4)) {
        *o = quantize_linear(q, f32::from_le_bytes([x[0], x[1], x[2], x[3]]));
    }
    Ok(())
}

/// One value of [`quantize_linear_f32`].
#[inline(always)]
pub(crate) fn quantize_linear(q: Qp, x: f32) -> i8 {
    let (lo, hi) = ((-128 - q.zero_point) as f32, (127 - q.zero_point) as f32);
    // max and min leave no NaN, so the conversion sees a value in range.
    let v = crate::quant::cvtps_epi32((x / q.scale).max(lo).min(hi));
    v.saturating_add(q.zero_point).clamp(-128, 127) as i8
}

/// DEQUANTIZE int8 → float32 (little-endian bytes): `scale · (x - zero_point)`
/// with the scale widened to double, as TFLite's `DequantizationParams` holds it.
pub fn dequantize_i8(q: Qp, input: &[i8], output: &mut [u8]) -> Result<(), KernelError> {
    check_len("dequantize", "output bytes", output.len(), input.len() * 4)?;
    for (o, &x) in output.chunks_exact_mut(4).zip(input) {
        o.copy_from_slice(
            &((q.scale as f64 * (x as i32 - q.zero_point) as f64) as f32).to_le_bytes(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `nn_ops` fuzz target: a RELU whose output scale is a
    /// denormal (3.8e-39) made the bound overflow i32 (a panic in a debug
    /// host). The bound saturates, and the clamp still holds.
    #[test]
    fn relu_bounds_saturate_for_a_vanishing_output_scale() {
        let out = Qp {
            scale: 3.765_255e-39,
            zero_point: 35,
        };
        let k = Rescale::relu(Q, out, (0.0, 6.0), Rounding::Single);
        assert_eq!((k.min, k.max), (35, 127));
        let mut y = [0i8; 3];
        k.apply(&[-128, 0, 127], &mut y).unwrap();
        assert!(y.iter().all(|&v| (35..=127).contains(&(v as i32))), "{y:?}");
    }

    const Q: Qp = Qp {
        scale: 0.1,
        zero_point: 0,
    };

    #[test]
    fn mul_by_hand() {
        let k = Mul::new(
            &[3],
            &[1],
            &[3],
            Q,
            Qp {
                scale: 0.5,
                zero_point: 2,
            },
            Qp {
                scale: 0.05,
                zero_point: -1,
            },
            (-128, 127),
            Rounding::Double,
            false,
        )
        .unwrap();
        let mut out = [0i8; 3];
        // (x*0.1) * ((4-2)*0.5) / 0.05 - 1 = 2x - 1
        mul_scalar(&k, &[1, -3, 50], &[4], &mut out).unwrap();
        assert_eq!(out, [1, -7, 99]);
    }

    /// onnxruntime's QLinearMul rounds half to even after it adds the zero
    /// point in float: with a ratio of 0.5, the odd products land on ties.
    #[test]
    fn onnxruntime_mul_rounds_ties_to_even() {
        let q = |scale, zero_point| Qp { scale, zero_point };
        let mul = |r| {
            Mul::new(
                &[4],
                &[4],
                &[4],
                q(0.5, 0),
                q(0.25, 1),
                q(0.25, 3),
                (-128, 127),
                r,
                false,
            )
        };
        let k = mul(Rounding::Nearest).unwrap();
        let mut out = [0i8; 4];
        // products 3, 5, -3, 200·100: 1.5 + 3, 2.5 + 3, -1.5 + 3, saturated
        mul_scalar(&k, &[3, 5, -3, 127], &[2, 2, 2, 101], &mut out).unwrap();
        assert_eq!(out, [4, 6, 2, 127]);
        // TFLite's single rounding on the same operands rounds the tie up.
        let t = mul(Rounding::Single).unwrap();
        mul_scalar(&t, &[3, 5, -3, 127], &[2, 2, 2, 101], &mut out).unwrap();
        assert_eq!(out, [5, 6, 2, 127]);
    }

    /// `MlasComputeLogistic` is within a few units in the last place of the
    /// logistic, and not the same function: over one table's inputs some
    /// values differ from `1 / (1 + e^-x)` in single precision.
    #[test]
    fn mlas_logistic_approximates_the_logistic() {
        let mut differ = 0;
        for i in -128i32..=127 {
            let x = 0.07 * i as f32;
            let exact = 1.0 / (1.0 + (-(x as f64)).exp());
            let got = mlas_logistic(x);
            assert!((got as f64 - exact).abs() < 1e-6, "{x}: {got} vs {exact}");
            differ += (got != (1.0f32 / (1.0 + (-x).exp()))) as u32;
        }
        assert!(differ > 0);
        assert_eq!(mlas_logistic(0.0), 0.5);
        assert_eq!(
            (mlas_logistic(-100.0), mlas_logistic(100.0)),
            (mlas_logistic(-18.0), mlas_logistic(18.0))
        );
    }

    #[test]
    fn onnxruntime_tables_quantize_half_to_even() {
        // 2·(x − 1) / 4 = (x − 1) / 2: odd differences are ties.
        let t = Lut::requantize_onnxruntime(
            Qp {
                scale: 2.0,
                zero_point: 1,
            },
            Qp {
                scale: 4.0,
                zero_point: -3,
            },
        );
        let at = |x: i8| t.table()[x as u8 as usize];
        assert_eq!([at(2), at(4), at(0), at(-2), at(127)], [-3, -1, -3, -5, 60]);
        let s = Lut::logistic_onnxruntime(
            Q,
            Qp {
                scale: 1.0 / 256.0,
                zero_point: -128,
            },
        );
        assert_eq!(s.table()[0], 0); // 0.5 · 256 − 128
        assert_eq!(s.table()[127], 127); // saturated
    }

    #[test]
    fn tables_are_monotone_and_centred() {
        let sig = Lut::logistic(
            Q,
            Qp {
                scale: 1.0 / 256.0,
                zero_point: -128,
            },
        );
        assert_eq!(sig.table[0], 0); // sigmoid(0) = 0.5 -> 128 - 128
        let th = Lut::tanh(
            Q,
            Qp {
                scale: 1.0 / 128.0,
                zero_point: 0,
            },
        );
        assert_eq!(th.table[0], 0);
        let mut prev = -128;
        for v in -128i32..=127 {
            let t = sig.table[(v as i8 as u8) as usize] as i32;
            assert!(t >= prev);
            prev = t;
        }
    }

    #[test]
    fn hard_swish_follows_the_curve() {
        let k = HardSwish::new(Q, Q).unwrap();
        let mut out = [0i8; 5];
        // x = -4, -1, 0, 1, 4 (units of 0.1 → -0.4..0.4): hswish(x) = x(x+3)/6
        k.apply(&[-40, -10, 0, 10, 40], &mut out).unwrap();
        let want = [-4.0f32, -1.0, 0.0, 1.0, 4.0]
            .map(|x| ((x * (x + 3.0).clamp(0.0, 6.0) / 6.0) / 0.1).round() as i8);
        for (g, w) in out.iter().zip(want) {
            assert!((*g as i32 - w as i32).abs() <= 1, "{out:?} vs {want:?}");
        }
    }

    #[test]
    fn relu6_clamps_in_output_units() {
        let r = Rescale::relu(
            Q,
            Qp {
                scale: 0.05,
                zero_point: -100,
            },
            (0.0, 6.0),
            Rounding::Double,
        );
        let mut out = [0i8; 3];
        r.apply(&[-5, 10, 127], &mut out).unwrap();
        // 0 -> -100 floor; 1.0 -> 20 - 100 = -80; 12.7 clamps at 6.0 -> 120 - 100 = 20
        assert_eq!(out, [-100, -80, 20]);
    }

    #[test]
    fn quantize_round_trip() {
        let q = Qp {
            scale: 0.25,
            zero_point: 3,
        };
        let bytes: Vec<u8> = [0.0f32, 1.0, -1.13, 100.0]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        let mut i = [0i8; 4];
        quantize_f32(q, &bytes, &mut i).unwrap();
        assert_eq!(i, [3, 7, -2, 127]);
        let mut f = [0u8; 16];
        dequantize_i8(q, &i, &mut f).unwrap();
        let back: Vec<f32> = f
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(back, [0.0, 1.0, -1.25, 31.0]);
    }
}
