//! Requantization of sixteen int32 accumulators at a time (AVX-512),
//! bit-exact with [`crate::quant::Requant::apply`] for both roundings.
//! AVX-512 has the 64-bit arithmetic shifts AVX2 lacks and narrows to int8
//! in one instruction, so this is about a third of the AVX2 work per value.

use std::arch::x86_64::*;

use crate::quant::Rounding;
#[cfg(test)]
use crate::quant::{Multipliers, Requant};
use crate::x86::requant::Epilogue;

/// 64-bit products of the even and the odd 32-bit lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn products(x: __m512i, m: __m512i) -> (__m512i, __m512i) {
    (
        _mm512_mul_epi32(x, m),
        _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), _mm512_srli_epi64::<32>(m)),
    )
}

/// Low 32 bits of each 64-bit lane of `even` and `odd`, interleaved back.
#[inline]
#[target_feature(enable = "avx512f")]
fn join(even: __m512i, odd: __m512i) -> __m512i {
    _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64::<32>(odd))
}

/// `((p + 2^(t−1)) >> t)` per 64-bit lane.
#[inline]
#[target_feature(enable = "avx512f")]
fn round_shift(p: __m512i, t: __m512i) -> __m512i {
    let one = _mm512_set1_epi64(1);
    _mm512_srav_epi64(
        _mm512_add_epi64(p, _mm512_sllv_epi64(one, _mm512_sub_epi64(t, one))),
        t,
    )
}

/// Single rounding: `((x·m + 2^(30−s)) >> (31−s))`.
#[inline]
#[target_feature(enable = "avx512f")]
fn single(x: __m512i, m: __m512i, s: __m512i) -> __m512i {
    let c31 = _mm512_set1_epi64(31);
    let (pe, po) = products(x, m);
    // Even lanes' shifts sit in the low halves of the 64-bit lanes, odd in the high.
    let se = _mm512_srai_epi64::<32>(_mm512_slli_epi64::<32>(s));
    let so = _mm512_srai_epi64::<32>(s);
    join(
        round_shift(pe, _mm512_sub_epi64(c31, se)),
        round_shift(po, _mm512_sub_epi64(c31, so)),
    )
}

/// gemmlowp's doubling high half: add 2^30 (p ≥ 0) or 1 − 2^30, then divide
/// by 2^31 truncating toward zero.
#[inline]
#[target_feature(enable = "avx512f")]
fn high_mul(p: __m512i) -> __m512i {
    let neg = _mm512_srai_epi64::<63>(p);
    let nudge = _mm512_add_epi64(
        _mm512_set1_epi64(1 << 30),
        _mm512_and_si512(neg, _mm512_set1_epi64(1 - (1i64 << 31))),
    );
    let v = _mm512_add_epi64(p, nudge);
    let toward_zero = _mm512_and_si512(
        _mm512_srai_epi64::<63>(v),
        _mm512_set1_epi64((1i64 << 31) - 1),
    );
    _mm512_srai_epi64::<31>(_mm512_add_epi64(v, toward_zero))
}

/// Double rounding: `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x·2^l, m), r)`.
#[inline]
#[target_feature(enable = "avx512f")]
fn double(x: __m512i, m: __m512i, s: __m512i) -> __m512i {
    let zero = _mm512_setzero_si512();
    let left = _mm512_max_epi32(s, zero);
    let right = _mm512_max_epi32(_mm512_sub_epi32(zero, s), zero);
    // The only saturating case (a = m = i32::MIN) cannot occur: m ≥ 0.
    let (pe, po) = products(_mm512_sllv_epi32(x, left), m);
    let r = join(high_mul(pe), high_mul(po));
    let one = _mm512_set1_epi32(1);
    let mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one);
    let rem = _mm512_and_si512(r, mask);
    let negative = _mm512_srai_epi32::<31>(r);
    let thr = _mm512_sub_epi32(_mm512_srli_epi32::<1>(mask), negative);
    let up = _mm512_cmpgt_epi32_mask(rem, thr);
    _mm512_mask_add_epi32(
        _mm512_srav_epi32(r, right),
        up,
        _mm512_srav_epi32(r, right),
        one,
    )
}

impl Epilogue<'_> {
    /// [`Epilogue::row`] sixteen lanes at a time.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VL.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn row512(&self, acc: &[i32], out: &mut [i8]) {
        unsafe { self.rows512(acc, out.len(), out, 1) }
    }

    /// `pixels` rows at once: row `p` reads `acc[p·acc_stride..]` and writes
    /// the `out.len() / pixels` channels of pixel `p`. One call per tile of
    /// pixels rather than per pixel: the requantization is a long dependency
    /// chain, and only independent rows in one loop let the CPU overlap it.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VL.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn rows512(&self, acc: &[i32], acc_stride: usize, out: &mut [i8], pixels: usize) {
        let c = out.len() / pixels.max(1);
        let (bias, q) = (self.bias, self.multipliers);
        assert!(bias.len() >= c && q.multiplier.len() >= c && q.shift.len() >= c);
        assert!(pixels == 0 || acc.len() >= (pixels - 1) * acc_stride + c);
        let (vo, vmin, vmax) = (
            _mm512_set1_epi32(self.offset),
            _mm512_set1_epi32(self.min),
            _mm512_set1_epi32(self.max),
        );
        // SAFETY: every lane loaded or stored is inside the slices (checked
        // above): whole blocks of 16, then the rest under a mask.
        unsafe {
            let mut i = 0;
            while i < c {
                let lanes = (c - i).min(16);
                let k: __mmask16 = if lanes == 16 { !0 } else { (1u16 << lanes) - 1 };
                let ld = |p: *const i32| _mm512_maskz_loadu_epi32(k, p.add(i));
                let b = ld(bias.as_ptr());
                let (vm, vs) = (ld(q.multiplier.as_ptr()), ld(q.shift.as_ptr()));
                for p in 0..pixels {
                    let x = _mm512_add_epi32(ld(acc.as_ptr().add(p * acc_stride)), b);
                    let r = match self.rounding {
                        Rounding::Single => single(x, vm, vs),
                        Rounding::Double => double(x, vm, vs),
                    };
                    let y = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(r, vo), vmin), vmax);
                    // In int8 range after the clamp, so the narrowing is exact. It
                    // narrows in a register: Zen 4 microcodes `vpmovdb` to memory.
                    let bytes = _mm512_cvtepi32_epi8(y);
                    let dst = out.as_mut_ptr().add(p * c + i);
                    if lanes == 16 {
                        _mm_storeu_si128(dst as *mut __m128i, bytes);
                    } else {
                        _mm_mask_storeu_epi8(dst, k, bytes);
                    }
                }
                i += lanes;
            }
        }
    }
}

/// For the property test: the row, as a plain function.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
unsafe fn row(
    acc: &[i32],
    bias: &[i32],
    m: &Multipliers,
    rounding: Rounding,
    offset: i32,
    min: i32,
    max: i32,
    out: &mut [i8],
) {
    let e = Epilogue {
        bias,
        multipliers: m,
        rounding,
        offset,
        min,
        max,
    };
    unsafe { e.row512(acc, out) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::checks;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn vector_requant_matches_scalar(xs in proptest::collection::vec(any::<i32>(), 1..70), real in 1e-7f64..3.0, bias in -100_000i32..100_000, double in any::<bool>(), off in -128i32..128, lo in -128i32..0) {
            if crate::x86::avx512::supported() {
                checks::random(&|a, b, m, r, o, lo, hi, out| unsafe { row(a, b, m, r, o, lo, hi, out) }, &xs, real, bias, double, off, lo)?;
            }
        }

        #[test]
        fn ties_round_as_the_reference(t in -120i32..120, k in 1i32..12, double in any::<bool>(), above in any::<bool>()) {
            if crate::x86::avx512::supported() {
                checks::tie(&|a, b, m, r, o, lo, hi, out| unsafe { row(a, b, m, r, o, lo, hi, out) }, t, k, double, above)?;
            }
        }

        #[test]
        fn tiles_of_pixels_match_scalar(c in 1usize..40, pixels in 1usize..9, pad in 0usize..20, seed in any::<i32>(), double in any::<bool>()) {
            if !crate::x86::avx512::supported() {
                return Ok(());
            }
            let rounding = if double { Rounding::Double } else { Rounding::Single };
            let stride = c + pad;
            let acc: Vec<i32> = (0..pixels * stride).map(|i| (i as i32).wrapping_mul(seed) >> 9).collect();
            let rq: Vec<Requant> = (0..c).map(|i| Requant::from_real(0.0003 * (1.0 + i as f64), rounding)).collect();
            let m = Multipliers::new(&rq);
            let bias: Vec<i32> = (0..c as i32).map(|i| i * 77 - 500).collect();
            let e = Epilogue { bias: &bias, multipliers: &m, rounding, offset: -3, min: -128, max: 127 };
            let mut got = vec![0i8; pixels * c];
            // SAFETY: AVX-512 was checked above.
            unsafe { e.rows512(&acc, stride, &mut got, pixels) };
            for p in 0..pixels {
                for j in 0..c {
                    let want = (rq[j].apply(acc[p * stride + j].wrapping_add(bias[j]), rounding) - 3).clamp(-128, 127) as i8;
                    prop_assert_eq!(got[p * c + j], want, "pixel {} channel {}", p, j);
                }
            }
        }

        #[test]
        fn extreme_accumulators_match_scalar(x in any::<i32>(), real in 1e-9f64..0.999, double in any::<bool>()) {
            if !crate::x86::avx512::supported() {
                return Ok(());
            }
            // Multipliers below one never shift left, so any i32 is defined.
            let rounding = if double { Rounding::Double } else { Rounding::Single };
            let rq = Requant::from_real(real, rounding);
            let m = Multipliers::new(&[rq; 16]);
            let mut got = [0i8; 16];
            // SAFETY: AVX-512 was checked above.
            unsafe { row(&[x; 16], &[0; 16], &m, rounding, 0, -128, 127, &mut got) };
            let want = rq.apply(x, rounding).clamp(-128, 127) as i8;
            prop_assert_eq!(got, [want; 16]);
        }
    }
}
