//! AVX-512 VNNI kernels: CONV_2D and FULLY_CONNECTED as a small GEMM with
//! `vpdpbusd`, 64 int8 multiply-accumulates per instruction, four output
//! pixels per weight load. The instruction multiplies unsigned by signed
//! bytes, so the input is shifted to u = x + 128 and the shift is folded into
//! the bias (`Packed::new`); the sums stay exact.
//! Depthwise reuses the AVX2 kernel with the AVX-512 requantization.

use std::arch::x86_64::*;

use crate::conv::Conv2d;
use crate::depthwise::DepthwiseConv2d;
use crate::error::{KernelError, check_len};
use crate::fully_connected::FullyConnected;
use crate::pack::{I8_LANES, Packed, PackedI8Rows, gather_window, pad_input};
use crate::x86::avx2;
use crate::x86::requant::epilogue;

pub fn supported() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
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

/// Output pixels computed together, sharing each weight load.
const MR: usize = 4;

/// Output pixels requantized together (a multiple of `MR`).
const TILE: usize = 32;

/// `acc[p][r] = Σ_k col[p][k] · w[r][k]` for `P` patches (u8, length
/// `4·k4`), 16 rows per vector: the input is broadcast 4 bytes at a time, so
/// no horizontal sums are needed.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn gemm<const P: usize>(cols: [&[u8]; P], w: &PackedI8Rows, acc: &mut [i32]) {
    let stride = w.padded_rows();
    unsafe {
        for ob in 0..w.blocks {
            let base = w.data.as_ptr().add(ob * w.k4 * I8_LANES);
            let mut a = [_mm512_setzero_si512(); P];
            for t in 0..w.k4 {
                let wv = _mm512_loadu_si512(base.add(t * I8_LANES) as *const _);
                for p in 0..P {
                    let x = _mm512_set1_epi32(std::ptr::read_unaligned(
                        cols[p].as_ptr().add(4 * t) as *const i32,
                    ));
                    a[p] = _mm512_dpbusd_epi32(a[p], x, wv);
                }
            }
            for p in 0..P {
                _mm512_storeu_si512(acc.as_mut_ptr().add(p * stride + ob * 16) as *mut _, a[p]);
            }
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
    let kp = 4 * packed.k4;
    let stride = packed.padded_rows();
    // Padding lanes meet zero weights, so their value does not matter.
    scratch.col8.resize(MR * kp, 0x80);
    scratch.acc.resize(TILE * stride, 0);
    let pixels = os.n * os.h * os.w;
    // A pointwise conv over whole groups of 4 channels: each patch is one
    // input pixel, so the input is shifted to u8 once and read in place.
    let pointwise = w.kernel_h == 1
        && w.kernel_w == 1
        && w.stride_h == 1
        && w.stride_w == 1
        && w.pad_top == 0
        && w.pad_left == 0
        && is.h == os.h
        && is.w == os.w
        && is.c == kp;
    if pointwise {
        scratch.shifted.resize(input.len(), 0);
        to_u8(input, &mut scratch.shifted);
    }
    let (cols, acc, shifted) = (&mut scratch.col8, &mut scratch.acc, &scratch.shifted);
    let mut tile = 0;
    while tile < pixels {
        let in_tile = (pixels - tile).min(TILE);
        let mut done = 0;
        while done < in_tile {
            let pix = tile + done;
            let n = (in_tile - done).min(MR);
            if !pointwise {
                for p in 0..n {
                    gather_window(
                        src,
                        ph,
                        pw,
                        is.c,
                        &w,
                        os.h,
                        os.w,
                        pix + p,
                        &mut cols[p * kp..(p + 1) * kp],
                        to_u8,
                    );
                }
            }
            let patch = |p: usize| -> &[u8] {
                if pointwise {
                    &shifted[(pix + p) * kp..(pix + p + 1) * kp]
                } else {
                    &cols[p * kp..(p + 1) * kp]
                }
            };
            let acc = &mut acc[done * stride..];
            // SAFETY: the CPU support was checked above; each patch holds `kp` bytes
            // and `acc` has room for `n` rows of `stride`.
            unsafe {
                if n == MR {
                    gemm::<MR>([patch(0), patch(1), patch(2), patch(3)], packed, acc);
                } else {
                    for p in 0..n {
                        gemm::<1>([patch(p)], packed, &mut acc[p * stride..(p + 1) * stride]);
                    }
                }
            }
            done += n;
        }
        let out = &mut output[tile * os.c..(tile + in_tile) * os.c];
        // SAFETY: AVX-512 was checked above; `acc` holds `in_tile` rows of `stride`.
        unsafe { epilogue!(k).rows512(acc, stride, out, in_tile) };
        tile += in_tile;
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
    let kp = 4 * packed.k4;
    scratch.col8.resize(kp, 0x80);
    scratch.acc.resize(packed.padded_rows(), 0);
    let (col, acc) = (&mut scratch.col8, &mut scratch.acc);
    for (row, out) in input
        .chunks_exact(k.depth)
        .zip(output.chunks_exact_mut(k.units))
    {
        to_u8(row, &mut col[..k.depth]);
        // SAFETY: the CPU support was checked above; `col` holds `kp` bytes.
        unsafe { gemm::<1>([&col[..]], packed, acc) };
        // SAFETY: AVX-512 (hence AVX2) was checked above; every slice holds `units` values.
        unsafe { epilogue!(k).row512(acc, out) };
    }
    Ok(())
}

pub fn depthwise_conv2d(
    k: &DepthwiseConv2d,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    avx2::depthwise_conv2d_with(k, input, output, supported())
}
