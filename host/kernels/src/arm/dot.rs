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
use crate::error::{KernelError, check_len};
use crate::fully_connected::FullyConnected;
use crate::pack::{I8_LANES, Packed, PackedI8Rows, gather_window, pad_input};

use super::neon::{self, epilogue_row};

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

/// Output pixels computed together, sharing each weight load.
const MR: usize = 4;

/// `acc[p][r] = Σ_k col[p][k] · w[r][k]` for `P` patches (bytes, length
/// `4·k4`), 16 rows per block in four registers of 4 rows × 4 values.
#[target_feature(enable = "neon,dotprod")]
fn gemm<const P: usize>(cols: [&[u8]; P], w: &PackedI8Rows, acc: &mut [i32]) {
    let stride = w.padded_rows();
    assert!(w.data.len() >= w.blocks * w.k4 * I8_LANES);
    assert!(cols.iter().all(|c| c.len() >= 4 * w.k4));
    assert!(acc.len() >= (P - 1) * stride + w.blocks * 16);
    // SAFETY: the loads and stores stay inside the lengths checked above.
    unsafe {
        for ob in 0..w.blocks {
            let base = w.data.as_ptr().add(ob * w.k4 * I8_LANES);
            let mut a = [[vdupq_n_s32(0); 4]; P];
            for t in 0..w.k4 {
                let wp = base.add(t * I8_LANES);
                let wv = [
                    vld1q_s8(wp),
                    vld1q_s8(wp.add(16)),
                    vld1q_s8(wp.add(32)),
                    vld1q_s8(wp.add(48)),
                ];
                for p in 0..P {
                    let x4 = std::ptr::read_unaligned(cols[p].as_ptr().add(4 * t) as *const i32);
                    let x = vreinterpretq_s8_s32(vdupq_n_s32(x4));
                    for j in 0..4 {
                        a[p][j] = sdot(a[p][j], wv[j], x);
                    }
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

macro_rules! epilogue {
    ($k:expr, $acc:expr, $out:expr) => {
        epilogue_row(
            $acc,
            &$k.bias_folded,
            &$k.multipliers,
            $k.rounding,
            $k.output_offset,
            $k.act_min,
            $k.act_max,
            $out,
        )
    };
}

pub fn conv2d(k: &Conv2d, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    let Some(Packed::I8Signed(packed)) = &k.packed else {
        return neon::conv2d(k, input, output);
    };
    if !supported() {
        return crate::conv::conv2d_scalar(k, input, output);
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
    scratch.col8.resize(MR * kp, 0);
    scratch.acc.resize(MR * stride, 0);
    let (cols, acc) = (&mut scratch.col8, &mut scratch.acc);
    let pixels = os.n * os.h * os.w;
    let mut pix = 0;
    while pix < pixels {
        let n = (pixels - pix).min(MR);
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
                as_bytes,
            );
        }
        // SAFETY: the CPU support was checked above.
        unsafe {
            if n == MR {
                gemm::<MR>(
                    [
                        &cols[..kp],
                        &cols[kp..2 * kp],
                        &cols[2 * kp..3 * kp],
                        &cols[3 * kp..4 * kp],
                    ],
                    packed,
                    acc,
                );
            } else {
                for p in 0..n {
                    gemm::<1>(
                        [&cols[p * kp..(p + 1) * kp]],
                        packed,
                        &mut acc[p * stride..(p + 1) * stride],
                    );
                }
            }
        }
        for p in 0..n {
            let out = &mut output[(pix + p) * os.c..(pix + p + 1) * os.c];
            // SAFETY: NEON was checked above.
            unsafe { epilogue!(k, &acc[p * stride..p * stride + os.c], out) };
        }
        pix += n;
    }
    Ok(())
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
    scratch.col8.resize(kp, 0);
    scratch.acc.resize(packed.padded_rows(), 0);
    let (col, acc) = (&mut scratch.col8, &mut scratch.acc);
    for (row, out) in input
        .chunks_exact(k.depth)
        .zip(output.chunks_exact_mut(k.units))
    {
        as_bytes(row, &mut col[..k.depth]);
        // SAFETY (both calls): the CPU support was checked above.
        unsafe { gemm::<1>([&col[..]], packed, acc) };
        unsafe { epilogue!(k, &acc[..k.units], out) };
    }
    Ok(())
}

pub fn depthwise_conv2d(
    k: &DepthwiseConv2d,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    neon::depthwise_conv2d(k, input, output)
}
