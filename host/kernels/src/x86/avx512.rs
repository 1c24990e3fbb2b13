//! AVX-512 VNNI kernels: CONV_2D and FULLY_CONNECTED as a small GEMM with
//! `vpdpbusd`, 64 int8 multiply-accumulates per instruction, four output
//! pixels per weight load. The instruction multiplies unsigned by signed
//! bytes, so the input is shifted to u = x + 128 and the shift is folded into
//! the bias (`Packed::new`); the sums stay exact.
//! Depthwise reuses the AVX2 kernel with the AVX-512 requantization.

use std::arch::x86_64::*;

use crate::conv::Conv2d;
use crate::depthwise::DepthwiseConv2d;
use crate::drive::blocks::{self, MR};
use crate::drive::channels;
use crate::error::KernelError;
use crate::fully_connected::FullyConnected;
use crate::pack::{I8_LANES, Packed, PackedI8Rows, Runs};
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

/// `acc[p][r] = Σ_k col[p][k] · w[r][k]` for `P` patches (u8, laid out as
/// `runs` says), 16 rows per vector: the input is broadcast 4 bytes at a
/// time, so no horizontal sums are needed.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn gemm<const P: usize>(cols: [&[u8]; P], runs: Runs, w: &PackedI8Rows, acc: &mut [i32]) {
    let stride = w.padded_rows();
    runs.check(&cols, w);
    assert!(w.data.len() >= w.blocks * w.k4 * I8_LANES);
    assert!(acc.len() >= (P - 1) * stride + w.blocks * 16);
    // SAFETY: the loads and stores stay inside the lengths checked above.
    unsafe {
        for ob in 0..w.blocks {
            let mut wp = w.data.as_ptr().add(ob * w.k4 * I8_LANES);
            let mut a = [_mm512_setzero_si512(); P];
            for r in 0..runs.count {
                let x = cols.map(|c| c.as_ptr().add(r * runs.step));
                for u in 0..runs.len4 {
                    let wv = _mm512_loadu_si512(wp as *const _);
                    for p in 0..P {
                        let xv = _mm512_set1_epi32(std::ptr::read_unaligned(
                            x[p].add(4 * u) as *const i32,
                        ));
                        a[p] = _mm512_dpbusd_epi32(a[p], xv, wv);
                    }
                    wp = wp.add(I8_LANES);
                }
            }
            for p in 0..P {
                _mm512_storeu_si512(acc.as_mut_ptr().add(p * stride + ob * 16) as *mut _, a[p]);
            }
        }
    }
}

/// This set's pieces for the block-GEMM driver.
// SAFETY (all three closures): only built after AVX-512 VNNI was checked.
macro_rules! micro {
    ($k:expr) => {
        blocks::Micro {
            to_bytes: to_u8,
            gemm4: |cols, runs, w, acc| unsafe { gemm::<MR>(cols, runs, w, acc) },
            gemm1: |col, runs, w, acc| unsafe { gemm::<1>([col], runs, w, acc) },
            epilogue: |acc, stride, out, pixels| unsafe {
                epilogue!($k).rows512(acc, stride, out, pixels)
            },
        }
    };
}

pub fn conv2d(k: &Conv2d, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    let Some(Packed::I8(packed)) = &k.packed else {
        return avx2::conv2d(k, input, output);
    };
    if !supported() {
        return avx2::conv2d(k, input, output);
    }
    blocks::conv2d(k, packed, input, output, micro!(k))
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
    blocks::fully_connected(k, packed, input, output, micro!(k))
}

pub fn depthwise_conv2d(
    k: &DepthwiseConv2d,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    if k.depth_multiplier != 1 || !supported() {
        return avx2::depthwise_conv2d(k, input, output);
    }
    // SAFETY (both closures): AVX-512 (hence AVX2) was checked above.
    channels::depthwise_conv2d(
        k,
        input,
        output,
        channels::Micro {
            pixel: |src, corner, taps, filter, c, acc| unsafe {
                avx2::depthwise_pixel(src, corner, taps, filter, c, acc)
            },
            epilogue: |acc, stride, out, pixels| unsafe {
                epilogue!(k).rows512(acc, stride, out, pixels)
            },
        },
    )
}
