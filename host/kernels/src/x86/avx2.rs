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
use crate::error::{KernelError, check_len};
use crate::fully_connected::{FullyConnected, fully_connected_scalar};
use crate::pack::{LANES, Packed, PackedRows, gather_window, pad_input};
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
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn widen(src: &[i8], dst: &mut [i16]) {
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
#[target_feature(enable = "avx2")]
unsafe fn dot_rows(col: &[i16], rows: &PackedRows, acc: &mut [i32]) {
    let kp = rows.kp;
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

pub fn conv2d(k: &Conv2d, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    let Some(Packed::I16(packed)) = &k.packed else {
        return conv2d_scalar(k, input, output);
    };
    if !supported() {
        return conv2d_scalar(k, input, output);
    }
    let (is, os, w) = (k.input, k.output, k.window);
    check_len("conv2d", "input", input.len(), is.len().unwrap_or(0))?;
    check_len("conv2d", "output", output.len(), os.len().unwrap_or(0))?;
    let mut guard = k.scratch.lock().unwrap_or_else(|p| p.into_inner());
    let scratch = &mut *guard;
    let zp = (-k.input_offset).clamp(-128, 127) as i8;
    let (src, ph, pw) = pad_input(input, is, &w, os.h, os.w, zp, &mut scratch.padded);
    scratch.col.resize(packed.kp, 0);
    scratch.acc.resize(os.c, 0);
    let (col, acc) = (&mut scratch.col, &mut scratch.acc);
    for pix in 0..os.n * os.h * os.w {
        // SAFETY: AVX2 was checked above.
        gather_window(src, ph, pw, is.c, &w, os.h, os.w, pix, col, |x, d| unsafe {
            widen(x, d)
        });
        // SAFETY: AVX2 was checked above; `col` holds `kp` values.
        unsafe { dot_rows(col, packed, acc) };
        let out = &mut output[pix * os.c..(pix + 1) * os.c];
        // SAFETY: AVX2 was checked above; every slice holds `os.c` values.
        unsafe { epilogue!(k).row(acc, out) };
    }
    Ok(())
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
    check_len("fully_connected", "input", input.len(), k.batches * k.depth)?;
    check_len(
        "fully_connected",
        "output",
        output.len(),
        k.batches * k.units,
    )?;
    let mut guard = k.scratch.lock().unwrap_or_else(|p| p.into_inner());
    let scratch = &mut *guard;
    scratch.col.clear();
    scratch.col.resize(packed.kp, 0);
    scratch.acc.resize(k.units, 0);
    let (col, acc) = (&mut scratch.col, &mut scratch.acc);
    for (row, out) in input
        .chunks_exact(k.depth)
        .zip(output.chunks_exact_mut(k.units))
    {
        // SAFETY: AVX2 was checked above; `col` holds `kp` values.
        unsafe {
            widen(row, &mut col[..k.depth]);
            dot_rows(col, packed, acc);
        }
        // SAFETY: AVX2 was checked above; every slice holds `units` values.
        unsafe { epilogue!(k).row(acc, out) };
    }
    Ok(())
}

#[target_feature(enable = "avx2")]
pub(crate) unsafe fn depthwise_pixel(
    src: *const i8,
    taps: &[(usize, usize)],
    filter: &[i32],
    c: usize,
    acc: &mut [i32],
) {
    let mut ch = 0;
    unsafe {
        while ch + 8 <= c {
            let mut a = _mm256_setzero_si256();
            for &(tap, off) in taps {
                let x = _mm256_cvtepi8_epi32(_mm_loadl_epi64(src.add(off + ch) as *const __m128i));
                let f = _mm256_loadu_si256(filter.as_ptr().add(tap * c + ch) as *const __m256i);
                a = _mm256_add_epi32(a, _mm256_mullo_epi32(x, f));
            }
            _mm256_storeu_si256(acc.as_mut_ptr().add(ch) as *mut __m256i, a);
            ch += 8;
        }
        for ch in ch..c {
            let mut a = 0i32;
            for &(tap, off) in taps {
                a = a.wrapping_add((*src.add(off + ch) as i32).wrapping_mul(filter[tap * c + ch]));
            }
            acc[ch] = a;
        }
    }
}

pub fn depthwise_conv2d(
    k: &DepthwiseConv2d,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    depthwise_conv2d_with(k, input, output, false)
}

/// With `wide`, the AVX-512 epilogue (the caller has checked AVX-512).
pub(crate) fn depthwise_conv2d_with(
    k: &DepthwiseConv2d,
    input: &[i8],
    output: &mut [i8],
    wide: bool,
) -> Result<(), KernelError> {
    if k.depth_multiplier != 1 || !supported() {
        return depthwise_conv2d_scalar(k, input, output);
    }
    let (is, os, w) = (k.input, k.output, k.window);
    check_len(
        "depthwise_conv2d",
        "input",
        input.len(),
        is.len().unwrap_or(0),
    )?;
    check_len(
        "depthwise_conv2d",
        "output",
        output.len(),
        os.len().unwrap_or(0),
    )?;
    let mut guard = k.scratch.lock().unwrap_or_else(|p| p.into_inner());
    let scratch = &mut *guard;
    let zp = (-k.input_offset).clamp(-128, 127) as i8;
    let (src, ph, pw) = pad_input(input, is, &w, os.h, os.w, zp, &mut scratch.padded);
    let c = os.c;
    // Tap offsets relative to the window's top-left corner, in elements.
    scratch.taps.clear();
    for ky in 0..w.kernel_h {
        for kx in 0..w.kernel_w {
            scratch.taps.push((
                ky * w.kernel_w + kx,
                (ky * w.dilation_h * pw + kx * w.dilation_w) * c,
            ));
        }
    }
    // A whole output row of accumulators, requantized together.
    scratch.acc.resize(os.w * c, 0);
    let (taps, acc) = (&scratch.taps, &mut scratch.acc);
    for b in 0..os.n {
        for oy in 0..os.h {
            for ox in 0..os.w {
                let corner = ((b * ph + oy * w.stride_h) * pw + ox * w.stride_w) * c;
                // The last tap's last channel is inside `src` by construction of `pad_input`.
                debug_assert!(corner + taps.last().map_or(0, |t| t.1) + c <= src.len());
                let a = &mut acc[ox * c..(ox + 1) * c];
                // SAFETY: AVX2 was checked above; every tap offset from `corner`
                // stays inside the padded input (see `pad_input`).
                unsafe { depthwise_pixel(src.as_ptr().add(corner), taps, &k.filter_i32, c, a) };
            }
            let row = os.offset(b, oy, 0, 0);
            let out = &mut output[row..row + os.w * c];
            // SAFETY: AVX2 (and for `wide` AVX-512) was checked; `acc` and `out`
            // hold `os.w` pixels of `c` values.
            unsafe {
                if wide {
                    epilogue!(k).rows512(acc, c, out, os.w)
                } else {
                    for (a, o) in acc.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
                        epilogue!(k).row(a, o)
                    }
                }
            };
        }
    }
    Ok(())
}
