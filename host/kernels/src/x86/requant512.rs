//! Requantization of sixteen int32 accumulators at a time (AVX-512),
//! bit-exact with [`crate::quant::Requant::apply`] for all three roundings.
//! AVX-512 has the 64-bit arithmetic shifts AVX2 lacks and narrows to int8
//! in one instruction, so this is about a third of the AVX2 work per value.

use std::arch::x86_64::*;

#[cfg(test)]
use crate::quant::Requant;
use crate::quant::{Multipliers, Rounding};
use crate::x86::requant::Epilogue;

/// Sign-extended 64-bit copies of the even and of the odd 32-bit lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn split(v: __m512i) -> (__m512i, __m512i) {
    (
        _mm512_srai_epi64::<32>(_mm512_slli_epi64::<32>(v)),
        _mm512_srai_epi64::<32>(v),
    )
}

/// Low 32 bits of each 64-bit lane of `even` and `odd`, interleaved back.
#[inline]
#[target_feature(enable = "avx512f")]
fn join(even: __m512i, odd: __m512i) -> __m512i {
    _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64::<32>(odd))
}

/// What sixteen channels' multipliers and shifts turn into, worked out once
/// per block of channels and reused for every pixel, so the per-pixel work
/// is only what depends on the accumulator.
#[derive(Clone, Copy)]
struct Lanes {
    /// The multipliers of the even lanes (in the low halves of the 64-bit
    /// lanes, where `vpmuldq` reads them) and of the odd lanes.
    m: (__m512i, __m512i),
    /// Double rounding: the left shift, per 32-bit lane.
    left: __m512i,
    /// Single rounding, and double rounding in one step
    /// ([`Multipliers::DOUBLE_BLOCK`]), per 64-bit lane, even then odd: the
    /// value added before the final shift, and the shift.
    add: (__m512i, __m512i),
    shift: (__m512i, __m512i),
    /// Double rounding in one step: the product below which the high half
    /// is negative, even then odd.
    below: (__m512i, __m512i),
    /// Double rounding, per 32-bit lane: the right shift `r`, `2^r − 1`
    /// and half of that.
    right: __m512i,
    mask: __m512i,
    half: __m512i,
}

impl Lanes {
    /// Single rounding: `(x·m + 2^(30−s)) >> (31−s)`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn single(m: __m512i, s: __m512i) -> Lanes {
        let one = _mm512_set1_epi64(1);
        let t = _mm512_sub_epi32(_mm512_set1_epi32(31), s);
        let (te, to) = split(t);
        let nudge = |t| _mm512_sllv_epi64(one, _mm512_sub_epi64(t, one));
        Lanes {
            m: (m, _mm512_srli_epi64::<32>(m)),
            left: _mm512_setzero_si512(),
            add: (nudge(te), nudge(to)),
            shift: (te, to),
            below: (_mm512_setzero_si512(), _mm512_setzero_si512()),
            right: _mm512_setzero_si512(),
            mask: _mm512_setzero_si512(),
            half: _mm512_setzero_si512(),
        }
    }

    /// Double rounding, `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x·2^l, m), r)`:
    /// the high half in 64-bit lanes, the division in 32-bit ones (see
    /// [`Lanes::apply`]).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn double(m: __m512i, s: __m512i) -> Lanes {
        let zero = _mm512_setzero_si512();
        let right = _mm512_max_epi32(_mm512_sub_epi32(zero, s), zero);
        let mask = _mm512_sub_epi32(
            _mm512_sllv_epi32(_mm512_set1_epi32(1), right),
            _mm512_set1_epi32(1),
        );
        Lanes {
            m: (m, _mm512_srli_epi64::<32>(m)),
            left: _mm512_max_epi32(s, zero),
            add: (zero, zero),
            shift: (zero, zero),
            below: (zero, zero),
            right,
            mask,
            half: _mm512_srli_epi32::<1>(mask),
        }
    }

    /// Double rounding without a left shift, in one 64-bit step per lane,
    /// from a block's constants `k` (addends, thresholds, shifts; even then
    /// odd, as [`Multipliers::DOUBLE_BLOCK`] lays them out).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn one_step(m: __m512i, k: [__m512i; 6]) -> Lanes {
        let zero = _mm512_setzero_si512();
        Lanes {
            m: (m, _mm512_srli_epi64::<32>(m)),
            left: zero,
            add: (k[0], k[1]),
            shift: (k[4], k[5]),
            below: (k[2], k[3]),
            right: zero,
            mask: zero,
            half: zero,
        }
    }

    /// [`Lanes::one_step`]'s lanes of `x`: for each 64-bit product `p`,
    /// `(p + add − 2^31·[p < below]) >> shift`, the low halves interleaved
    /// back (lane 2i from the even products' lane i, 2i + 1 from the odd).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn apply_one_step(&self, x: __m512i) -> __m512i {
        let pe = _mm512_mul_epi32(x, self.m.0);
        let po = _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), self.m.1);
        let even = one_step_lane(pe, self.add.0, self.below.0, self.shift.0);
        let odd = one_step_lane(po, self.add.1, self.below.1, self.shift.1);
        let pick = _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
        _mm512_permutex2var_epi32(even, pick, odd)
    }

    /// onnxruntime's single-precision rounding: the scale's bits arrive
    /// in the multiplier lanes ([`crate::quant::Requant::nearest`]).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn nearest(m: __m512i) -> Lanes {
        let zero = _mm512_setzero_si512();
        Lanes {
            m: (m, zero),
            left: zero,
            add: (zero, zero),
            shift: (zero, zero),
            below: (zero, zero),
            right: zero,
            mask: zero,
            half: zero,
        }
    }

    /// [`Lanes::nearest`]'s lanes of `x`: `cvtps_epi32` rounds half to
    /// even under the default MXCSR, which Rust code never changes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn apply_nearest(&self, x: __m512i) -> __m512i {
        let bound = _mm512_set1_ps((1u32 << 30) as f32);
        let v = _mm512_mul_ps(_mm512_cvtepi32_ps(x), _mm512_castsi512_ps(self.m.0));
        let v = _mm512_min_ps(
            _mm512_max_ps(v, _mm512_sub_ps(_mm512_setzero_ps(), bound)),
            bound,
        );
        _mm512_cvtps_epi32(v)
    }

    /// One 64-bit lane of single rounding, from the product `p`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn single_lane(p: __m512i, add: __m512i, shift: __m512i) -> __m512i {
        _mm512_srav_epi64(_mm512_add_epi64(p, add), shift)
    }

    /// Double rounding's two steps, from the products of the even lanes
    /// `pe` and of the odd ones `po`.
    ///
    /// gemmlowp's doubling high half adds 2^30 (p ≥ 0) or 1 − 2^30 and
    /// divides by 2^31 truncating toward zero; for either sign that is
    /// exactly `h = (p + 2^30) >> 31` with a flooring shift, and `h` fits 32
    /// bits (m ≥ 0), so only bits 31..63 of each sum are needed: a shift
    /// right for the even lanes, left for the odd, one blend. The division
    /// by 2^r then runs on sixteen 32-bit lanes at once, as gemmlowp
    /// writes it: `(h >> r) + [h mod 2^r > (2^r − 1) / 2 + [h < 0]]`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn double_lanes(&self, pe: __m512i, po: __m512i) -> __m512i {
        let nudge = _mm512_set1_epi64(1 << 30);
        let h = _mm512_mask_blend_epi32(
            0xAAAA,
            _mm512_srli_epi64::<31>(_mm512_add_epi64(pe, nudge)),
            _mm512_slli_epi64::<1>(_mm512_add_epi64(po, nudge)),
        );
        let q = _mm512_srav_epi32(h, self.right);
        let threshold = _mm512_add_epi32(self.half, _mm512_srli_epi32::<31>(h));
        let up = _mm512_cmpgt_epi32_mask(_mm512_and_si512(h, self.mask), threshold);
        _mm512_mask_sub_epi32(q, up, q, _mm512_set1_epi32(-1))
    }

    /// The requantized lanes of `x`; `DOUBLE` picks the rounding, so each
    /// loop is compiled for one, and `LEFT` says whether any lane shifts
    /// left (multipliers above one), which most layers' never do.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn apply<const DOUBLE: bool, const LEFT: bool>(&self, x: __m512i) -> __m512i {
        {
            // The only saturating case of the high half (a = m = i32::MIN)
            // cannot occur: m ≥ 0. The left shift wraps, as in the reference.
            let x = if DOUBLE && LEFT {
                _mm512_sllv_epi32(x, self.left)
            } else {
                x
            };
            let pe = _mm512_mul_epi32(x, self.m.0);
            let po = _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), self.m.1);
            if DOUBLE {
                self.double_lanes(pe, po)
            } else {
                join(
                    Lanes::single_lane(pe, self.add.0, self.shift.0),
                    Lanes::single_lane(po, self.add.1, self.shift.1),
                )
            }
        }
    }
}

impl Epilogue<'_> {
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
        // Eight channels fill half a vector; pairs of pixels fill it whole
        // (MobileNet's first layers: a sixth of VWW's requantizations).
        let paired = if c == 8 { pixels / 2 * 2 } else { 0 };
        if paired > 0 {
            // SAFETY: pixels below `paired` are inside `acc` and `out` (checked above).
            unsafe { self.pairs_of_eight(acc, acc_stride, out, paired) };
        }
        let (acc, out, pixels) = match paired {
            0 => (acc, out, pixels),
            n => (&acc[n * acc_stride..], &mut out[n * c..], pixels - n),
        };
        // SAFETY: every lane loaded or stored is inside the slices (checked
        // above): whole blocks of 16, then the rest under a mask.
        unsafe {
            for i in (0..c).step_by(16) {
                let block = self.block512(i, c);
                for p in 0..pixels {
                    let x = block.load(acc.as_ptr().add(p * acc_stride + i));
                    block.store(x, out.as_mut_ptr().add(p * c + i));
                }
            }
        }
    }
}

impl Epilogue<'_> {
    /// [`Epilogue::rows512`] for eight channels and an even number of
    /// `pixels`: two pixels per vector.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VL; `acc` and `out` must hold
    /// `pixels` rows of 8 (`rows512` checks this).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn pairs_of_eight(&self, acc: &[i32], acc_stride: usize, out: &mut [i8], pixels: usize) {
        let (bias, q) = (self.bias, self.multipliers);
        let (vo, vmin, vmax) = (
            _mm512_set1_epi32(self.offset),
            _mm512_set1_epi32(self.min),
            _mm512_set1_epi32(self.max),
        );
        // SAFETY: as the caller promises; each pair reads 8 values of two
        // rows, and the constants of the block of the first 16 channels.
        // Loads and loops are written out, not closures: see `one_step_lane`.
        unsafe {
            let (vm, vs, b) = (
                _mm512_broadcast_i32x8(_mm256_loadu_si256(q.multiplier.as_ptr() as *const __m256i)),
                _mm512_broadcast_i32x8(_mm256_loadu_si256(q.shift.as_ptr() as *const __m256i)),
                _mm512_broadcast_i32x8(_mm256_loadu_si256(bias.as_ptr() as *const __m256i)),
            );
            let left = _mm512_cmpgt_epi32_mask(vs, _mm512_setzero_si512()) != 0;
            let one_step = self.rounding == Rounding::Double
                && !left
                && q.double.len() >= Multipliers::DOUBLE_BLOCK;
            let lanes = match self.rounding {
                Rounding::Single => Lanes::single(vm, vs),
                Rounding::Double if one_step => {
                    // Channels 0, 2, 4, 6 (then 1, 3, 5, 7) lead each group
                    // of eight constants; both pixels of a pair take them.
                    let mut k = [_mm512_setzero_si512(); 6];
                    for (i, k) in k.iter_mut().enumerate() {
                        let p = q.double.as_ptr().add(8 * i) as *const __m256i;
                        *k = _mm512_broadcast_i64x4(_mm256_loadu_si256(p));
                    }
                    Lanes::one_step(vm, k)
                }
                Rounding::Double => Lanes::double(vm, vs),
                Rounding::Nearest => Lanes::nearest(vm),
            };
            for p in (0..pixels).step_by(2) {
                let lo = _mm256_loadu_si256(acc.as_ptr().add(p * acc_stride) as *const __m256i);
                let hi =
                    _mm256_loadu_si256(acc.as_ptr().add((p + 1) * acc_stride) as *const __m256i);
                let x = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
                let x = _mm512_add_epi32(x, b);
                let r = match (self.rounding, one_step) {
                    (Rounding::Single, _) => lanes.apply::<false, false>(x),
                    (Rounding::Double, true) => lanes.apply_one_step(x),
                    (Rounding::Double, false) => lanes.apply::<true, true>(x),
                    (Rounding::Nearest, _) => lanes.apply_nearest(x),
                };
                let y = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(r, vo), vmin), vmax);
                let dst = out.as_mut_ptr().add(p * 8);
                _mm_storeu_si128(dst as *mut __m128i, _mm512_cvtepi32_epi8(y));
            }
        }
    }
}

/// The requantization of one block of up to sixteen channels, set up once
/// for accumulators that are still in registers (the fused GEMM epilogue).
#[derive(Clone, Copy)]
pub(crate) struct Block {
    lanes: Lanes,
    /// Double rounding in one 64-bit step ([`Lanes::one_step`]): no lane
    /// shifts left.
    one_step: bool,
    bias: __m512i,
    mask: __mmask16,
    full: bool,
    rounding: Rounding,
    left: bool,
    offset: __m512i,
    /// Whether the activation's range is narrower than int8's; if not,
    /// the saturating narrowing is the clamp.
    clamp: bool,
    min: __m512i,
    max: __m512i,
}

impl Epilogue<'_> {
    /// Channels `first..first + 16` (fewer at the end of `c`).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VL.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(crate) unsafe fn block512(&self, first: usize, c: usize) -> Block {
        let (bias, q) = (self.bias, self.multipliers);
        assert!(first < c && bias.len() >= c && q.multiplier.len() >= c && q.shift.len() >= c);
        let lanes = (c - first).min(16);
        let mask: __mmask16 = if lanes == 16 { !0 } else { (1u16 << lanes) - 1 };
        // SAFETY: the masked lanes lie below `c` (checked above).
        let ld = |p: *const i32| unsafe { _mm512_maskz_loadu_epi32(mask, p.add(first)) };
        let (vm, vs) = (ld(q.multiplier.as_ptr()), ld(q.shift.as_ptr()));
        let left = _mm512_cmpgt_epi32_mask(vs, _mm512_setzero_si512()) != 0;
        let at = first / 16 * Multipliers::DOUBLE_BLOCK;
        let one_step = self.rounding == Rounding::Double
            && !left
            && first.is_multiple_of(16)
            && q.double.len() >= at + Multipliers::DOUBLE_BLOCK;
        let l = match self.rounding {
            Rounding::Single => Lanes::single(vm, vs),
            Rounding::Double if one_step => {
                // SAFETY: the block's 48 values lie inside `q.double`
                // (checked). A loop, not a closure: see `one_step_lane`.
                let mut k = [_mm512_setzero_si512(); 6];
                for (i, k) in k.iter_mut().enumerate() {
                    *k = unsafe {
                        _mm512_loadu_si512(q.double.as_ptr().add(at + 8 * i) as *const _)
                    };
                }
                Lanes::one_step(vm, k)
            }
            Rounding::Double => Lanes::double(vm, vs),
            Rounding::Nearest => Lanes::nearest(vm),
        };
        Block {
            lanes: l,
            one_step,
            bias: ld(bias.as_ptr()),
            mask,
            full: lanes == 16,
            rounding: self.rounding,
            left,
            offset: _mm512_set1_epi32(self.offset),
            clamp: self.min > i8::MIN as i32 || self.max < i8::MAX as i32,
            min: _mm512_set1_epi32(self.min),
            max: _mm512_set1_epi32(self.max),
        }
    }
}

impl Block {
    /// The block's accumulators at `src` (its lanes only).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, and `src` must hold the block's lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn load(&self, src: *const i32) -> __m512i {
        // SAFETY: as the caller promises.
        unsafe { _mm512_maskz_loadu_epi32(self.mask, src) }
    }

    /// Requantizes `acc` and stores the block's channels at `dst`.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VL, and `dst` must have room
    /// for the block's channels.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(crate) unsafe fn store(&self, acc: __m512i, dst: *mut i8) {
        let x = _mm512_add_epi32(acc, self.bias);
        let r = match (self.rounding, self.left, self.one_step) {
            (Rounding::Double, false, true) => self.lanes.apply_one_step(x),
            (Rounding::Single, _, _) => self.lanes.apply::<false, false>(x),
            (Rounding::Double, false, false) => self.lanes.apply::<true, false>(x),
            (Rounding::Double, true, _) => self.lanes.apply::<true, true>(x),
            (Rounding::Nearest, _, _) => self.lanes.apply_nearest(x),
        };
        let y = _mm512_add_epi32(r, self.offset);
        // Clamped to the activation's range, or to int8's by the saturating
        // narrowing, which is the same when that is the range (no activation,
        // or ReLU at zero point −128, as most of these models' layers): two
        // instructions of about nineteen a vector. It narrows in a register:
        // Zen 4 microcodes `vpmovsdb` to memory.
        let bytes = if self.clamp {
            _mm512_cvtsepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(y, self.min), self.max))
        } else {
            _mm512_cvtsepi32_epi8(y)
        };
        // SAFETY: as the caller promises.
        unsafe {
            if self.full {
                _mm_storeu_si128(dst as *mut __m128i, bytes);
            } else {
                _mm_mask_storeu_epi8(dst, self.mask, bytes);
            }
        }
    }
}

/// One 64-bit lane of [`Lanes::apply_one_step`]. A function, not a
/// closure: closures do not take on the target features, and would not be
/// inlined.
#[inline]
#[target_feature(enable = "avx512f")]
fn one_step_lane(p: __m512i, add: __m512i, below: __m512i, shift: __m512i) -> __m512i {
    let u = _mm512_add_epi64(p, add);
    let k = _mm512_cmplt_epi64_mask(p, below);
    _mm512_srav_epi64(
        _mm512_mask_sub_epi64(u, k, u, _mm512_set1_epi64(1 << 31)),
        shift,
    )
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
    unsafe { e.rows512(acc, out.len(), out, 1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::checks;
    use proptest::prelude::*;

    /// These tests fail, rather than pass without testing, on a CPU without
    /// the set; `cargo xtask test` leaves them out there and says so.
    const UNSUPPORTED: &str = "this CPU cannot run the avx512 kernel set";

    proptest! {
        #[test]
        fn vector_requant_matches_scalar(xs in proptest::collection::vec(any::<i32>(), 1..70), real in (-7.0f64..0.47).prop_map(|e| 10f64.powf(e)), uniform in any::<bool>(), bias in -100_000i32..100_000, rounding in checks::roundings(), off in -128i32..128, lo in prop_oneof![Just(-128), -128i32..0]) {
            prop_assert!(crate::x86::avx512::supported(), "{}", UNSUPPORTED);
            checks::random(&|a, b, m, r, o, lo, hi, out| unsafe { row(a, b, m, r, o, lo, hi, out) }, &xs, real, uniform, bias, rounding, off, lo)?;
        }

        #[test]
        fn ties_round_as_the_reference(t in -120i32..120, k in 1i32..12, rounding in checks::roundings(), above in any::<bool>()) {
            prop_assert!(crate::x86::avx512::supported(), "{}", UNSUPPORTED);
            checks::tie(&|a, b, m, r, o, lo, hi, out| unsafe { row(a, b, m, r, o, lo, hi, out) }, t, k, rounding, above)?;
        }

        /// Half the cases have eight channels, which pair pixels.
        #[test]
        fn tiles_of_pixels_match_scalar(c in prop_oneof![Just(8usize), 1usize..40], pixels in 1usize..9, pad in 0usize..20, seed in any::<i32>(), rounding in checks::roundings()) {
            prop_assert!(crate::x86::avx512::supported(), "{}", UNSUPPORTED);
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
        fn extreme_accumulators_match_scalar(x in any::<i32>(), real in 1e-9f64..0.999, rounding in checks::roundings()) {
            prop_assert!(crate::x86::avx512::supported(), "{}", UNSUPPORTED);
            // Multipliers below one never shift left, so any i32 is defined.
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
