//! ADD on eight elements at a time (AVX2), for inputs of the output's shape
//! (residual connections); broadcasting stays scalar. Bit-exact with
//! [`crate::add::add_scalar`]: the same rescaling with 20 bits of headroom
//! and the same requantizations, through [`requant8`].

use std::arch::x86_64::*;

use crate::add::{Add, LEFT_SHIFT, add_by_table, add_scalar};
use crate::error::{KernelError, check_len};
use crate::x86::requant::requant8;

pub fn add(k: &Add, in1: &[i8], in2: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    // A load per element beats three vector requantizations.
    if let Some(done) = add_by_table(k, in1, in2, output) {
        return done;
    }
    // `apply_smaller_than_one` equals `apply` only for multipliers below one,
    // which is all TFLite's Prepare makes; anything else takes the reference.
    let below_one = [k.input1, k.input2, k.output].iter().all(|q| q.shift <= 0);
    if !k.shape.is_elementwise()
        || !below_one
        || k.float.is_some()
        || !crate::x86::avx2::supported()
    {
        return add_scalar(k, in1, in2, output);
    }
    check_len("add", "input 1", in1.len(), k.shape.len1)?;
    check_len("add", "input 2", in2.len(), k.shape.len2)?;
    check_len("add", "output", output.len(), k.shape.out_len)?;
    let n = output.len();
    // SAFETY: AVX2 was checked above; every block of eight is inside all three slices.
    let done = unsafe { add_blocks(k, in1, in2, output) };
    for j in done..n {
        output[j] = k.one(in1[j], in2[j]);
    }
    Ok(())
}

/// The whole blocks of eight; returns how many elements were written.
#[target_feature(enable = "avx2")]
unsafe fn add_blocks(k: &Add, in1: &[i8], in2: &[i8], output: &mut [i8]) -> usize {
    let n = output.len().min(in1.len()).min(in2.len());
    let r = k.rounding;
    let lane = |v: i32| _mm256_set1_epi32(v);
    let (off1, off2, offo) = (
        lane(k.input1_offset),
        lane(k.input2_offset),
        lane(k.output_offset),
    );
    let (m1, s1) = (lane(k.input1.multiplier), lane(k.input1.shift));
    let (m2, s2) = (lane(k.input2.multiplier), lane(k.input2.shift));
    let (mo, so) = (lane(k.output.multiplier), lane(k.output.shift));
    let (lo, hi) = (lane(k.act_min), lane(k.act_max));
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`, so both 8-byte loads are in bounds.
        let (a, b) = unsafe {
            (
                _mm256_cvtepi8_epi32(_mm_loadl_epi64(in1.as_ptr().add(i) as *const __m128i)),
                _mm256_cvtepi8_epi32(_mm_loadl_epi64(in2.as_ptr().add(i) as *const __m128i)),
            )
        };
        let a = _mm256_slli_epi32::<LEFT_SHIFT>(_mm256_add_epi32(a, off1));
        let b = _mm256_slli_epi32::<LEFT_SHIFT>(_mm256_add_epi32(b, off2));
        let sum = _mm256_add_epi32(requant8(a, m1, s1, r), requant8(b, m2, s2, r));
        let q = _mm256_add_epi32(requant8(sum, mo, so, r), offo);
        let y = _mm256_min_epi32(_mm256_max_epi32(q, lo), hi);
        // Clamped to int8 already, so the saturating packs are exact.
        let y16 = _mm_packs_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256::<1>(y));
        let y8 = _mm_packs_epi16(y16, y16);
        // SAFETY: `i + 8 <= n`.
        unsafe { _mm_storel_epi64(output.as_mut_ptr().add(i) as *mut __m128i, y8) };
        i += 8;
    }
    i
}
