//! Requantization of eight int32 accumulators at a time (AVX2), bit-exact
//! with [`crate::quant::Requant::apply`] for all three roundings.
//!
//! AVX2 has no 64-bit arithmetic right shift, so it is built from the
//! logical one: `sra(v, n) = srl(v ^ s, n) ^ s` with `s` the sign mask.

use std::arch::x86_64::*;

use crate::quant::{Multipliers, Rounding};

#[inline]
#[target_feature(enable = "avx2")]
fn sra64(v: __m256i, n: __m256i) -> __m256i {
    let s = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
    _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(v, s), n), s)
}

/// Each odd i32 lane copied over the even lane below it, for
/// `_mm256_mul_epi32` on the odd channels. A shuffle rather than a 64-bit
/// shift: fed a shifted lane, LLVM rebuilt the signed multiply from three
/// unsigned ones.
#[inline]
#[target_feature(enable = "avx2")]
fn odd(v: __m256i) -> __m256i {
    _mm256_shuffle_epi32::<0b11_11_01_01>(v)
}

/// Low 32 bits of each 64-bit lane of `even` and `odd`, interleaved back.
#[inline]
#[target_feature(enable = "avx2")]
fn join(even: __m256i, odd: __m256i) -> __m256i {
    _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd))
}

/// `((x·m + 2^(30−s)) >> (31−s))` per lane, with what depends only on the
/// channels' multipliers and shifts worked out once.
#[derive(Clone, Copy)]
struct Single {
    m: __m256i,
    /// Even and odd channels' total shifts `31 − s`, and their rounding
    /// terms `2^(30−s)`, as 64-bit lanes.
    te: __m256i,
    to: __m256i,
    re: __m256i,
    ro: __m256i,
}

impl Single {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn new(m: __m256i, s: __m256i) -> Self {
        let (one, c31, c32) = (
            _mm256_set1_epi64x(1),
            _mm256_set1_epi64x(31),
            _mm256_set1_epi64x(32),
        );
        // Even channels' shifts sit in the low halves of the 64-bit lanes, odd in the high.
        let se = sra64(_mm256_slli_epi64::<32>(s), c32);
        let so = sra64(s, c32);
        let (te, to) = (_mm256_sub_epi64(c31, se), _mm256_sub_epi64(c31, so));
        Single {
            m,
            te,
            to,
            re: _mm256_sllv_epi64(one, _mm256_sub_epi64(te, one)),
            ro: _mm256_sllv_epi64(one, _mm256_sub_epi64(to, one)),
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn apply(&self, x: __m256i) -> __m256i {
        let (pe, po) = (
            _mm256_mul_epi32(x, self.m),
            _mm256_mul_epi32(odd(x), odd(self.m)),
        );
        join(
            sra64(_mm256_add_epi64(pe, self.re), self.te),
            sra64(_mm256_add_epi64(po, self.ro), self.to),
        )
    }
}

/// gemmlowp: `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x·2^l, m), r)`,
/// with the shifts and the rounding mask worked out once.
///
/// The doubling high half adds 2^30 (p ≥ 0) or 1 − 2^30 and divides by
/// 2^31 truncating toward zero; for either sign that is exactly
/// `(p + 2^30) >> 31` flooring, and as only the low 32 bits of that are
/// kept, a logical shift gives them: no 64-bit arithmetic shift (which
/// AVX2 lacks) and no sign-dependent nudge.
#[derive(Clone, Copy)]
struct Double {
    m: __m256i,
    /// The odd channels' multipliers in the low halves of 64-bit lanes ([`odd`]).
    m_odd: __m256i,
    left: __m256i,
    right: __m256i,
    /// `2^right − 1`, the remainder's mask, and half of it.
    mask: __m256i,
    half_mask: __m256i,
}

impl Double {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn new(m: __m256i, s: __m256i) -> Self {
        let zero = _mm256_setzero_si256();
        let right = _mm256_max_epi32(_mm256_sub_epi32(zero, s), zero);
        let one = _mm256_set1_epi32(1);
        let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
        Double {
            m,
            m_odd: odd(m),
            left: _mm256_max_epi32(s, zero),
            right,
            mask,
            half_mask: _mm256_srli_epi32::<1>(mask),
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn apply(&self, x: __m256i) -> __m256i {
        self.apply_shifted::<true>(x)
    }

    /// [`apply`](Self::apply); with `LEFT` false the lanes must have no
    /// left shift, and the shift (and its register) is left out.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn apply_shifted<const LEFT: bool>(&self, x: __m256i) -> __m256i {
        let zero = _mm256_setzero_si256();
        let a = if LEFT {
            _mm256_sllv_epi32(x, self.left)
        } else {
            x
        };
        let half = _mm256_set1_epi64x(1 << 30);
        // The only saturating case (a = m = i32::MIN) cannot occur: m ≥ 0.
        let he = _mm256_srli_epi64::<31>(_mm256_add_epi64(_mm256_mul_epi32(a, self.m), half));
        let ho =
            _mm256_srli_epi64::<31>(_mm256_add_epi64(_mm256_mul_epi32(odd(a), self.m_odd), half));
        let r = join(he, ho);
        let rem = _mm256_and_si256(r, self.mask);
        let thr = _mm256_sub_epi32(self.half_mask, _mm256_cmpgt_epi32(zero, r));
        _mm256_sub_epi32(
            _mm256_srav_epi32(r, self.right),
            _mm256_cmpgt_epi32(rem, thr),
        )
    }
}

/// Single rounding, and double rounding without a left shift, as the one
/// flooring shift `⌊y / 2^(31+r)⌋` of [`Multipliers::DOUBLE_BLOCK`], from
/// the tables that [`Multipliers::new`] fills. `y` is the product plus the
/// channel's addend, less `2^31` where double rounding's high half is
/// negative. The shift is two exact floors, `⌊⌊y / 2^31⌋ / 2^r⌋`: the first
/// from the 64-bit lanes, where a logical shift gives the low 32 bits (and
/// `⌊y / 2^31⌋` fits them: `|x·m| ≤ 2^62 − 2^31`), the second in 32-bit
/// lanes. So no 64-bit arithmetic shift, which AVX2 lacks, and no constants
/// worked out per group: single rounding costs nine operations a group,
/// where [`Single`] took about thirty with its setup.
#[derive(Clone, Copy)]
struct OneStep<const DOUBLE: bool> {
    m: __m256i,
    m_odd: __m256i,
    /// The addends, even channels then odd, as 64-bit lanes.
    add: (__m256i, __m256i),
    /// Double rounding: the products below which the high half is negative.
    below: (__m256i, __m256i),
    /// The right shift `r` of each channel.
    right: __m256i,
}

impl<const DOUBLE: bool> OneStep<DOUBLE> {
    /// The constants of channels `g..g + 8`, whose multipliers and shifts
    /// are `m` and `s`.
    ///
    /// # Safety
    /// The CPU must support AVX2; `g` is a multiple of 8, `q.one_step`
    /// holds, and `q`'s tables cover the block of channel `g`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn new(q: &Multipliers, m: __m256i, s: __m256i, g: usize) -> Self {
        // Channels g, g + 2, g + 4, g + 6 are four adjacent even lanes of
        // their block of 16; the odd ones lie 8 lanes on.
        let half = 4 * (g % 16 / 8);
        let ld = |p: *const i64, at: usize| unsafe {
            _mm256_loadu_si256(p.add(at + half) as *const __m256i)
        };
        let zero = _mm256_setzero_si256();
        let (add, below) = if DOUBLE {
            let d = unsafe { q.double.as_ptr().add(g / 16 * Multipliers::DOUBLE_BLOCK) };
            ((ld(d, 0), ld(d, 8)), (ld(d, 16), ld(d, 24)))
        } else {
            let d = unsafe { q.single.as_ptr().add(g / 16 * 16) };
            ((ld(d, 0), ld(d, 8)), (zero, zero))
        };
        OneStep {
            m,
            m_odd: odd(m),
            add,
            below,
            right: _mm256_sub_epi32(zero, s),
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn apply(&self, x: __m256i) -> __m256i {
        let (pe, po) = (
            _mm256_mul_epi32(x, self.m),
            _mm256_mul_epi32(odd(x), self.m_odd),
        );
        // ⌊y / 2^31⌋: the even lanes' in the low halves, the odd lanes' in
        // the high halves (their low halves then left out by the blend).
        let mut e = _mm256_srli_epi64::<31>(_mm256_add_epi64(pe, self.add.0));
        let mut o = _mm256_slli_epi64::<1>(_mm256_add_epi64(po, self.add.1));
        if DOUBLE {
            // A mask of −1 in both halves takes one off the kept half.
            e = _mm256_add_epi32(e, _mm256_cmpgt_epi64(self.below.0, pe));
            o = _mm256_add_epi32(o, _mm256_cmpgt_epi64(self.below.1, po));
        }
        _mm256_srav_epi32(_mm256_blend_epi32::<0b1010_1010>(e, o), self.right)
    }
}

/// onnxruntime's single-precision requantization: the scale's bits
/// arrive in the multiplier lanes ([`crate::quant::Requant::nearest`]).
#[derive(Clone, Copy)]
struct Nearest {
    scale: __m256,
}

impl Nearest {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn new(m: __m256i) -> Self {
        Nearest {
            scale: _mm256_castsi256_ps(m),
        }
    }

    /// `cvtps_epi32` rounds half to even under the default MXCSR, which
    /// Rust code never changes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn apply(&self, x: __m256i) -> __m256i {
        let bound = (1u32 << 30) as f32;
        let v = _mm256_mul_ps(_mm256_cvtepi32_ps(x), self.scale);
        let v = _mm256_min_ps(
            _mm256_max_ps(v, _mm256_set1_ps(-bound)),
            _mm256_set1_ps(bound),
        );
        _mm256_cvtps_epi32(v)
    }
}

/// The low byte of each of eight i32 lanes (`as i8`) as eight bytes at `out`.
///
/// # Safety
/// The CPU must support AVX2, and eight bytes must be writable at `out`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store8(y: __m256i, out: *mut i8) {
    // The lanes are clamped to int8 already, so the saturating packs are
    // exact; they work within 128-bit halves, each half's four bytes
    // leading it. Packs rather than a byte shuffle: the shuffle's mask took
    // one of the sixteen registers the requantization loops are short of.
    let w = _mm256_packs_epi32(y, y);
    let b = _mm256_packs_epi16(w, w);
    let lo = _mm256_castsi256_si128(b);
    let hi = _mm256_extracti128_si256::<1>(b);
    unsafe { _mm_storel_epi64(out as *mut __m128i, _mm_unpacklo_epi32(lo, hi)) };
}

/// [`store8`] for two pixels' lanes, `y0` at `out0` and `y1` at `out1`:
/// one pair of packs for both.
///
/// # Safety
/// The CPU must support AVX2, and eight bytes must be writable at `out0`
/// and at `out1`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store8x2(y0: __m256i, y1: __m256i, out0: *mut i8, out1: *mut i8) {
    let both = pack16(y0, y1);
    unsafe {
        _mm_storel_epi64(out0 as *mut __m128i, both);
        _mm_storel_epi64(out1 as *mut __m128i, _mm_unpackhi_epi64(both, both));
    }
}

/// [`store8`] for sixteen lanes in a row, `y0` then `y1`, as sixteen
/// bytes at `out`.
///
/// # Safety
/// The CPU must support AVX2, and sixteen bytes must be writable at `out`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store16(y0: __m256i, y1: __m256i, out: *mut i8) {
    unsafe { _mm_storeu_si128(out as *mut __m128i, pack16(y0, y1)) };
}

/// The low bytes of `y0`'s eight lanes, then `y1`'s, the lanes clamped
/// to int8 already.
#[inline]
#[target_feature(enable = "avx2")]
fn pack16(y0: __m256i, y1: __m256i) -> __m128i {
    // Within each 128-bit half: y0's four values, then y1's; the unpack
    // puts y0's eight bytes low and y1's high.
    let w = _mm256_packs_epi32(y0, y1);
    let b = _mm256_packs_epi16(w, w);
    let lo = _mm256_castsi256_si128(b);
    let hi = _mm256_extracti128_si256::<1>(b);
    _mm_unpacklo_epi32(lo, hi)
}

/// `Requant::apply` on eight lanes, with per-lane multipliers and shifts.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn requant8(x: __m256i, m: __m256i, s: __m256i, rounding: Rounding) -> __m256i {
    match rounding {
        Rounding::Single => Single::new(m, s).apply(x),
        Rounding::Double => Double::new(m, s).apply(x),
        Rounding::Nearest => Nearest::new(m).apply(x),
    }
}

/// What turns a row of int32 accumulators into int8 outputs: bias, per-channel
/// multipliers, rounding, output zero point and activation clamp.
pub struct Epilogue<'a> {
    pub bias: &'a [i32],
    pub multipliers: &'a Multipliers,
    pub rounding: Rounding,
    pub offset: i32,
    pub min: i32,
    pub max: i32,
}

/// The epilogue of a prepared conv, depthwise or fully connected operator
/// (they share the field names).
macro_rules! epilogue {
    ($k:expr) => {
        $crate::x86::requant::Epilogue {
            bias: &$k.bias_folded,
            multipliers: &$k.multipliers,
            rounding: $k.rounding,
            offset: $k.output_offset,
            min: $k.act_min,
            max: $k.act_max,
        }
    };
}
pub(crate) use epilogue;

impl Epilogue<'_> {
    /// `clamp(requant(acc + bias) + offset)` for one row of channels.
    ///
    /// Panics unless `acc`, the bias and the multipliers are at least
    /// `out.len()` long.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn row(&self, acc: &[i32], out: &mut [i8]) {
        let n = out.len();
        assert!(acc.len() >= n && self.bias.len() >= n);
        assert!(self.multipliers.multiplier.len() >= n && self.multipliers.shift.len() >= n);
        unsafe {
            row(
                acc,
                self.bias,
                self.multipliers,
                self.rounding,
                self.offset,
                self.min,
                self.max,
                out,
            )
        }
    }

    /// [`row`](Self::row) for `pixels` rows of `out.len() / pixels`
    /// channels, row `p`'s accumulators at `acc[p·stride..]`. Channel
    /// groups go outside, pixels inside, so each group's multipliers,
    /// shifts and masks are worked out once per call, not once per pixel.
    ///
    /// Panics unless `pixels` divides `out.len()` into rows of `c`
    /// channels with `c <= stride`, `acc` holds `(pixels − 1)·stride + c`
    /// values, and the bias and the multipliers at least `c`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn rows(&self, acc: &[i32], stride: usize, out: &mut [i8], pixels: usize) {
        if pixels <= 1 {
            let c = out.len();
            return unsafe { self.row(&acc[..c.min(acc.len())], out) };
        }
        let c = out.len() / pixels;
        // Checked once a call, for the unchecked loads below.
        assert!(c * pixels == out.len() && c <= stride);
        assert!(acc.len() >= (pixels - 1) * stride + c);
        assert!(self.bias.len() >= c && self.multipliers.multiplier.len() >= c);
        assert!(self.multipliers.shift.len() >= c);
        let (m, bias) = (self.multipliers, self.bias);
        let whole = c - c % 8;
        unsafe {
            let (vo, vmin, vmax) = (
                _mm256_set1_epi32(self.offset),
                _mm256_set1_epi32(self.min),
                _mm256_set1_epi32(self.max),
            );
            let ld = |p: *const i32, i: usize| _mm256_loadu_si256(p.add(i) as *const __m256i);
            let (acc_p, out_p) = (acc.as_ptr(), out.as_mut_ptr());
            // An activation range of all int8 is the packs' own saturation:
            // the clamp is left out (most layers: no activation, or ReLU at
            // zero point -128).
            let clamp = self.min > -128 || self.max < 127;
            let one_step = m.one_step_covers(c);
            for g in (0..whole).step_by(8) {
                let (vb, vm, vs) = (
                    ld(bias.as_ptr(), g),
                    ld(m.multiplier.as_ptr(), g),
                    ld(m.shift.as_ptr(), g),
                );
                // Pixels two at a time share their packs and stores.
                macro_rules! each {
                    ($apply:expr) => {{
                        let y = |p: usize| {
                            let x = _mm256_add_epi32(ld(acc_p, p * stride + g), vb);
                            let q = _mm256_add_epi32($apply(x), vo);
                            if clamp {
                                _mm256_min_epi32(_mm256_max_epi32(q, vmin), vmax)
                            } else {
                                q
                            }
                        };
                        let mut p = 0;
                        while p + 2 <= pixels {
                            let (o0, o1) = (out_p.add(p * c + g), out_p.add((p + 1) * c + g));
                            store8x2(y(p), y(p + 1), o0, o1);
                            p += 2;
                        }
                        if p < pixels {
                            store8(y(p), out_p.add(p * c + g));
                        }
                    }};
                }
                match self.rounding {
                    Rounding::Single if one_step => {
                        let r = OneStep::<false>::new(m, vm, vs, g);
                        each!(|x| r.apply(x));
                    }
                    Rounding::Double if one_step => {
                        let r = OneStep::<true>::new(m, vm, vs, g);
                        each!(|x| r.apply(x));
                    }
                    Rounding::Single => {
                        let r = Single::new(vm, vs);
                        each!(|x| r.apply(x));
                    }
                    // Most layers shift only right: without the left
                    // shift's register the loop fits the sixteen.
                    Rounding::Double
                        if _mm256_movemask_epi8(_mm256_cmpgt_epi32(vs, _mm256_setzero_si256()))
                            == 0 =>
                    {
                        let r = Double::new(vm, vs);
                        each!(|x| r.apply_shifted::<false>(x));
                    }
                    Rounding::Double => {
                        let r = Double::new(vm, vs);
                        each!(|x| r.apply(x));
                    }
                    Rounding::Nearest => {
                        let r = Nearest::new(vm);
                        each!(|x| r.apply(x));
                    }
                }
            }
        }
        for j in whole..c {
            let r = crate::quant::Requant {
                multiplier: m.multiplier[j],
                shift: m.shift[j],
            };
            for p in 0..pixels {
                let v = r
                    .apply(acc[p * stride + j].wrapping_add(bias[j]), self.rounding)
                    .wrapping_add(self.offset);
                out[p * c + j] = v.clamp(self.min, self.max) as i8;
            }
        }
    }
}

/// `clamp(requant(acc + bias) + offset)` for one row of channels. (A
/// call per pixel is common: conv and fully connected requantize as they
/// go. This loop, with the constants worked out in it, measured faster
/// for that than `rows` with one pixel: 505 against 550 µs for ResNet-8.)
///
/// # Safety
/// The CPU must support AVX2; the slices must all be at least `out.len()` long.
#[target_feature(enable = "avx2")]
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
    let n = out.len();
    let whole = n - n % 8;
    let one_step = m.one_step_covers(n) && rounding != Rounding::Nearest;
    // As in `rows`: an activation range of all int8 is left to the packs.
    let clamp = min > -128 || max < 127;
    unsafe {
        let (vo, vmin, vmax) = (
            _mm256_set1_epi32(offset),
            _mm256_set1_epi32(min),
            _mm256_set1_epi32(max),
        );
        let ld = |p: *const i32, i: usize| _mm256_loadu_si256(p.add(i) as *const __m256i);
        // The output of channels `i..i + 8`, by `$requant(x, vm, vs, i)`.
        macro_rules! each {
            ($requant:expr) => {{
                let y = |i: usize| {
                    let x = _mm256_add_epi32(ld(acc.as_ptr(), i), ld(bias.as_ptr(), i));
                    let (vm, vs) = (ld(m.multiplier.as_ptr(), i), ld(m.shift.as_ptr(), i));
                    let q = _mm256_add_epi32($requant(x, vm, vs, i), vo);
                    if clamp {
                        _mm256_min_epi32(_mm256_max_epi32(q, vmin), vmax)
                    } else {
                        q
                    }
                };
                let mut i = 0;
                while i + 16 <= whole {
                    store16(y(i), y(i + 8), out.as_mut_ptr().add(i));
                    i += 16;
                }
                if i < whole {
                    store8(y(i), out.as_mut_ptr().add(i));
                }
            }};
        }
        // A per-tensor scale (most fully connected layers) takes its
        // constants once; the loads of the rest then go unused.
        let first = || (ld(m.multiplier.as_ptr(), 0), ld(m.shift.as_ptr(), 0));
        match rounding {
            Rounding::Single if one_step && m.uniform && whole > 0 => {
                let (vm, vs) = first();
                let r = OneStep::<false>::new(m, vm, vs, 0);
                each!(|x, _, _, _| r.apply(x))
            }
            Rounding::Double if one_step && m.uniform && whole > 0 => {
                let (vm, vs) = first();
                let r = OneStep::<true>::new(m, vm, vs, 0);
                each!(|x, _, _, _| r.apply(x))
            }
            Rounding::Single if one_step => {
                each!(|x, vm, vs, i| OneStep::<false>::new(m, vm, vs, i).apply(x))
            }
            Rounding::Double if one_step => {
                each!(|x, vm, vs, i| OneStep::<true>::new(m, vm, vs, i).apply(x))
            }
            _ => each!(|x, vm, vs, _| requant8(x, vm, vs, rounding)),
        }
    }
    for j in whole..n {
        let r = crate::quant::Requant {
            multiplier: m.multiplier[j],
            shift: m.shift[j],
        };
        let v = r
            .apply(acc[j].wrapping_add(bias[j]), rounding)
            .wrapping_add(offset);
        out[j] = v.clamp(min, max) as i8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::checks;
    use proptest::prelude::*;

    /// These tests fail, rather than pass without testing, on a CPU without
    /// the set; `cargo xtask test` leaves them out there and says so.
    const UNSUPPORTED: &str = "this CPU cannot run the avx2 kernel set";

    proptest! {
        /// Half the cases share one scale over all channels (`row`'s
        /// per-tensor path); about half leave the clamp to the packs. The
        /// scale is drawn by its decade: drawn evenly, nearly every case
        /// clamped every output, and a wrong multiplier went unseen.
        #[test]
        fn vector_requant_matches_scalar(xs in proptest::collection::vec(any::<i32>(), 1..70), real in (-7.0f64..0.47).prop_map(|e| 10f64.powf(e)), uniform in any::<bool>(), bias in -100_000i32..100_000, rounding in checks::roundings(), off in -128i32..128, lo in prop_oneof![Just(-128), -128i32..0]) {
            prop_assert!(std::is_x86_feature_detected!("avx2"), "{}", UNSUPPORTED);
            checks::random(&|a, b, m, r, o, lo, hi, out| unsafe { row(a, b, m, r, o, lo, hi, out) }, &xs, real, uniform, bias, rounding, off, lo)?;
        }

        /// Accumulators of every magnitude (`mag`): with a multiplier
        /// above one half (a left shift), only small sums stay inside the
        /// clamp and show the shift. Half the cases have the activation
        /// range of all int8, which leaves the clamp to the packs'
        /// saturation.
        #[test]
        fn rows_of_pixels_match_scalar(c in 1usize..40, extra in 0usize..9, pixels in 1usize..6, seed in any::<u64>(), mag in 0u32..=22, real in 1e-7f64..3.0, rounding in checks::roundings(), off in -128i32..128, lo in prop_oneof![Just(-128i32), -128i32..0]) {
            prop_assert!(std::is_x86_feature_detected!("avx2"), "{}", UNSUPPORTED);
            let stride = c + extra;
            let mut s = seed | 1;
            let acc: Vec<i32> = (0..pixels * stride).map(|_| { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s as i32) >> (8 + mag) }).collect();
            let rq: Vec<crate::quant::Requant> = (0..c).map(|i| crate::quant::Requant::from_real(real * (1.0 + i as f64 * 0.37), rounding)).collect();
            let bias: Vec<i32> = (0..c as i32).map(|i| i * 97 - 1000).collect();
            let multipliers = Multipliers::new(&rq);
            let e = Epilogue { bias: &bias, multipliers: &multipliers, rounding, offset: off, min: lo, max: 127 };
            let mut got = vec![0i8; pixels * c];
            unsafe { e.rows(&acc, stride, &mut got, pixels) };
            let want: Vec<i8> = (0..pixels * c).map(|i| {
                let (p, j) = (i / c, i % c);
                (rq[j].apply(acc[p * stride + j].wrapping_add(bias[j]), rounding).wrapping_add(off)).clamp(lo, 127) as i8
            }).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn ties_round_as_the_reference(t in -120i32..120, k in 1i32..12, rounding in checks::roundings(), above in any::<bool>()) {
            prop_assert!(std::is_x86_feature_detected!("avx2"), "{}", UNSUPPORTED);
            checks::tie(&|a, b, m, r, o, lo, hi, out| unsafe { row(a, b, m, r, o, lo, hi, out) }, t, k, rounding, above)?;
        }
    }
}
