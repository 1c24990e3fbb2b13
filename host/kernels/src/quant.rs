//! Requantization exactly as TensorFlow Lite and onnxruntime compute it.
//!
//! TFLite has two fixed-point roundings for `MultiplyByQuantizedMultiplier`,
//! and which one an operator uses depends on the runtime and the operator
//! ([`Semantics`]). onnxruntime's fused integer kernels requantize in single
//! precision instead. All three are kept so a gateway can reproduce each
//! runtime byte for byte.

use crate::aligned::Aligned;

/// Which rounding the requantization step uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Rounding {
    /// `(x * m + 2^(30-s)) >> (31-s)` (`TFLITE_SINGLE_ROUNDING`).
    #[default]
    Single,
    /// gemmlowp `SaturatingRoundingDoublingHighMul` then `RoundingDivideByPOT`.
    Double,
    /// onnxruntime's `MlasRequantizeOutput`: `float(x) · scale` in single
    /// precision, rounded half to even. The [`Requant`] holds the scale
    /// itself ([`Requant::nearest`]), not a Q31 multiplier.
    Nearest,
}

/// Whose int8 arithmetic to reproduce. The TFLite interpreter's reference
/// kernels do not use one rounding everywhere: measured against its outputs,
/// FULLY_CONNECTED rounds once while CONV_2D, DEPTHWISE_CONV_2D and ADD round
/// twice. TFLite Micro rounds twice everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Semantics {
    /// The TFLite interpreter with its reference kernels (`BUILTIN_REF`).
    #[default]
    TfliteReference,
    /// TensorFlow Lite Micro.
    TfliteMicro,
    /// onnxruntime's CPU session with its graph optimizations on, whose
    /// fused integer kernels (QLinearConv, QGemm, QLinearMatMul) requantize
    /// in single precision: [`Rounding::Nearest`].
    Onnxruntime,
    /// onnxruntime's, for a model whose activations are uint8. The host
    /// holds each uint8 byte less [`UINT8_SHIFT`], zero points too, and
    /// most of onnxruntime's arithmetic gives the same bytes on either
    /// (it rounds, then adds the zero point). QLinearAdd, QLinearMul and
    /// QLinearAveragePool add the uint8 bytes or zero point in single
    /// precision before they round, so their kernels add the shift back
    /// first ([`Semantics::uint8`]).
    OnnxruntimeUint8,
}

/// A uint8 byte less this, as int8, is how the host holds it.
pub const UINT8_SHIFT: i32 = 128;

impl Semantics {
    /// One of onnxruntime's two.
    pub fn is_onnxruntime(self) -> bool {
        matches!(self, Semantics::Onnxruntime | Semantics::OnnxruntimeUint8)
    }

    /// The activations stand for uint8 ones ([`Semantics::OnnxruntimeUint8`]).
    pub fn uint8(self) -> bool {
        self == Semantics::OnnxruntimeUint8
    }

    pub fn conv(self) -> Rounding {
        match self {
            Semantics::Onnxruntime | Semantics::OnnxruntimeUint8 => Rounding::Nearest,
            _ => Rounding::Double,
        }
    }

    pub fn fully_connected(self) -> Rounding {
        match self {
            Semantics::TfliteReference => Rounding::Single,
            Semantics::TfliteMicro => Rounding::Double,
            Semantics::Onnxruntime | Semantics::OnnxruntimeUint8 => Rounding::Nearest,
        }
    }

    /// Under onnxruntime's semantics, `Nearest` selects QLinearAdd's
    /// single-precision arithmetic ([`crate::add`]).
    pub fn add(self) -> Rounding {
        match self {
            Semantics::Onnxruntime | Semantics::OnnxruntimeUint8 => Rounding::Nearest,
            _ => Rounding::Double,
        }
    }

    /// The integer LSTM's `MultiplyByQuantizedMultiplier` (measured against
    /// LiteRT: single rounding differs in about 1% of outputs).
    pub fn lstm(self) -> Rounding {
        Rounding::Double
    }

    /// BATCH_MATMUL: TFLite's measured against LiteRT, as for the LSTM;
    /// onnxruntime's is QLinearMatMul's single-precision scale.
    pub fn batch_matmul(self) -> Rounding {
        match self {
            Semantics::Onnxruntime | Semantics::OnnxruntimeUint8 => Rounding::Nearest,
            _ => Rounding::Double,
        }
    }
}

/// A real multiplier in TFLite's Q31 form: `real ≈ multiplier · 2^(shift-31)`;
/// or, for [`Rounding::Nearest`], the single-precision scale itself.
///
/// The vector epilogues load `multiplier` per lane whatever the rounding,
/// so the scale travels in it as its bits rather than in a field of its
/// own: one layout, one load, for all three roundings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Requant {
    /// Q31 significand, in `[2^30, 2^31)` or 0; under `Nearest`, the
    /// scale's bits (`f32::to_bits`).
    pub multiplier: i32,
    /// Power-of-two exponent; positive shifts left. 0 under `Nearest`.
    pub shift: i32,
}

/// `Nearest` results are kept within ±2^30 before they are rounded: far
/// past any int8 range after the zero point is added, and inside i32 (a
/// vector conversion of a larger float gives `i32::MIN` whatever its sign).
const NEAREST_BOUND: f32 = (1u32 << 30) as f32;

/// onnxruntime's requantization of one accumulator: `float(x) · scale`,
/// rounded half to even (as `_mm_cvtps_epi32` and `vcvtnq_s32_f32` do).
/// onnxruntime clamps to the output range before it rounds, the epilogues
/// after it adds the zero point; both are integers, so the two agree.
#[inline(always)]
pub fn nearest(x: i32, scale: f32) -> i32 {
    cvtps_epi32(((x as f32) * scale).clamp(-NEAREST_BOUND, NEAREST_BOUND))
}

/// A float rounded half to even and converted as x86's `cvtps2dq` does,
/// which onnxruntime's float-domain kernels (QLinearAdd, QLinearMul) use:
/// NaN and anything outside i32 become `i32::MIN`, whatever the sign, so a
/// saturating pack then gives the lowest int8.
///
/// On x86-64 it is that instruction's scalar form (SSE2, always there, and
/// rounding half to even because nothing here changes MXCSR): Rust's
/// `round_ties_even` compiles to a call to libm's `rintf` on the baseline
/// target, which was an eighth of a small ONNX model's time.
#[inline(always)]
pub(crate) fn cvtps_epi32(v: f32) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_cvtss_si32, _mm_set_ss};
        // SAFETY: SSE2 is part of the x86-64 baseline; every x86-64 CPU has it.
        unsafe { _mm_cvtss_si32(_mm_set_ss(v)) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let r = v.round_ties_even();
        if (-2147483648.0..2147483648.0).contains(&r) {
            r as i32
        } else {
            i32::MIN
        }
    }
}

/// A result of onnxruntime's float-domain kernels, computed on uint8
/// values when `shift` is [`UINT8_SHIFT`] (else 0), saturated to that
/// type's range as its packing instructions do (`i32::MIN` to the lowest)
/// and returned in the host's int8 form.
#[inline(always)]
pub(crate) fn saturate_shifted(v: i32, shift: i32) -> i32 {
    v.clamp(-128 + shift, 127 + shift) - shift
}

impl Requant {
    /// TFLite's `QuantizeMultiplier`, including its flush-to-zero of tiny
    /// multipliers and its saturation of huge ones (which TFLite does under
    /// single rounding only; see below). The multiplier is the same for
    /// either fixed-point rounding. Under `Nearest` it is the real rounded
    /// to single precision ([`Requant::nearest`]); onnxruntime's own scales
    /// are products in single precision, which its callers build themselves.
    pub fn from_real(real: f64, rounding: Rounding) -> Requant {
        if rounding == Rounding::Nearest {
            return Requant::nearest(real as f32);
        }
        if real == 0.0 || !real.is_finite() {
            return Requant {
                multiplier: 0,
                shift: 0,
            };
        }
        let (q, mut shift) = frexp(real);
        // TfLiteRound on double is round-half-away-from-zero.
        let mut q_fixed = (q * (1i64 << 31) as f64).round() as i64;
        if q_fixed == 1i64 << 31 {
            q_fixed /= 2;
            shift += 1;
        }
        if shift < -31 {
            shift = 0;
            q_fixed = 0;
        }
        // TFLite saturates huge multipliers under single rounding. Under
        // double rounding its `x * (1 << shift)` is undefined past 30 (and
        // C++'s shift by 32 or more is too): saturate the same way, so a
        // plugin's absurd scales give defined (clamped) outputs, never a
        // shift overflow. No real model comes near: scale ratios of int8
        // layers are far below 2^30.
        if shift > 30 {
            shift = 30;
            q_fixed = (1i64 << 31) - 1;
        }
        Requant {
            multiplier: q_fixed as i32,
            shift,
        }
    }

    /// The scale of [`Rounding::Nearest`], computed by the caller in
    /// single precision in onnxruntime's order (`x_scale · w_scale / y_scale`:
    /// a double-precision quotient rounded once can differ in the last
    /// bit). A scale that is not finite and positive becomes 0, so no
    /// input makes a NaN.
    pub fn nearest(scale: f32) -> Requant {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            0.0
        };
        Requant {
            multiplier: scale.to_bits() as i32,
            shift: 0,
        }
    }

    /// The scale of a [`Requant::nearest`].
    #[inline(always)]
    pub fn scale(self) -> f32 {
        f32::from_bits(self.multiplier as u32)
    }

    /// `MultiplyByQuantizedMultiplier(x, multiplier, shift)`, or
    /// onnxruntime's [`nearest`].
    #[inline(always)]
    pub fn apply(self, x: i32, rounding: Rounding) -> i32 {
        match rounding {
            Rounding::Single => mul_single(x, self.multiplier, self.shift),
            Rounding::Double => mul_double(x, self.multiplier, self.shift),
            Rounding::Nearest => nearest(x, self.scale()),
        }
    }

    /// `MultiplyByQuantizedMultiplierSmallerThanOneExp`, used by ADD: under
    /// double rounding it skips the left-shift step.
    #[inline(always)]
    pub fn apply_smaller_than_one(self, x: i32, rounding: Rounding) -> i32 {
        match rounding {
            Rounding::Single => mul_single(x, self.multiplier, self.shift),
            Rounding::Double => rounding_divide_by_pot(
                saturating_rounding_doubling_high_mul(x, self.multiplier),
                -self.shift,
            ),
            Rounding::Nearest => nearest(x, self.scale()),
        }
    }
}

/// Per-channel multipliers and shifts in two arrays, for vector loads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Multipliers {
    pub(crate) multiplier: Aligned<i32>,
    pub(crate) shift: Aligned<i32>,
    /// Double rounding as one 64-bit step (see [`Multipliers::DOUBLE_BLOCK`]),
    /// per block of 16 channels.
    pub(crate) double: Aligned<i64>,
    /// Single rounding's addends `2^(30+r)`, in the lane order of
    /// [`Multipliers::double`]'s: per block of 16 channels, the eight even
    /// channels, then the eight odd ones.
    pub(crate) single: Aligned<i64>,
    /// Every channel shifts right by 30 or less and none left, so
    /// [`Multipliers::double`] and [`Multipliers::single`] are exact for
    /// all of them.
    pub(crate) one_step: bool,
    /// Every channel has the same multiplier and shift (a per-tensor
    /// scale), so the constants of one group of channels serve them all.
    pub(crate) uniform: bool,
}

impl Multipliers {
    /// Values of [`Multipliers::double`] per block of 16 channels: the
    /// addend, the threshold and the shift, each for the eight even
    /// channels of the block and then the eight odd ones.
    ///
    /// Without a left shift, gemmlowp's two roundings of `x·m` are one
    /// flooring shift: the doubling high half is `h = (p + 2^30) >> 31`
    /// (see `requant512`), and dividing by `2^r` rounding half away from
    /// zero is `(h + 2^(r−1) − [h < 0]) >> r` for `r > 0`, so the result is
    /// `(p + 2^30 + 2^(30+r) − 2^31·[p < −2^30]) >> (31 + r)`. The
    /// threshold is `−2^30`, or `i64::MIN` (never below) when `r = 0`.
    /// For `r ≤ 30` nothing overflows 64 bits: `|p| < 2^62`.
    pub(crate) const DOUBLE_BLOCK: usize = 48;

    pub fn new(r: &[Requant]) -> Self {
        let blocks = r.len().div_ceil(16);
        let mut double = Aligned::zeroed(blocks * Self::DOUBLE_BLOCK);
        let mut single = Aligned::zeroed(blocks * 16);
        for (c, q) in r.iter().enumerate() {
            let right = (-q.shift).clamp(0, 30) as u32;
            let lane = (c % 16) / 2 + 8 * (c % 2);
            let at = c / 16 * Self::DOUBLE_BLOCK + lane;
            let up = if right > 0 { 1i64 << (30 + right) } else { 0 };
            double[at] = (1 << 30) + up;
            double[at + 16] = if right > 0 { -(1 << 30) } else { i64::MIN };
            double[at + 32] = 31 + right as i64;
            single[c / 16 * 16 + lane] = 1i64 << (30 + right);
        }
        Multipliers {
            multiplier: Aligned::copied(&r.iter().map(|q| q.multiplier).collect::<Vec<_>>()),
            shift: Aligned::copied(&r.iter().map(|q| q.shift).collect::<Vec<_>>()),
            double,
            single,
            one_step: r.iter().all(|q| (-30..=0).contains(&q.shift)),
            uniform: r.windows(2).all(|w| w[0] == w[1]),
        }
    }

    /// Whether the one-step tables hold, and cover the first `n` channels.
    /// (Only AVX2 reads them so far; every target builds them, so that a
    /// layer is charged the same bytes on each.)
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn one_step_covers(&self, n: usize) -> bool {
        let blocks = n.div_ceil(16);
        self.one_step
            && self.single.len() >= blocks * 16
            && self.double.len() >= blocks * Self::DOUBLE_BLOCK
    }

    /// Bytes the arrays hold.
    pub fn bytes(&self) -> usize {
        Self::bytes_for(self.multiplier.len())
    }

    /// Bytes the arrays of `n` channels hold.
    pub(crate) fn bytes_for(n: usize) -> usize {
        8 * n + 8 * n.div_ceil(16) * (Self::DOUBLE_BLOCK + 16)
    }
}

/// `std::frexp`: `x = q · 2^e` with `|q|` in `[0.5, 1)`.
pub fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale into the normal range first.
        let (q, e) = frexp(x * f64::from_bits(0x4350_0000_0000_0000)); // 2^54
        return (q, e - 54);
    }
    let e = exp - 1022;
    let q = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (q, e)
}

#[inline(always)]
fn mul_single(x: i32, multiplier: i32, shift: i32) -> i32 {
    // A multiplier from `from_real` keeps this in 1..=62; MEAN's folded
    // multipliers of made-up scales reach past it, where C++ is undefined.
    let total_shift = (31 - shift).clamp(1, 62);
    let round = 1i64 << (total_shift - 1);
    ((x as i64 * multiplier as i64 + round) >> total_shift) as i32
}

#[inline(always)]
fn mul_double(x: i32, multiplier: i32, shift: i32) -> i32 {
    // `from_real` keeps shifts at 30 or below; the clamp only defines what
    // a hand-made one would do (C++ leaves it undefined).
    let left = shift.clamp(0, 31);
    let right = (-shift).max(0);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x.wrapping_mul(1i32 << left), multiplier),
        right,
    )
}

/// gemmlowp `SaturatingRoundingDoublingHighMul`.
#[inline(always)]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Division truncates toward zero, as in C++.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp `RoundingDivideByPOT`: round half away from zero. gemmlowp
/// asserts `0 <= exponent <= 31`; a plugin's made-up scales reach past both
/// ends (where C++ shifts are undefined), so the exponent is clamped and the
/// arithmetic done in i64, which gives the same bits inside the range.
#[inline(always)]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let (x, e) = (x as i64, exponent.clamp(0, 62));
    let mask = (1i64 << e) - 1;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i64::from(x < 0);
    ((x >> e) + i64::from(remainder > threshold)) as i32
}

/// A fused activation, as TFLite's `ActivationFunctionType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    #[default]
    None,
    Relu,
    ReluN1To1,
    Relu6,
}

/// `CalculateActivationRangeQuantized` for int8 outputs.
pub fn activation_range(act: Activation, scale: f32, zero_point: i32) -> (i32, i32) {
    let (qmin, qmax) = (i8::MIN as i32, i8::MAX as i32);
    let quantize = |f: f32| zero_point.saturating_add((f / scale).round() as i32);
    match act {
        Activation::None => (qmin, qmax),
        Activation::Relu => (qmin.max(quantize(0.0)), qmax),
        Activation::Relu6 => (qmin.max(quantize(0.0)), qmax.min(quantize(6.0))),
        Activation::ReluN1To1 => (qmin.max(quantize(-1.0)), qmax.min(quantize(1.0))),
    }
}

/// Clamp an int32 to the activation range and narrow to int8.
#[inline(always)]
pub fn clamp_to_i8(x: i32, min: i32, max: i32) -> i8 {
    x.clamp(min, max) as i8
}

/// Properties every vector requantization must have, for the tests of each
/// instruction set: `row` is that set's `clamp(requant(acc + bias) + offset)`.
#[cfg(test)]
pub(crate) mod checks {
    use super::{Multipliers, Requant, Rounding};
    use proptest::prelude::*;

    /// `(acc, bias, multipliers, rounding, offset, min, max, out)`.
    pub type Row<'a> = &'a dyn Fn(&[i32], &[i32], &Multipliers, Rounding, i32, i32, i32, &mut [i8]);

    /// Each of the three roundings, for the property tests.
    pub fn roundings() -> impl Strategy<Value = Rounding> {
        prop_oneof![
            Just(Rounding::Single),
            Just(Rounding::Double),
            Just(Rounding::Nearest)
        ]
    }

    /// Random accumulators and per-channel multipliers from `real` up, or
    /// all `real` where `uniform` (a per-tensor scale).
    #[allow(clippy::too_many_arguments)]
    pub fn random(
        row: Row,
        xs: &[i32],
        real: f64,
        uniform: bool,
        bias: i32,
        rounding: Rounding,
        off: i32,
        lo: i32,
    ) -> Result<(), TestCaseError> {
        // Keep accumulators where TFLite's arithmetic is defined (no i32 overflow of x·2^left).
        let xs: Vec<i32> = xs.iter().map(|x| x >> 8).collect();
        let n = xs.len();
        let rq: Vec<Requant> = (0..n)
            .map(|i| {
                let spread = if uniform { 0.0 } else { 0.37 };
                Requant::from_real(real * (1.0 + i as f64 * spread), rounding)
            })
            .collect();
        let m = Multipliers::new(&rq);
        let b = vec![bias; n];
        let mut got = vec![0i8; n];
        row(&xs, &b, &m, rounding, off, lo, 127, &mut got);
        let want: Vec<i8> = (0..n)
            .map(|i| {
                (rq[i]
                    .apply(xs[i].wrapping_add(bias), rounding)
                    .wrapping_add(off))
                .clamp(lo, 127) as i8
            })
            .collect();
        prop_assert_eq!(got, want);
        Ok(())
    }

    /// Exact ties of the final shift: m = 2^30 halves exactly, so
    /// x/2 = t·2^k ± 2^(k−1) lies halfway between two results.
    /// Under `Nearest` the scale 2^-(k+1) is exact, so the same `x` is a
    /// tie of the float product, which rounds to even.
    pub fn tie(
        row: Row,
        t: i32,
        k: i32,
        rounding: Rounding,
        above: bool,
    ) -> Result<(), TestCaseError> {
        let rq = Requant::from_real(0.5 * 0.5f64.powi(k), rounding);
        let half = 1i32 << (k - 1);
        let x = 2 * (t * (1 << k) + if above { half } else { -half });
        // Odd lanes one below: the doubling high half of `x − 1` is the
        // same tie, reached from a product whose nudge lands exactly on a
        // multiple of 2^31.
        let xs: Vec<i32> = (0..20).map(|i| x - (i % 2)).collect();
        let m = Multipliers::new(&[rq; 20]);
        let mut got = [0i8; 20];
        row(&xs, &[0; 20], &m, rounding, 0, -128, 127, &mut got);
        let want: Vec<i8> = xs
            .iter()
            .map(|&x| rq.apply(x, rounding).clamp(-128, 127) as i8)
            .collect();
        prop_assert_eq!(&got[..], &want[..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// The instruction and the portable form agree: ties to even, the
    /// ends of i32, past them, infinities and NaN.
    #[test]
    fn cvtps_epi32_is_round_half_even_with_x86s_indefinite_integer() {
        let portable = |v: f32| {
            let r = v.round_ties_even();
            if (-2147483648.0..2147483648.0).contains(&r) {
                r as i32
            } else {
                i32::MIN
            }
        };
        let mut vs = vec![
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -2.5,
            0.49999997,
            126.5,
            127.5,
            -128.5,
            2147483520.0,
            2147483648.0,
            -2147483648.0,
            -2147483904.0,
            1e20,
            -1e20,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -0.0,
            f32::MIN_POSITIVE,
        ];
        let mut x = 0x1234_5678u32;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            vs.push(f32::from_bits(x));
            vs.push((x % 4096) as f32 / 8.0 - 256.0);
        }
        for v in vs {
            assert_eq!(super::cvtps_epi32(v), portable(v), "{v:e}");
        }
    }

    use super::*;
    use proptest::prelude::*;

    /// Found by the `nn_ops` fuzz target: a MEAN of made-up scales folded
    /// its 1/N into a shift of -63, and dividing by 2^94 overflowed the
    /// shifts (a panic in a debug host; undefined in TFLite's C++). Any
    /// shift is defined now, and a tiny multiplier gives 0 or -1.
    #[test]
    fn extreme_shifts_are_defined() {
        for shift in [-200, -63, -40, -32, 31, 45] {
            let r = Requant {
                multiplier: (1 << 30) + 12345,
                shift,
            };
            for x in [i32::MIN, -1, 0, 1, i32::MAX] {
                for rounding in [Rounding::Single, Rounding::Double] {
                    let _ = r.apply(x, rounding);
                    let _ = r.apply_smaller_than_one(x, rounding);
                }
                if shift < -40 {
                    assert!(
                        [-1, 0].contains(&r.apply(x, Rounding::Double)),
                        "{x} {shift}"
                    );
                }
            }
        }
        // Inside gemmlowp's range the bits are its own.
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
    }

    /// Found by the `nn_ops` fuzz target: an int8 QUANTIZE between scales
    /// 2^40 apart made a double-rounding multiplier shift a 32-bit one by
    /// 40 (a panic in a debug host, and undefined in TFLite's C++). It
    /// saturates instead, under both roundings, and clamps every output.
    #[test]
    fn huge_multipliers_saturate_under_both_roundings() {
        for rounding in [Rounding::Single, Rounding::Double] {
            let r = Requant::from_real(2f64.powi(40), rounding);
            assert_eq!((r.multiplier, r.shift), (i32::MAX, 30), "{rounding:?}");
            for x in [-128, -1, 0, 1, 127] {
                let _ = r.apply(x, rounding);
            }
        }
    }

    #[test]
    fn nearest_rounds_half_to_even_and_stays_defined() {
        let half = Requant::nearest(0.5);
        let r = |x| half.apply(x, Rounding::Nearest);
        assert_eq!([r(3), r(5), r(-3), r(-5), r(7)], [2, 2, -2, -2, 4]);
        // Accumulators past 2^24 are rounded to single precision first, as
        // onnxruntime's `cvtepi32_ps` does: 2^24 + 1 becomes 2^24.
        assert_eq!(
            Requant::nearest(1.0).apply((1 << 24) + 1, Rounding::Nearest),
            1 << 24
        );
        // Huge products stay inside ±2^30; bad scales become 0, never NaN.
        let huge = Requant::nearest(f32::MAX);
        assert_eq!(huge.apply(i32::MAX, Rounding::Nearest), 1 << 30);
        assert_eq!(huge.apply(i32::MIN, Rounding::Nearest), -(1 << 30));
        for bad in [f32::NAN, f32::INFINITY, -1.0, 0.0] {
            assert_eq!(Requant::nearest(bad).apply(i32::MAX, Rounding::Nearest), 0);
        }
        assert_eq!(Requant::from_real(0.25, Rounding::Nearest).scale(), 0.25);
    }

    #[test]
    fn frexp_matches_c() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(3.0), (0.75, 2));
        assert_eq!(frexp(1.0 / 1024.0), (0.5, -9));
        let tiny = f64::from_bits(1); // smallest subnormal = 2^-1074
        assert_eq!(frexp(tiny), (0.5, -1073));
    }

    #[test]
    fn quantize_multiplier_hand_cases() {
        // 0.5 = 0.5 * 2^0 -> 2^30, shift 0.
        assert_eq!(
            Requant::from_real(0.5, Rounding::Single),
            Requant {
                multiplier: 1 << 30,
                shift: 0
            }
        );
        // 0.25 -> 2^30, shift -1.
        assert_eq!(
            Requant::from_real(0.25, Rounding::Single),
            Requant {
                multiplier: 1 << 30,
                shift: -1
            }
        );
        // A significand that rounds up to 2^31 is renormalised.
        let almost_one = 1.0 - 1e-12;
        assert_eq!(
            Requant::from_real(almost_one, Rounding::Single),
            Requant {
                multiplier: 1 << 30,
                shift: 1
            }
        );
        // Below 2^-32 flushes to zero.
        assert_eq!(
            Requant::from_real(1e-12, Rounding::Single),
            Requant {
                multiplier: 0,
                shift: 0
            }
        );
        // Shifts above 30 saturate (see huge_multipliers_saturate_under_both_roundings).
        assert_eq!(
            Requant::from_real(2f64.powi(40), Rounding::Single),
            Requant {
                multiplier: i32::MAX,
                shift: 30
            }
        );
    }

    #[test]
    fn requant_hand_cases() {
        let half = Requant::from_real(0.5, Rounding::Single);
        // With no right shift both round half toward +inf (SRDHM's nudge does).
        assert_eq!(half.apply(3, Rounding::Single), 2);
        assert_eq!(half.apply(3, Rounding::Double), 2);
        assert_eq!(half.apply(-3, Rounding::Single), -1);
        assert_eq!(half.apply(-3, Rounding::Double), -1);
        let quarter = Requant::from_real(0.25, Rounding::Single);
        assert_eq!(quarter.apply(100, Rounding::Single), 25);
        assert_eq!(quarter.apply(-101, Rounding::Single), -25);
        assert_eq!(quarter.apply(-101, Rounding::Double), -25);
        assert_eq!(quarter.apply(-102, Rounding::Single), -25); // -25.5 -> -25
        // A right shift makes double rounding round half away from zero.
        assert_eq!(quarter.apply(-102, Rounding::Double), -26); // -25.5 -> -26
    }

    #[test]
    fn srdhm_and_pot_edge_cases() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(-4, 1), -2);
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
    }

    #[test]
    fn activation_ranges() {
        assert_eq!(activation_range(Activation::None, 0.1, 0), (-128, 127));
        assert_eq!(activation_range(Activation::Relu, 0.1, -10), (-10, 127));
        assert_eq!(activation_range(Activation::Relu6, 0.1, -128), (-128, -68));
        assert_eq!(
            activation_range(Activation::ReluN1To1, 0.01, 0),
            (-100, 100)
        );
    }

    /// Exact model of single rounding: `floor(x·m / 2^(31-s) + 1/2)` in i128.
    fn wide_single(x: i32, m: i32, s: i32) -> i64 {
        let num = x as i128 * m as i128;
        let den = 1i128 << (31 - s);
        (num * 2 + den).div_euclid(2 * den) as i64
    }

    /// Exact model of double rounding: round(x·2^l·m / 2^31) half away from
    /// zero (with the int32 saturation case), then round(·/2^r) half away.
    fn wide_double(x: i32, m: i32, s: i32) -> i64 {
        let l = s.max(0);
        let r = (-s).max(0);
        let a = (x as i64 * (1i64 << l)) as i32 as i128; // C wraps here
        if a == i32::MIN as i128 && m == i32::MIN {
            return (i32::MAX as i128).div_euclid(1) as i64;
        }
        let p = a * m as i128;
        // Round half away from zero of p / 2^31.
        let h = round_half_away(p, 1i128 << 31);
        round_half_away(h, 1i128 << r) as i64
    }

    fn round_half_away(n: i128, d: i128) -> i128 {
        let q = (n.abs() * 2 + d) / (2 * d);
        if n < 0 { -q } else { q }
    }

    proptest! {
        #[test]
        fn single_rounding_matches_wide_integers(x in any::<i32>(), m in (1i32 << 30)..=i32::MAX, s in -31i32..=0) {
            let r = Requant { multiplier: m, shift: s };
            prop_assert_eq!(r.apply(x, Rounding::Single) as i64, wide_single(x, m, s));
        }

        #[test]
        fn double_rounding_matches_wide_integers(x in -(1i32 << 24)..(1i32 << 24), m in (1i32 << 30)..=i32::MAX, s in -31i32..=7) {
            let r = Requant { multiplier: m, shift: s };
            prop_assert_eq!(r.apply(x, Rounding::Double) as i64, wide_double(x, m, s));
        }

        #[test]
        fn requant_approximates_the_real_scale(x in -(1i32 << 20)..(1i32 << 20), real in 1e-6f64..0.99) {
            // Single rounding is within half an LSB (plus the Q31 error of the
            // multiplier); rounding twice can add another half.
            for (rounding, bound) in [(Rounding::Single, 0.5), (Rounding::Double, 1.0)] {
                let r = Requant::from_real(real, rounding);
                let exact = x as f64 * real;
                let got = r.apply(x, rounding) as f64;
                prop_assert!((got - exact).abs() <= bound + 1e-9 * exact.abs(), "{rounding:?}: {got} vs {exact}");
            }
        }

        /// The product of two floats, exact in double precision and rounded
        /// once to single, is IEEE's single-precision product: an independent
        /// model of `nearest` within its bound.
        #[test]
        fn nearest_is_the_single_precision_product_rounded_to_even(x in any::<i32>(), scale in 1e-9f32..4.0) {
            let exact = (x as f32) as f64 * scale as f64;
            let want = (exact as f32).round_ties_even() as f64;
            let want = want.clamp(-((1u32 << 30) as f64), (1u32 << 30) as f64);
            prop_assert_eq!(Requant::nearest(scale).apply(x, Rounding::Nearest) as f64, want);
        }

        #[test]
        fn single_and_double_agree_but_on_ties(x in -(1i32 << 20)..(1i32 << 20), real in 1e-6f64..0.99) {
            let r = Requant::from_real(real, Rounding::Single);
            let a = r.apply(x, Rounding::Single);
            let b = r.apply(x, Rounding::Double);
            prop_assert!((a - b).abs() <= 1);
        }
    }
}
