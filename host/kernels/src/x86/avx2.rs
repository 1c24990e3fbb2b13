//! AVX2 kernels for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED,
//! bit-exact with the scalar references: the same integer sums (wrapping
//! i32), reordered, then the same requantization.
//!
//! Convolution and fully connected are dot products of an input patch with
//! filter rows: the patch is widened to i16 once per output pixel and
//! multiplied 16 lanes at a time (`vpmaddwd`) against four filter rows.
//! Depthwise works across channels, eight at a time, two taps per
//! `vpmaddwd`.

use std::arch::x86_64::*;

use crate::conv::{Conv2d, conv2d_scalar};
use crate::depthwise::{DepthwiseConv2d, depthwise_conv2d_scalar};
use crate::drive::channels::{self, Span, Taps};
use crate::drive::rows;
use crate::error::KernelError;
use crate::fully_connected::{FullyConnected, fully_connected_scalar};
use crate::pack::{LANES, Packed, PackedRows};
use crate::x86::requant::epilogue;

pub fn supported() -> bool {
    is_x86_feature_detected!("avx2")
}

#[inline]
#[target_feature(enable = "avx2")]
fn hsum(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// Widen `src` into `dst` as i16.
///
/// # Safety
/// The CPU must support AVX2, and `dst` must be at least as long as `src`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn widen(src: &[i8], dst: &mut [i16]) {
    debug_assert!(dst.len() >= src.len());
    let n = src.len();
    let mut i = 0;
    unsafe {
        while i + 16 <= n {
            let v = _mm_loadu_si128(src.as_ptr().add(i) as *const __m128i);
            _mm256_storeu_si256(
                dst.as_mut_ptr().add(i) as *mut __m256i,
                _mm256_cvtepi8_epi16(v),
            );
            i += 16;
        }
    }
    for j in i..n {
        dst[j] = src[j] as i16;
    }
}

/// Dot products of `col` (length `rows.kp`, i16) with every row of `rows`,
/// written to `acc`.
///
/// # Safety
/// The CPU must support AVX2. The lengths are checked here, once per call.
#[target_feature(enable = "avx2")]
unsafe fn dot_rows(col: &[i16], rows: &PackedRows, acc: &mut [i32]) {
    let kp = rows.kp;
    assert!(col.len() >= kp && kp.is_multiple_of(LANES));
    assert!(rows.data.len() >= rows.rows * kp && acc.len() >= rows.rows);
    let x = col.as_ptr();
    let mut r = 0;
    unsafe {
        while r + 4 <= rows.rows {
            let (w0, w1, w2, w3) = (
                rows.data.as_ptr().add(r * kp),
                rows.data.as_ptr().add((r + 1) * kp),
                rows.data.as_ptr().add((r + 2) * kp),
                rows.data.as_ptr().add((r + 3) * kp),
            );
            let (mut a0, mut a1, mut a2, mut a3) = (
                _mm256_setzero_si256(),
                _mm256_setzero_si256(),
                _mm256_setzero_si256(),
                _mm256_setzero_si256(),
            );
            let mut t = 0;
            while t < kp {
                let xv = _mm256_loadu_si256(x.add(t) as *const __m256i);
                a0 = _mm256_add_epi32(
                    a0,
                    _mm256_madd_epi16(xv, _mm256_loadu_si256(w0.add(t) as *const __m256i)),
                );
                a1 = _mm256_add_epi32(
                    a1,
                    _mm256_madd_epi16(xv, _mm256_loadu_si256(w1.add(t) as *const __m256i)),
                );
                a2 = _mm256_add_epi32(
                    a2,
                    _mm256_madd_epi16(xv, _mm256_loadu_si256(w2.add(t) as *const __m256i)),
                );
                a3 = _mm256_add_epi32(
                    a3,
                    _mm256_madd_epi16(xv, _mm256_loadu_si256(w3.add(t) as *const __m256i)),
                );
                t += LANES;
            }
            // Four sums at once: two rounds of pairwise adds within each
            // half, then the halves added (a sum per row was most of a
            // short row's time).
            let h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
            let s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
            _mm_storeu_si128(acc.as_mut_ptr().add(r) as *mut __m128i, s);
            r += 4;
        }
        while r < rows.rows {
            let w = rows.data.as_ptr().add(r * kp);
            let mut a = _mm256_setzero_si256();
            let mut t = 0;
            while t < kp {
                a = _mm256_add_epi32(
                    a,
                    _mm256_madd_epi16(
                        _mm256_loadu_si256(x.add(t) as *const __m256i),
                        _mm256_loadu_si256(w.add(t) as *const __m256i),
                    ),
                );
                t += LANES;
            }
            acc[r] = hsum(a);
            r += 1;
        }
    }
}

/// This set's pieces for the i16-row driver.
// SAFETY (all three closures): only built after AVX2 support was checked.
macro_rules! micro {
    ($k:expr) => {
        rows::Micro {
            widen: |x, d| unsafe { widen(x, d) },
            dot: |col, rows, acc| unsafe { dot_rows(col, rows, acc) },
            epilogue: |acc, out| unsafe { epilogue!($k).row(acc, out) },
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

/// Two taps' inputs at `base` (eight channels each) interleaved and
/// widened to i16: `x0[0], x1[0], x0[1], x1[1], …`, the order of the
/// interleaved filter pairs.
///
/// # Safety
/// The CPU must support AVX2, and eight bytes must be readable at
/// `base + o0` and at `base + o1`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn tap_pair(base: *const i8, (o0, o1): (usize, usize)) -> __m256i {
    unsafe {
        let x0 = _mm_loadl_epi64(base.add(o0) as *const __m128i);
        let x1 = _mm_loadl_epi64(base.add(o1) as *const __m128i);
        _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(x0, x1))
    }
}

/// The element offsets of each pair of taps; an odd window's last tap
/// pairs with itself, under a zero filter.
fn pair_offsets<const P: usize>(taps: &Taps) -> [(usize, usize); P] {
    std::array::from_fn(|p| {
        let last = taps.len().saturating_sub(1);
        (
            taps.get(2 * p).map_or(0, |t| t.1),
            taps.get((2 * p + 1).min(last)).map_or(0, |t| t.1),
        )
    })
}

/// A row of depthwise output pixels, eight channels at a time. Two taps
/// share one `vpmaddwd` (their inputs interleaved as i16 against the
/// filter's interleaved pairs), which does sixteen multiplies and the
/// first add where a 32-bit multiply did eight. The sums are the scalar
/// reference's products added in another order: exact, as i8 products
/// and their pairwise sums fit i32.
#[target_feature(enable = "avx2")]
fn depthwise_row(
    src: &[i8],
    span: Span,
    taps: &Taps,
    filter: &[i32],
    pairs: &[i16],
    c: usize,
    acc: &mut [i32],
) {
    span.check(src, taps, filter, c, acc);
    let np = taps.len().div_ceil(2);
    assert!(pairs.len() >= np * 2 * c);
    let whole = c - c % 8;
    // SAFETY: `span.check` bounds every pixel's taps over its `c` channels
    // and the accumulators; the blocks read channels below `whole <= c`,
    // and the filter pairs below `np * 2 * c`, asserted above.
    unsafe {
        for ch in (0..whole).step_by(8) {
            if np == 5 {
                depthwise_block::<5>(src, span, pair_offsets(taps), pairs, c, ch, acc);
            } else {
                for i in 0..span.pixels {
                    let base = src.as_ptr().add(span.corner + i * span.step + ch);
                    let mut a = _mm256_setzero_si256();
                    for p in 0..np {
                        let o0 = taps[2 * p].1;
                        let o1 = taps[(2 * p + 1).min(taps.len() - 1)].1;
                        let f = _mm256_loadu_si256(
                            pairs.as_ptr().add((p * c + ch) * 2) as *const __m256i
                        );
                        a = _mm256_add_epi32(a, _mm256_madd_epi16(tap_pair(base, (o0, o1)), f));
                    }
                    _mm256_storeu_si256(acc.as_mut_ptr().add(i * c + ch) as *mut __m256i, a);
                }
            }
        }
    }
    if whole < c {
        for (i, acc) in acc.chunks_exact_mut(c).take(span.pixels).enumerate() {
            channels::pixel_tail(
                src,
                span.corner + i * span.step,
                taps,
                filter,
                c,
                whole,
                acc,
            );
        }
    }
}

/// Eight channels from `ch` on over the whole span, for a window of `P`
/// pairs of taps (3×3 has five), four pixels a pass with the filter
/// pairs held in registers.
///
/// # Safety
/// The CPU must support AVX2, and the bounds `depthwise_row` checks must hold.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn depthwise_block<const P: usize>(
    src: &[i8],
    span: Span,
    offs: [(usize, usize); P],
    pairs: &[i16],
    c: usize,
    ch: usize,
    acc: &mut [i32],
) {
    const PIX: usize = 4;
    unsafe {
        let f: [__m256i; P] = std::array::from_fn(|p| {
            _mm256_loadu_si256(pairs.as_ptr().add((p * c + ch) * 2) as *const __m256i)
        });
        let base = |i: usize| src.as_ptr().add(span.corner + i * span.step + ch);
        let out = acc.as_mut_ptr();
        let mut i = 0;
        while i + PIX <= span.pixels {
            let b: [*const i8; PIX] = std::array::from_fn(|q| base(i + q));
            let mut a = [_mm256_setzero_si256(); PIX];
            for p in 0..P {
                for q in 0..PIX {
                    a[q] = _mm256_add_epi32(a[q], _mm256_madd_epi16(tap_pair(b[q], offs[p]), f[p]));
                }
            }
            for (q, a) in a.into_iter().enumerate() {
                _mm256_storeu_si256(out.add((i + q) * c + ch) as *mut __m256i, a);
            }
            i += PIX;
        }
        while i < span.pixels {
            let b = base(i);
            let mut a = _mm256_setzero_si256();
            for p in 0..P {
                a = _mm256_add_epi32(a, _mm256_madd_epi16(tap_pair(b, offs[p]), f[p]));
            }
            _mm256_storeu_si256(out.add(i * c + ch) as *mut __m256i, a);
            i += 1;
        }
    }
}

pub fn depthwise_conv2d(
    k: &DepthwiseConv2d,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    if !supported() {
        return depthwise_conv2d_scalar(k, input, output);
    }
    // SAFETY (both closures): AVX2 was checked above.
    channels::depthwise_conv2d(
        k,
        input,
        output,
        channels::Micro {
            row: |src, span, taps, filter, c, acc| unsafe {
                depthwise_row(src, span, taps, filter, &k.filter_pairs, c, acc)
            },
            epilogue: |acc, stride, out, pixels| {
                let c = out.len() / pixels.max(1);
                for (p, o) in out.chunks_exact_mut(c).enumerate() {
                    unsafe { epilogue!(k).row(&acc[p * stride..p * stride + c], o) };
                }
            },
        },
    )
}
