//! AVX-512 VNNI kernels: CONV_2D and FULLY_CONNECTED with `vpdpbusd`, 64
//! int8 multiply-accumulates per instruction. The instruction multiplies
//! unsigned by signed bytes, so the input is shifted to u = x + 128 and the
//! shift is folded into the bias (`Packed::new`); the sums stay exact.
//! Depthwise reuses the AVX2 kernel.

use std::arch::x86_64::*;

use crate::conv::Conv2d;
use crate::depthwise::DepthwiseConv2d;
use crate::error::{KernelError, check_len};
use crate::fully_connected::FullyConnected;
use crate::pack::{I8_LANES, Packed, PackedI8Rows, pad_input};
use crate::x86::avx2;

pub fn supported() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
        && avx2::supported()
}

/// `u = x + 128` as a byte: flipping the sign bit.
#[inline(always)]
fn to_u8(src: &[i8], dst: &mut [u8]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = (s as u8) ^ 0x80;
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dot_rows(col: &[u8], rows: &PackedI8Rows, acc: &mut [i32]) {
    let kp = rows.kp;
    let x = col.as_ptr();
    let w = rows.data.as_ptr();
    let mut r = 0;
    unsafe {
        while r + 4 <= rows.rows {
            let (w0, w1, w2, w3) = (
                w.add(r * kp),
                w.add((r + 1) * kp),
                w.add((r + 2) * kp),
                w.add((r + 3) * kp),
            );
            let (mut a0, mut a1, mut a2, mut a3) = (
                _mm512_setzero_si512(),
                _mm512_setzero_si512(),
                _mm512_setzero_si512(),
                _mm512_setzero_si512(),
            );
            let mut t = 0;
            while t < kp {
                let xv = _mm512_loadu_si512(x.add(t) as *const _);
                a0 = _mm512_dpbusd_epi32(a0, xv, _mm512_loadu_si512(w0.add(t) as *const _));
                a1 = _mm512_dpbusd_epi32(a1, xv, _mm512_loadu_si512(w1.add(t) as *const _));
                a2 = _mm512_dpbusd_epi32(a2, xv, _mm512_loadu_si512(w2.add(t) as *const _));
                a3 = _mm512_dpbusd_epi32(a3, xv, _mm512_loadu_si512(w3.add(t) as *const _));
                t += I8_LANES;
            }
            acc[r] = _mm512_reduce_add_epi32(a0);
            acc[r + 1] = _mm512_reduce_add_epi32(a1);
            acc[r + 2] = _mm512_reduce_add_epi32(a2);
            acc[r + 3] = _mm512_reduce_add_epi32(a3);
            r += 4;
        }
        while r < rows.rows {
            let wr = w.add(r * kp);
            let mut a = _mm512_setzero_si512();
            let mut t = 0;
            while t < kp {
                a = _mm512_dpbusd_epi32(
                    a,
                    _mm512_loadu_si512(x.add(t) as *const _),
                    _mm512_loadu_si512(wr.add(t) as *const _),
                );
                t += I8_LANES;
            }
            acc[r] = _mm512_reduce_add_epi32(a);
            r += 1;
        }
    }
}

pub fn conv2d(k: &Conv2d, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    let Some(Packed::I8(packed)) = &k.packed else {
        return avx2::conv2d(k, input, output);
    };
    if !supported() {
        return avx2::conv2d(k, input, output);
    }
    let (is, os, w) = (k.input, k.output, k.window);
    check_len("conv2d", "input", input.len(), is.len().unwrap_or(0))?;
    check_len("conv2d", "output", output.len(), os.len().unwrap_or(0))?;
    let mut guard = k.scratch.lock().unwrap_or_else(|p| p.into_inner());
    let scratch = &mut *guard;
    let zp = (-k.input_offset).clamp(-128, 127) as i8;
    let (src, ph, pw) = pad_input(input, is, &w, os.h, os.w, zp, &mut scratch.padded);
    // Padding lanes meet zero weights, so their value does not matter.
    scratch.col8.resize(packed.kp, 0x80);
    scratch.acc.resize(os.c, 0);
    let (col, acc) = (&mut scratch.col8, &mut scratch.acc);
    let ic = is.c;
    for b in 0..os.n {
        for oy in 0..os.h {
            for ox in 0..os.w {
                let mut j = 0;
                for ky in 0..w.kernel_h {
                    let iy = oy * w.stride_h + ky * w.dilation_h;
                    if w.dilation_w == 1 {
                        let base = ((b * ph + iy) * pw + ox * w.stride_w) * ic;
                        let len = w.kernel_w * ic;
                        to_u8(&src[base..base + len], &mut col[j..j + len]);
                        j += len;
                    } else {
                        for kx in 0..w.kernel_w {
                            let base =
                                ((b * ph + iy) * pw + ox * w.stride_w + kx * w.dilation_w) * ic;
                            to_u8(&src[base..base + ic], &mut col[j..j + ic]);
                            j += ic;
                        }
                    }
                }
                // SAFETY: the CPU support was checked above; `col` holds `kp` bytes.
                unsafe { dot_rows(col, packed, acc) };
                let out = &mut output[os.offset(b, oy, ox, 0)..os.offset(b, oy, ox, 0) + os.c];
                for (oc, o) in out.iter_mut().enumerate() {
                    let v = k.requant[oc]
                        .apply(acc[oc].wrapping_add(k.bias_folded[oc]), k.rounding)
                        .wrapping_add(k.output_offset);
                    *o = v.clamp(k.act_min, k.act_max) as i8;
                }
            }
        }
    }
    Ok(())
}

pub fn fully_connected(
    k: &FullyConnected,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    let Some(Packed::I8(packed)) = &k.packed else {
        return avx2::fully_connected(k, input, output);
    };
    if !supported() {
        return avx2::fully_connected(k, input, output);
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
    scratch.col8.resize(packed.kp, 0x80);
    scratch.acc.resize(k.units, 0);
    let (col, acc) = (&mut scratch.col8, &mut scratch.acc);
    for (row, out) in input
        .chunks_exact(k.depth)
        .zip(output.chunks_exact_mut(k.units))
    {
        to_u8(row, &mut col[..k.depth]);
        // SAFETY: the CPU support was checked above; `col` holds `kp` bytes.
        unsafe { dot_rows(col, packed, acc) };
        for (u, o) in out.iter_mut().enumerate() {
            let v = k.requant[u]
                .apply(acc[u].wrapping_add(k.bias_folded[u]), k.rounding)
                .wrapping_add(k.output_offset);
            *o = v.clamp(k.act_min, k.act_max) as i8;
        }
    }
    Ok(())
}

pub fn depthwise_conv2d(
    k: &DepthwiseConv2d,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    avx2::depthwise_conv2d(k, input, output)
}
