//! ADD on eight elements at a time (NEON), for inputs of the output's shape;
//! broadcasting stays scalar. Bit-exact with [`crate::add::add_scalar`].

use std::arch::aarch64::*;

use crate::add::{Add, LEFT_SHIFT, add_by_table, add_scalar};
use crate::error::{KernelError, check_len};

use super::neon::{self, requant4};

pub fn add(k: &Add, in1: &[i8], in2: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    // A load per element beats three vector requantizations.
    if let Some(done) = add_by_table(k, in1, in2, output) {
        return done;
    }
    // `apply_smaller_than_one` equals `apply` only for multipliers below one,
    // which is all TFLite's Prepare makes; anything else takes the reference.
    let below_one = [k.input1, k.input2, k.output].iter().all(|q| q.shift <= 0);
    if !k.shape.is_elementwise() || !below_one || k.float.is_some() || !neon::supported() {
        return add_scalar(k, in1, in2, output);
    }
    check_len("add", "input 1", in1.len(), k.shape.len1)?;
    check_len("add", "input 2", in2.len(), k.shape.len2)?;
    check_len("add", "output", output.len(), k.shape.out_len)?;
    // SAFETY: NEON was checked above.
    let done = unsafe { add_blocks(k, in1, in2, output) };
    for j in done..output.len() {
        output[j] = k.one(in1[j], in2[j]);
    }
    Ok(())
}

/// `requant(requant(a) + requant(b)) + offset`, clamped, on four lanes.
#[inline]
#[target_feature(enable = "neon")]
fn four(k: &Add, a: int32x4_t, b: int32x4_t) -> int32x4_t {
    let r = k.rounding;
    let q = |v: int32x4_t, m: crate::quant::Requant| {
        requant4(v, vdupq_n_s32(m.multiplier), vdupq_n_s32(m.shift), r)
    };
    let a = vshlq_n_s32::<LEFT_SHIFT>(vaddq_s32(a, vdupq_n_s32(k.input1_offset)));
    let b = vshlq_n_s32::<LEFT_SHIFT>(vaddq_s32(b, vdupq_n_s32(k.input2_offset)));
    let sum = vaddq_s32(q(a, k.input1), q(b, k.input2));
    let v = vaddq_s32(q(sum, k.output), vdupq_n_s32(k.output_offset));
    vminq_s32(vmaxq_s32(v, vdupq_n_s32(k.act_min)), vdupq_n_s32(k.act_max))
}

/// The whole blocks of eight; returns how many elements were written.
#[target_feature(enable = "neon")]
fn add_blocks(k: &Add, in1: &[i8], in2: &[i8], output: &mut [i8]) -> usize {
    let n = output.len().min(in1.len()).min(in2.len());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`, so the 8-byte loads and the store are in bounds.
        unsafe {
            let a = vmovl_s8(vld1_s8(in1.as_ptr().add(i)));
            let b = vmovl_s8(vld1_s8(in2.as_ptr().add(i)));
            let lo = four(k, vmovl_s16(vget_low_s16(a)), vmovl_s16(vget_low_s16(b)));
            let hi = four(k, vmovl_high_s16(a), vmovl_high_s16(b));
            // Clamped to int8 already, so narrowing is exact.
            let y = vmovn_s16(vcombine_s16(vmovn_s32(lo), vmovn_s32(hi)));
            vst1_s8(output.as_mut_ptr().add(i), y);
        }
        i += 8;
    }
    i
}
