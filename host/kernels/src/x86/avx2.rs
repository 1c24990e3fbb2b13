//! AVX2 kernels for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED,
//! bit-exact with the scalar references: the same integer sums (wrapping
//! i32), reordered, then the same requantization.
//!
//! Convolution and fully connected are dot products of an input patch with
//! filter rows: the patch is widened to i16 once per output pixel and
//! multiplied 16 lanes at a time (`vpmaddwd`) against four filter rows.
//! Depthwise works across channels, eight at a time in i32.

use std::arch::x86_64::*;

use crate::conv::{Conv2d, conv2d_scalar};
use crate::depthwise::{DepthwiseConv2d, depthwise_conv2d_scalar};
use crate::drive::{channels, rows};
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
            acc[r] = hsum(a0);
            acc[r + 1] = hsum(a1);
            acc[r + 2] = hsum(a2);
            acc[r + 3] = hsum(a3);
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
    let Some(Packed::I16(packed)) = &k.packed else {
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

/// One output pixel of a depthwise conv across all `c` channels.
#[target_feature(enable = "avx2")]
pub(crate) fn depthwise_pixel(
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
            let mut a = _mm256_setzero_si256();
            for &(tap, off) in taps {
                let x = _mm256_cvtepi8_epi32(_mm_loadl_epi64(base.add(off + ch) as *const __m128i));
                let f = _mm256_loadu_si256(filter.as_ptr().add(tap * c + ch) as *const __m256i);
                a = _mm256_add_epi32(a, _mm256_mullo_epi32(x, f));
            }
            _mm256_storeu_si256(acc.as_mut_ptr().add(ch) as *mut __m256i, a);
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
    // SAFETY (both closures): AVX2 was checked above.
    channels::depthwise_conv2d(
        k,
        input,
        output,
        channels::Micro {
            row: channels::by_pixel(|src, corner, taps, filter, c, acc| unsafe {
                depthwise_pixel(src, corner, taps, filter, c, acc)
            }),
            epilogue: |acc, stride, out, pixels| {
                let c = out.len() / pixels.max(1);
                for (p, o) in out.chunks_exact_mut(c).enumerate() {
                    unsafe { epilogue!(k).row(&acc[p * stride..p * stride + c], o) };
                }
            },
        },
    )
}
