//! NEON with the dot-product extension (Armv8.2 `sdot`; Cortex-A55/A76 and
//! later, Jetson Orin, Raspberry Pi 5): CONV_2D and FULLY_CONNECTED as a
//! broadcast GEMM over 16-row weight blocks, 16 multiply-accumulates per
//! instruction, four output pixels per weight load. `sdot` multiplies
//! signed by signed bytes, so the input is used as it is and only the input
//! offset is folded into the bias (`Packed::new`).
//! Depthwise and the requantization are the NEON set's.
//!
//! Rust's `vdotq_s32` is not stable yet, so `sdot` is one line of inline
//! assembly in a function compiled for the `dotprod` feature.

use std::arch::aarch64::*;
use std::arch::asm;

use crate::conv::Conv2d;
use crate::depthwise::DepthwiseConv2d;
use crate::drive::blocks;
use crate::error::KernelError;
use crate::fully_connected::FullyConnected;
use crate::pack::{I8_LANES, Packed, PackedI8Rows, Runs};

use super::neon::{self, epilogue_rows};

pub fn supported() -> bool {
    std::arch::is_aarch64_feature_detected!("dotprod") && neon::supported()
}

/// `acc[i] += Σ_j a[4i+j]·b[4i+j]` (signed bytes).
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: a register-only instruction of a feature this function is compiled for.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// `acc[p][r] = Σ_k col[p][k] · w[r][k]` for `P` patches (bytes, laid out
/// as `runs` says), 16 rows per block in four registers of 4 rows × 4 values.
#[target_feature(enable = "neon,dotprod")]
fn gemm<const P: usize>(cols: [&[u8]; P], runs: Runs, w: &PackedI8Rows, acc: &mut [i32]) {
    let stride = w.padded_rows();
    runs.check(&cols, w);
    assert!(w.data.len() >= w.blocks * w.k4 * I8_LANES);
    assert!(acc.len() >= (P - 1) * stride + w.blocks * 16);
    // SAFETY: the loads and stores stay inside the lengths checked above.
    unsafe {
        for ob in 0..w.blocks {
            let mut wp = w.data.as_ptr().add(ob * w.k4 * I8_LANES);
            let mut a = [[vdupq_n_s32(0); 4]; P];
            for r in 0..runs.count {
                let x = cols.map(|c| c.as_ptr().add(r * runs.step));
                for u in 0..runs.len4 {
                    let wv = [
                        vld1q_s8(wp),
                        vld1q_s8(wp.add(16)),
                        vld1q_s8(wp.add(32)),
                        vld1q_s8(wp.add(48)),
                    ];
                    for p in 0..P {
                        let x4 = std::ptr::read_unaligned(x[p].add(4 * u) as *const i32);
                        let xv = vreinterpretq_s8_s32(vdupq_n_s32(x4));
                        for j in 0..4 {
                            a[p][j] = sdot(a[p][j], wv[j], xv);
                        }
                    }
                    wp = wp.add(I8_LANES);
                }
            }
            for p in 0..P {
                let out = acc.as_mut_ptr().add(p * stride + ob * 16);
                for j in 0..4 {
                    vst1q_s32(out.add(4 * j), a[p][j]);
                }
            }
        }
    }
}

/// Bytes as they are: `sdot` reads them signed.
#[inline(always)]
fn as_bytes(src: &[i8], dst: &mut [u8]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s as u8;
    }
}

/// Output pixels computed together, sharing each weight load.
const MR: usize = 4;

/// This set's pieces for the block-GEMM driver.
// SAFETY (all three closures): only built after the CPU support was checked.
macro_rules! micro {
    ($k:expr) => {
        blocks::Micro::<MR, _, _, _> {
            to_bytes: as_bytes,
            gemm_p: |cols, runs, w, acc, out| unsafe {
                gemm::<MR>(cols, runs, w, acc);
                epilogue_rows($k, acc, w.padded_rows(), out, MR)
            },
            gemm1: |col, runs, w, acc, out| unsafe {
                gemm::<1>([col], runs, w, acc);
                epilogue_rows($k, acc, w.padded_rows(), out, 1)
            },
            short_min: MR,
        }
    };
}

pub fn conv2d(k: &Conv2d, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    let Some(Packed::I8Signed(packed)) = k.packed.as_deref() else {
        return neon::conv2d(k, input, output);
    };
    if !supported() {
        return crate::conv::conv2d_scalar(k, input, output);
    }
    blocks::conv2d(k, packed, input, output, micro!(k))
}

pub fn fully_connected(
    k: &FullyConnected,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    let Some(Packed::I8Signed(packed)) = &k.packed else {
        return neon::fully_connected(k, input, output);
    };
    if !supported() {
        return crate::fully_connected::fully_connected_scalar(k, input, output);
    }
    blocks::fully_connected(k, packed, input, output, micro!(k))
}

pub fn depthwise_conv2d(
    k: &DepthwiseConv2d,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    neon::depthwise_conv2d(k, input, output)
}
