//! NEON kernels for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED,
//! bit-exact with the scalar references: the same wrapping i32 sums,
//! reordered, then the same requantization.
//!
//! Convolution and fully connected read the i16 row layout the AVX2 set
//! uses: the input patch is widened to i16 once per output pixel and
//! multiplied eight lanes at a time with `smlal`/`smlal2` against four
//! filter rows. Depthwise works across channels, eight at a time in i32.
//! The requantization is vector code too: `sqrdmulh` is gemmlowp's
//! SaturatingRoundingDoublingHighMul exactly, and the rounding shift is
//! corrected to round half away from zero as `RoundingDivideByPOT` does.

use std::arch::aarch64::*;

use crate::conv::{Conv2d, conv2d_scalar};
use crate::depthwise::{DepthwiseConv2d, depthwise_conv2d_scalar};
use crate::drive::{channels, rows};
use crate::error::KernelError;
use crate::fully_connected::{FullyConnected, fully_connected_scalar};
use crate::pack::{Packed, PackedRows};
use crate::quant::{Multipliers, Requant, Rounding};

pub fn supported() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

/// Widen `src` into `dst` as i16.
#[inline]
#[target_feature(enable = "neon")]
fn widen(src: &[i8], dst: &mut [i16]) {
    let n = src.len().min(dst.len());
    let mut i = 0;
    // SAFETY: every load and store stays below `n`.
    unsafe {
        while i + 16 <= n {
            let v = vld1q_s8(src.as_ptr().add(i));
            vst1q_s16(dst.as_mut_ptr().add(i), vmovl_s8(vget_low_s8(v)));
            vst1q_s16(dst.as_mut_ptr().add(i + 8), vmovl_high_s8(v));
            i += 16;
        }
    }
    for j in i..n {
        dst[j] = src[j] as i16;
    }
}

/// `a + x·w` over eight i16 lanes, into four i32 lanes.
#[inline]
#[target_feature(enable = "neon")]
fn mla8(a: int32x4_t, x: int16x8_t, w: int16x8_t) -> int32x4_t {
    vmlal_high_s16(vmlal_s16(a, vget_low_s16(x), vget_low_s16(w)), x, w)
}

/// Dot products of `col` (length `rows.kp`, i16) with every row of `rows`.
#[target_feature(enable = "neon")]
fn dot_rows(col: &[i16], rows: &PackedRows, acc: &mut [i32]) {
    let kp = rows.kp;
    assert!(col.len() >= kp && rows.data.len() >= rows.rows * kp && acc.len() >= rows.rows);
    let x = col.as_ptr();
    let mut r = 0;
    // SAFETY: rows are `kp` long and `kp` is a multiple of 16 (checked above
    // through the lengths), so every 8-lane load is in bounds.
    unsafe {
        while r + 4 <= rows.rows {
            let w = rows.data.as_ptr().add(r * kp);
            let (mut a0, mut a1, mut a2, mut a3) = (
                vdupq_n_s32(0),
                vdupq_n_s32(0),
                vdupq_n_s32(0),
                vdupq_n_s32(0),
            );
            let mut t = 0;
            while t < kp {
                let xv = vld1q_s16(x.add(t));
                a0 = mla8(a0, xv, vld1q_s16(w.add(t)));
                a1 = mla8(a1, xv, vld1q_s16(w.add(kp + t)));
                a2 = mla8(a2, xv, vld1q_s16(w.add(2 * kp + t)));
                a3 = mla8(a3, xv, vld1q_s16(w.add(3 * kp + t)));
                t += 8;
            }
            acc[r] = vaddvq_s32(a0);
            acc[r + 1] = vaddvq_s32(a1);
            acc[r + 2] = vaddvq_s32(a2);
            acc[r + 3] = vaddvq_s32(a3);
            r += 4;
        }
        while r < rows.rows {
            let w = rows.data.as_ptr().add(r * kp);
            let mut a = vdupq_n_s32(0);
            let mut t = 0;
            while t < kp {
                a = mla8(a, vld1q_s16(x.add(t)), vld1q_s16(w.add(t)));
                t += 8;
            }
            acc[r] = vaddvq_s32(a);
            r += 1;
        }
    }
}

/// gemmlowp's `RoundingDivideByPOT` for `0 <= right <= 31` per lane: a
/// rounding shift (`srshl` by −right rounds half up), first nudged down by
/// one for negative values so that halves round away from zero.
#[inline]
#[target_feature(enable = "neon")]
fn rounding_divide_by_pot(x: int32x4_t, right: int32x4_t) -> int32x4_t {
    let neg_right = vnegq_s32(right);
    // x < 0 and right > 0: subtract 1 (saturating; x = i32::MIN then rounds the same).
    let fix = vandq_s32(
        vshrq_n_s32::<31>(x),
        vreinterpretq_s32_u32(vcgtq_s32(right, vdupq_n_s32(0))),
    );
    vrshlq_s32(vqaddq_s32(x, fix), neg_right)
}

/// `MultiplyByQuantizedMultiplier` for four lanes.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn requant4(
    x: int32x4_t,
    m: int32x4_t,
    shift: int32x4_t,
    rounding: Rounding,
) -> int32x4_t {
    let zero = vdupq_n_s32(0);
    match rounding {
        Rounding::Double => {
            let left = vmaxq_s32(shift, zero);
            let right = vmaxq_s32(vnegq_s32(shift), zero);
            // The reference multiplies by 2^left without saturating (wrapping).
            let shifted = vshlq_s32(x, left);
            rounding_divide_by_pot(vqrdmulhq_s32(shifted, m), right)
        }
        Rounding::Single => {
            // (x·m + 2^(total−1)) >> total with total = 31 − shift, in 64 bits.
            let total = vsubq_s32(vdupq_n_s32(31), shift);
            let lo = vmull_s32(vget_low_s32(x), vget_low_s32(m));
            let hi = vmull_high_s32(x, m);
            let neg_total = vnegq_s64(vmovl_s32(vget_low_s32(total)));
            let neg_total_hi = vnegq_s64(vmovl_high_s32(total));
            // srshl rounds half up, as `(p + 2^(t−1)) >> t` does.
            let lo = vrshlq_s64(lo, neg_total);
            let hi = vrshlq_s64(hi, neg_total_hi);
            vcombine_s32(vmovn_s64(lo), vmovn_s64(hi))
        }
        Rounding::Nearest => {
            // onnxruntime's single-precision requantization; the scale's
            // bits arrive in `m` (`Requant::nearest`). `fcvtns` rounds half
            // to even, as onnxruntime's `vcvtnq_s32_f32` does.
            let bound = vdupq_n_f32((1u32 << 30) as f32);
            let v = vmulq_f32(vcvtq_f32_s32(x), vreinterpretq_f32_s32(m));
            let v = vminq_f32(vmaxq_f32(v, vnegq_f32(bound)), bound);
            vcvtnq_s32_f32(v)
        }
    }
}

/// `clamp(requant(acc + bias) + offset)` for one row of channels.
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn epilogue_row(
    acc: &[i32],
    bias: &[i32],
    q: &Multipliers,
    rounding: Rounding,
    offset: i32,
    min: i32,
    max: i32,
    out: &mut [i8],
) {
    let n = out.len();
    assert!(acc.len() >= n && bias.len() >= n && q.multiplier.len() >= n && q.shift.len() >= n);
    let mut c = 0;
    // SAFETY: every load and store stays below `n` (checked above).
    unsafe {
        let (off, lo, hi) = (vdupq_n_s32(offset), vdupq_n_s32(min), vdupq_n_s32(max));
        while c + 4 <= n {
            let x = vaddq_s32(
                vld1q_s32(acc.as_ptr().add(c)),
                vld1q_s32(bias.as_ptr().add(c)),
            );
            let v = requant4(
                x,
                vld1q_s32(q.multiplier.as_ptr().add(c)),
                vld1q_s32(q.shift.as_ptr().add(c)),
                rounding,
            );
            let v = vminq_s32(vmaxq_s32(vaddq_s32(v, off), lo), hi);
            let b = vmovn_s16(vcombine_s16(vmovn_s32(v), vdup_n_s16(0)));
            let mut tmp = [0i8; 8];
            vst1_s8(tmp.as_mut_ptr(), b);
            out[c..c + 4].copy_from_slice(&tmp[..4]);
            c += 4;
        }
    }
    for c in c..n {
        let r = Requant {
            multiplier: q.multiplier[c],
            shift: q.shift[c],
        };
        let v = r
            .apply(acc[c].wrapping_add(bias[c]), rounding)
            .wrapping_add(offset);
        out[c] = v.clamp(min, max) as i8;
    }
}

macro_rules! epilogue {
    ($k:expr, $acc:expr, $out:expr) => {
        epilogue_row(
            $acc,
            &$k.bias_folded,
            &$k.multipliers,
            $k.rounding,
            $k.output_offset,
            $k.act_min,
            $k.act_max,
            $out,
        )
    };
}

/// `pixels` rows of accumulators `stride` apart, requantized into `out`.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn epilogue_rows<K: HasEpilogue>(
    k: &K,
    acc: &[i32],
    stride: usize,
    out: &mut [i8],
    pixels: usize,
) {
    let c = out.len() / pixels.max(1);
    for (p, o) in out.chunks_exact_mut(c).enumerate() {
        let (bias, q, rounding, offset, min, max) = k.epilogue();
        epilogue_row(
            &acc[p * stride..p * stride + c],
            bias,
            q,
            rounding,
            offset,
            min,
            max,
            o,
        );
    }
}

/// The requantization parameters of a conv, depthwise or fully connected
/// operator (they share the field names).
pub(crate) trait HasEpilogue {
    fn epilogue(&self) -> (&[i32], &Multipliers, Rounding, i32, i32, i32);
}

macro_rules! has_epilogue {
    ($($t:ty),*) => {$(
        impl HasEpilogue for $t {
            fn epilogue(&self) -> (&[i32], &Multipliers, Rounding, i32, i32, i32) {
                (&self.bias_folded, &self.multipliers, self.rounding, self.output_offset, self.act_min, self.act_max)
            }
        }
    )*};
}
has_epilogue!(Conv2d, DepthwiseConv2d, FullyConnected);

/// This set's pieces for the i16-row driver.
// SAFETY (all four closures): only built after NEON support was checked.
// One pixel at a time (`P = 1`): `dot_p` is `dot`, and the epilogue meets
// one pixel.
macro_rules! micro {
    ($k:expr) => {
        rows::Micro::<1, _, _, _, _> {
            widen: |x: &[i8], d: &mut [i16]| unsafe { widen(x, d) },
            dot: |col: &[i16], rows: &PackedRows, acc: &mut [i32]| unsafe {
                dot_rows(col, rows, acc)
            },
            dot_p: |col: &[i16], rows: &PackedRows, acc: &mut [i32]| unsafe {
                dot_rows(col, rows, acc)
            },
            epilogue: |acc: &[i32], out: &mut [i8], _| unsafe { epilogue!($k, acc, out) },
        }
    };
}

pub fn conv2d(k: &Conv2d, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    let Some(Packed::I16(packed)) = k.packed.as_deref() else {
        return conv2d_scalar(k, input, output);
    };
    if !supported() {
        return conv2d_scalar(k, input, output);
    }
    rows::conv2d(k, packed, input, output, micro!(k))
}

pub fn fully_connected(
    k: &FullyConnected,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    let Some(Packed::I16(packed)) = &k.packed else {
        return fully_connected_scalar(k, input, output);
    };
    if !supported() {
        return fully_connected_scalar(k, input, output);
    }
    rows::fully_connected(k, packed, input, output, micro!(k))
}

/// One output pixel of a depthwise conv across all channels.
#[target_feature(enable = "neon")]
fn depthwise_pixel(
    src: &[i8],
    corner: usize,
    taps: &[(usize, usize)],
    filter: &[i32],
    c: usize,
    acc: &mut [i32],
) {
    channels::check_pixel(src, corner, taps, filter, c, acc);
    let mut ch = 0;
    // SAFETY: every tap's channels lie inside `src` (checked above).
    unsafe {
        let base = src.as_ptr().add(corner);
        while ch + 8 <= c {
            let (mut lo, mut hi) = (vdupq_n_s32(0), vdupq_n_s32(0));
            for &(tap, off) in taps {
                let x = vmovl_s8(vld1_s8(base.add(off + ch)));
                let f = filter.as_ptr().add(tap * c + ch);
                lo = vmlaq_s32(lo, vmovl_s16(vget_low_s16(x)), vld1q_s32(f));
                hi = vmlaq_s32(hi, vmovl_high_s16(x), vld1q_s32(f.add(4)));
            }
            vst1q_s32(acc.as_mut_ptr().add(ch), lo);
            vst1q_s32(acc.as_mut_ptr().add(ch + 4), hi);
            ch += 8;
        }
    }
    channels::pixel_tail(src, corner, taps, filter, c, ch, acc);
}

pub fn depthwise_conv2d(
    k: &DepthwiseConv2d,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    if !supported() {
        return depthwise_conv2d_scalar(k, input, output);
    }
    // SAFETY (both closures): NEON was checked above.
    channels::depthwise_conv2d(
        k,
        input,
        output,
        channels::Micro {
            row: channels::by_pixel(|src, corner, taps, filter, c, acc| unsafe {
                depthwise_pixel(src, corner, taps, filter, c, acc)
            }),
            epilogue: |acc, stride, out, pixels| unsafe {
                epilogue_rows(k, acc, stride, out, pixels)
            },
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::checks;
    use proptest::prelude::*;

    /// These tests fail, rather than pass without testing, on a CPU without
    /// the set; `cargo xtask test` leaves them out there and says so.
    const UNSUPPORTED: &str = "this CPU cannot run the neon kernel set";

    proptest! {
        #[test]
        fn vector_requant_matches_scalar(xs in proptest::collection::vec(any::<i32>(), 1..70), real in (-7.0f64..0.47).prop_map(|e| 10f64.powf(e)), uniform in any::<bool>(), bias in -100_000i32..100_000, rounding in checks::roundings(), off in -128i32..128, lo in prop_oneof![Just(-128), -128i32..0]) {
            prop_assert!(supported(), "{}", UNSUPPORTED);
            checks::random(&|a, b, m, r, o, lo, hi, out| unsafe { epilogue_row(a, b, m, r, o, lo, hi, out) }, &xs, real, uniform, bias, rounding, off, lo)?;
        }

        #[test]
        fn ties_round_as_the_reference(t in -120i32..120, k in 1i32..12, rounding in checks::roundings(), above in any::<bool>()) {
            prop_assert!(supported(), "{}", UNSUPPORTED);
            checks::tie(&|a, b, m, r, o, lo, hi, out| unsafe { epilogue_row(a, b, m, r, o, lo, hi, out) }, t, k, rounding, above)?;
        }

        #[test]
        fn rounding_shift_matches_gemmlowp(x in any::<i32>(), right in 0i32..=31) {
            let mut out = [0i32; 4];
            // SAFETY: NEON is part of every aarch64 target.
            unsafe { vst1q_s32(out.as_mut_ptr(), rounding_divide_by_pot(vdupq_n_s32(x), vdupq_n_s32(right))) };
            prop_assert_eq!(out[0], crate::quant::rounding_divide_by_pot(x, right));
        }
    }
}
