//! AVX-512 VNNI kernels: CONV_2D and FULLY_CONNECTED as a small GEMM with
//! `vpdpbusd`, 64 int8 multiply-accumulates per instruction, four output
//! pixels by up to 64 channels per pass. The instruction multiplies unsigned by signed
//! bytes, so the input is shifted to u = x + 128 and the shift is folded into
//! the bias (`Packed::new`); the sums stay exact.
//! Depthwise slides 3×3 windows as the AVX2 set does, sixteen channels a
//! vector.

use std::arch::x86_64::*;

use crate::add::{Add, TABLE_SLACK};
use crate::conv::Conv2d;
use crate::depthwise::DepthwiseConv2d;
use crate::drive::blocks;
use crate::drive::channels::{self, ONE_STEP_PIXELS, ONE_STEP_TAPS, Span, one_step_taps};
use crate::error::{KernelError, check_len};
use crate::fully_connected::FullyConnected;
use crate::pack::{I8_LANES, Packed, PackedI8Rows, Runs};
use crate::x86::avx2::{self, Slide};
use crate::x86::requant::{Epilogue, epilogue};

pub fn supported() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
        && avx2::supported()
}

/// `u = x + 128` as a byte: flipping the sign bit.
#[inline(always)]
pub(crate) fn to_u8(src: &[i8], dst: &mut [u8]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = (s as u8) ^ 0x80;
    }
}

/// `Σ_k col[p][k] · w[r][k]` for `P` patches (u8, laid out as `runs`
/// says), 16 rows per vector, requantized by `epi` straight from the
/// registers into `out` (`P` pixels of `w.rows` channels): the input is
/// broadcast 4 bytes at a time, so no horizontal sums are needed. Blocks of
/// 16 rows go together, four for four pixels and two for eight: each
/// broadcast then feeds several `vpdpbusd`, and sixteen independent chains
/// hide its latency, where one block gave four chains and a load per
/// product.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn gemm<const P: usize>(
    cols: [&[u8]; P],
    runs: Runs,
    w: &PackedI8Rows,
    epi: &Epilogue,
    out: &mut [i8],
) {
    let c = w.rows;
    runs.check(&cols, w);
    assert!(w.data.len() >= w.blocks * w.k4 * I8_LANES);
    assert!(out.len() >= P * c && w.blocks * 16 >= c);
    let mut ob = 0;
    // SAFETY: every group of blocks passed lies below `w.blocks`, and the
    // checks above are `gemm_blocks`'s.
    unsafe {
        // Eight pixels by four blocks would need more than the 32 registers.
        while P <= 4 && ob + 4 <= w.blocks {
            gemm_blocks::<P, 4>(cols, runs, w, epi, out, ob);
            ob += 4;
        }
        while ob + 2 <= w.blocks {
            gemm_blocks::<P, 2>(cols, runs, w, epi, out, ob);
            ob += 2;
        }
        if ob < w.blocks {
            gemm_blocks::<P, 1>(cols, runs, w, epi, out, ob);
        }
    }
}

/// Blocks `first..first + NB` of [`gemm`].
///
/// # Safety
/// `gemm`'s checks must hold and `first + NB <= w.blocks`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn gemm_blocks<const P: usize, const NB: usize>(
    cols: [&[u8]; P],
    runs: Runs,
    w: &PackedI8Rows,
    epi: &Epilogue,
    out: &mut [i8],
    first: usize,
) {
    let c = w.rows;
    // SAFETY: the loads stay inside the lengths `gemm` checked, and each
    // block's store covers channels below `c` of a pixel below `P`.
    unsafe {
        let mut wp: [*const i8; NB] =
            std::array::from_fn(|b| w.data.as_ptr().add((first + b) * w.k4 * I8_LANES));
        let mut a = [[_mm512_setzero_si512(); NB]; P];
        for r in 0..runs.count {
            let x = cols.map(|c| c.as_ptr().add(r * runs.step));
            for u in 0..runs.len4 {
                let wv: [__m512i; NB] =
                    std::array::from_fn(|b| _mm512_loadu_si512(wp[b] as *const _));
                for p in 0..P {
                    let xv =
                        _mm512_set1_epi32(std::ptr::read_unaligned(x[p].add(4 * u) as *const i32));
                    for b in 0..NB {
                        a[p][b] = _mm512_dpbusd_epi32(a[p][b], xv, wv[b]);
                    }
                }
                for q in wp.iter_mut() {
                    *q = q.add(I8_LANES);
                }
            }
        }
        for b in 0..NB {
            let block = epi.block512((first + b) * 16, c);
            for (p, acc) in a.iter().enumerate() {
                block.store(acc[b], out.as_mut_ptr().add(p * c + (first + b) * 16));
            }
        }
    }
}

/// `Σ_k col[k] · w[r][k]` for one patch (a fully connected layer at batch
/// 1, a conv's leftover pixels), requantized by `epi` straight from the
/// registers into `out` (`w.rows` channels). A `vpdpbusd` waits about five
/// cycles on its accumulator, so one patch needs many chains to keep two
/// such instructions a cycle busy: up to eight blocks of rows go together,
/// each with two accumulators, for even and odd groups of four bytes,
/// added at the end (wrapping, as the reference sums). With four chains
/// AD's native run took 4.8 µs, with sixteen 4.5 (half of it is here,
/// reading 264 KB of weights from L2).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn gemv(col: &[u8], runs: Runs, w: &PackedI8Rows, epi: &Epilogue, out: &mut [i8]) {
    let c = w.rows;
    runs.check(&[col], w);
    assert!(w.data.len() >= w.blocks * w.k4 * I8_LANES);
    assert!(out.len() >= c && w.blocks * 16 >= c);
    let mut ob = 0;
    // SAFETY: every group of blocks passed lies below `w.blocks`, and the
    // checks above are `gemv_blocks`'s.
    unsafe {
        while ob + 8 <= w.blocks {
            gemv_blocks::<8>(col, runs, w, epi, out, ob);
            ob += 8;
        }
        if ob + 4 <= w.blocks {
            gemv_blocks::<4>(col, runs, w, epi, out, ob);
            ob += 4;
        }
        if ob + 2 <= w.blocks {
            gemv_blocks::<2>(col, runs, w, epi, out, ob);
            ob += 2;
        }
        if ob < w.blocks {
            gemv_blocks::<1>(col, runs, w, epi, out, ob);
        }
    }
}

/// Blocks `first..first + NB` of [`gemv`].
///
/// # Safety
/// `gemv`'s checks must hold and `first + NB <= w.blocks`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn gemv_blocks<const NB: usize>(
    col: &[u8],
    runs: Runs,
    w: &PackedI8Rows,
    epi: &Epilogue,
    out: &mut [i8],
    first: usize,
) {
    let c = w.rows;
    // SAFETY: the loads stay inside the lengths `gemv` checked: each run
    // reads `len4` groups of the patch and of every block's rows; each
    // block's store covers channels below `c`.
    unsafe {
        let mut wp: [*const i8; NB] =
            std::array::from_fn(|b| w.data.as_ptr().add((first + b) * w.k4 * I8_LANES));
        let mut a = [_mm512_setzero_si512(); NB];
        let mut a1 = [_mm512_setzero_si512(); NB];
        for r in 0..runs.count {
            let x = col.as_ptr().add(r * runs.step);
            (a, a1) = run_pairs::<NB>(x, runs.len4, &mut wp, a, a1);
        }
        for b in 0..NB {
            let block = epi.block512((first + b) * 16, c);
            block.store(
                _mm512_add_epi32(a[b], a1[b]),
                out.as_mut_ptr().add((first + b) * 16),
            );
        }
    }
}

/// One run of `len4` groups of four bytes at `x` into the accumulators of
/// `NB` blocks, even groups into `a`, odd ones into `a1`, moving each
/// block's weight pointer past the run. By value in and out: kept in
/// arrays across the loops, the accumulators were stored to the stack
/// after every `vpdpbusd`.
///
/// # Safety
/// `len4` groups must be readable at `x` and at every `wp`.
#[inline(always)]
unsafe fn run_pairs<const NB: usize>(
    x: *const u8,
    len4: usize,
    wp: &mut [*const i8; NB],
    mut a: [__m512i; NB],
    mut a1: [__m512i; NB],
) -> ([__m512i; NB], [__m512i; NB]) {
    // SAFETY: as the caller promises.
    unsafe {
        let mut p = *wp;
        for u in 0..len4 / 2 {
            let x0 = _mm512_set1_epi32(std::ptr::read_unaligned(x.add(8 * u) as *const i32));
            let x1 = _mm512_set1_epi32(std::ptr::read_unaligned(x.add(8 * u + 4) as *const i32));
            for b in 0..NB {
                a[b] = _mm512_dpbusd_epi32(a[b], x0, _mm512_loadu_si512(p[b] as *const _));
                a1[b] = _mm512_dpbusd_epi32(
                    a1[b],
                    x1,
                    _mm512_loadu_si512(p[b].add(I8_LANES) as *const _),
                );
                p[b] = p[b].add(2 * I8_LANES);
            }
        }
        if len4 % 2 == 1 {
            let x0 =
                _mm512_set1_epi32(std::ptr::read_unaligned(x.add(4 * (len4 - 1)) as *const i32));
            for b in 0..NB {
                a[b] = _mm512_dpbusd_epi32(a[b], x0, _mm512_loadu_si512(p[b] as *const _));
                p[b] = p[b].add(I8_LANES);
            }
        }
        *wp = p;
    }
    (a, a1)
}

/// Output pixels computed together, sharing each weight load: eight, with
/// two blocks of channels at a time (sixteen accumulators). Four pixels by
/// four blocks, once the choice for layers of 64 channels or more, measured
/// slower after the weights, multipliers and scratch were aligned
/// (interleaved A/B, 1 thread, native: KWS 41.3 → 36.9 µs and VWW 151 → 146
/// on `avx512`; KWS 35.6 → 34.0 and streaming WW 8.1 → 7.9 on `amx`). Eight
/// pixels by four blocks would spill registers.
const MR: usize = 8;

/// This set's pieces for the block-GEMM driver, `$mr` pixels at a time.
// SAFETY (all three closures): only built after AVX-512 VNNI was checked.
macro_rules! micro {
    ($k:expr, $mr:expr) => {
        blocks::Micro::<$mr, _, _, _> {
            to_bytes: to_u8,
            gemm_p: |cols, runs, w, _acc, out| unsafe {
                gemm::<$mr>(cols, runs, w, &epilogue!($k), out)
            },
            gemm1: |col, runs, w, _acc, out| unsafe { gemv(col, runs, w, &epilogue!($k), out) },
            short_min: $mr,
        }
    };
}

pub fn conv2d(k: &Conv2d, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    let Some(Packed::I8(packed)) = k.packed.as_deref() else {
        return avx2::conv2d(k, input, output);
    };
    if !supported() {
        return avx2::conv2d(k, input, output);
    }
    blocks::conv2d(k, packed, input, output, micro!(k, MR))
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
    blocks::fully_connected(k, packed, input, output, micro!(k, MR))
}

/// A row of depthwise output pixels, sixteen channels at a time (the last
/// block under a mask). A 3×3 window at stride 1 or 2 slides, two taps per
/// `vpdpwssd` (see [`depthwise_3x3`]); a one-dimensional window at a stride
/// equal to its dilation shares its pairs of rows between pixels
/// ([`depthwise_one_step`]: streaming WW native 10.3 → 10.0 µs); other
/// windows take their taps in pairs too ([`depthwise_pairs`]), four pixels
/// per pass.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
fn depthwise_row(
    src: &[i8],
    span: Span,
    taps: &[(usize, usize)],
    window: (usize, usize),
    filter: &[i32],
    pairs: &[i16],
    c: usize,
    acc: &mut [i32],
) {
    span.check(src, taps, filter, c, acc);
    assert!(pairs.len() >= taps.len().div_ceil(2) * 2 * c);
    if let Some(t) = one_step_taps(taps, span.step) {
        // SAFETY: `span.check` above bounds every tap of every pixel, which
        // are all the rows the sliding pairs read; the filter pairs'
        // length is asserted above.
        unsafe {
            by_pairs!(
                t.div_ceil(2),
                depthwise_one_step(src, span, t, pairs, c, acc)
            )
        }
        return;
    }
    let (slide, slid, rest) = Slide::split(src, span, taps, window, c);
    let (acc_slid, acc) = acc.split_at_mut(slid * c);
    // SAFETY: `span.check` above bounds every pixel's taps and the
    // accumulators, which is all the block kernels touch; `Slide::of`
    // checks the one column past the window that sliding pixels read, and
    // the filter pairs' length is asserted above.
    unsafe {
        match slide {
            Some(s) if s.stride == 1 => {
                depthwise_3x3::<1>(src, span.corner, s, slid, pairs, c, acc_slid)
            }
            Some(s) => depthwise_3x3::<2>(src, span.corner, s, slid, pairs, c, acc_slid),
            None => {}
        }
        if rest.pixels > 0 {
            // The common windows keep their filters in registers. A 3×3
            // window's pixels that do not slide (the last of a row) ran
            // faster as nine 32-bit products than as pairs (KWS 44 against
            // 45 µs).
            if let Ok(nine) = <&[(usize, usize); 9]>::try_from(taps) {
                let mut ch = 0;
                while ch < c {
                    let (lanes, k, _) = block_masks(c, ch);
                    depthwise_block::<9>(src, rest, nine, filter, c, ch, k, acc);
                    ch += lanes;
                }
                return;
            }
            // Other windows in chunks of up to eight pairs (a 4×4 window),
            // each chunk's filters in registers, later chunks adding to the
            // sums.
            let np = taps.len().div_ceil(2);
            let mut first = 0;
            while first < np {
                let n = (np - first).min(8);
                by_pairs!(n, depthwise_pairs(src, rest, taps, first, pairs, c, acc));
                first += n;
            }
        }
    }
}

/// A span whose window's `taps` lie one step apart ([`one_step_taps`](channels::one_step_taps)),
/// sixteen channels at a time. The rows of up to [`ONE_STEP_PIXELS`]
/// pixels are interleaved in pairs once, row `r` with row `r + 1` (the
/// last with zeros), and pixel `i` sums `NP` of them, `i`, `i + 2`, …,
/// against the filter pairs: one `vpdpwssd` per pair where
/// [`depthwise_pairs`] first builds each pixel's pairs from its two taps.
/// An odd last tap meets the row after it under a zero filter, as in
/// [`tap_pairs`](crate::depthwise).
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL and VNNI; `span.check` must have
/// passed for `taps` one step apart; `pairs` must hold the `NP =
/// ceil(taps / 2)` filter pairs of `c` channels.
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn depthwise_one_step<const NP: usize>(
    src: &[i8],
    span: Span,
    taps: usize,
    pairs: &[i16],
    c: usize,
    acc: &mut [i32],
) {
    let step = span.step;
    // Rows the span reads: each pixel's window starts one row on.
    let rows = span.pixels + taps - 1;
    let mut ch = 0;
    while ch < c {
        let (lanes, k, k2) = block_masks(c, ch);
        // SAFETY: rows below `rows` are the span's taps, inside `src` as
        // the caller promises, for the channels of `k`; accumulators are
        // stored for the span's pixels.
        unsafe {
            let f = filter_pairs::<NP>(pairs, 0, c, ch, k2);
            let base = src.as_ptr().add(span.corner + ch);
            let out = acc.as_mut_ptr().add(ch);
            let mut i0 = 0;
            while i0 < span.pixels {
                let n = (span.pixels - i0).min(ONE_STEP_PIXELS);
                // Uninitialized: zeroing it was a 3 KB memset a pass.
                let mut pair =
                    [std::mem::MaybeUninit::<__m512i>::uninit(); ONE_STEP_PIXELS + ONE_STEP_TAPS];
                let mut a = _mm_maskz_loadu_epi8(k, base.add(i0 * step));
                for (j, pair) in pair.iter_mut().enumerate().take(n + taps - 1) {
                    let r = i0 + j;
                    let b = if r + 1 < rows {
                        _mm_maskz_loadu_epi8(k, base.add((r + 1) * step))
                    } else {
                        _mm_setzero_si128()
                    };
                    pair.write(interleave(a, b));
                    a = b;
                }
                for i in 0..n {
                    let mut sum = _mm512_setzero_si512();
                    for (p, f) in f.iter().enumerate() {
                        // Pairs below `n + taps - 1` were written above.
                        sum = _mm512_dpwssd_epi32(sum, pair[i + 2 * p].assume_init(), *f);
                    }
                    _mm512_mask_storeu_epi32(out.add((i0 + i) * c), k, sum);
                }
                i0 += n;
            }
        }
        ch += lanes;
    }
}

/// The taps `o0` and `o1` bytes from `base`, sixteen channels (those of
/// `k`) interleaved as i16: the operand `vpdpwssd` multiplies by a filter
/// pair.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL, and both taps' channels of
/// `k` must be readable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn tap_pair(base: *const i8, (o0, o1): (usize, usize), k: __mmask16) -> __m512i {
    unsafe {
        interleave(
            _mm_maskz_loadu_epi8(k, base.add(o0)),
            _mm_maskz_loadu_epi8(k, base.add(o1)),
        )
    }
}

/// Sixteen bytes of `a` and of `b`, interleaved as i16 pairs.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn interleave(a: __m128i, b: __m128i) -> __m512i {
    let lo = _mm_unpacklo_epi8(a, b);
    let hi = _mm_unpackhi_epi8(a, b);
    _mm512_cvtepi8_epi16(_mm256_set_m128i(hi, lo))
}

/// The lanes of the block of up to sixteen channels from `ch` on, and
/// their masks as i32 lanes and as interleaved i16 pairs.
fn block_masks(c: usize, ch: usize) -> (usize, __mmask16, __mmask32) {
    let lanes = (c - ch).min(16);
    if lanes == 16 {
        (16, !0, !0)
    } else {
        (lanes, (1u16 << lanes) - 1, (1u32 << (2 * lanes)) - 1)
    }
}

/// Filter pairs `from..from + NP` of the channel block at `ch` (lanes
/// `k2`), as `vpdpwssd` multiplies them.
///
/// # Safety
/// The CPU must support AVX-512 F and BW, and `pairs` must hold those
/// pairs' lanes of `c` channels.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn filter_pairs<const NP: usize>(
    pairs: &[i16],
    from: usize,
    c: usize,
    ch: usize,
    k2: __mmask32,
) -> [__m512i; NP] {
    let mut f = [_mm512_setzero_si512(); NP];
    for (p, f) in f.iter_mut().enumerate() {
        // SAFETY: as the caller promises.
        *f = unsafe { _mm512_maskz_loadu_epi16(k2, pairs.as_ptr().add(((from + p) * c + ch) * 2)) };
    }
    f
}

/// The AVX2 set's sliding 3×3 window at sixteen channels a vector, the
/// pair products summed into the accumulator by one `vpdpwssd` (no
/// saturation: two i8 products fit i32). The first two rows pair
/// vertically, so one column's interleaved inputs serve every pixel whose
/// window holds it; the last row pairs along itself. A pixel then builds
/// `S` columns' pairs and runs five instructions for 144 products, where
/// a 32-bit multiply and add per tap ran eighteen.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL and VNNI; every pixel's taps of
/// a span of `pixels` from `corner` must lie in `src` with the column past
/// the window, as `Slide::of` checks; `pairs` must hold the five filter
/// pairs of `c` channels and `acc` `pixels · c` accumulators.
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn depthwise_3x3<const S: usize>(
    src: &[i8],
    corner: usize,
    s: Slide,
    pixels: usize,
    pairs: &[i16],
    c: usize,
    acc: &mut [i32],
) {
    let (col, row) = (s.col, s.row);
    let mut ch = 0;
    while ch < c {
        let (lanes, k, k2) = block_masks(c, ch);
        // SAFETY: as the caller promises, for the channels of `k` and `k2`.
        unsafe {
            let f = filter_pairs::<5>(pairs, 0, c, ch, k2);
            let top = src.as_ptr().add(corner + ch);
            let low = top.add(2 * row);
            let out = acc.as_mut_ptr().add(ch);
            let (mut v0, mut v1) = (
                tap_pair(top, (0, row), k),
                tap_pair(top.add(col), (0, row), k),
            );
            let (mut h0, mut h1) = (
                tap_pair(low, (0, col), k),
                tap_pair(low.add(col), (0, col), k),
            );
            for i in 0..pixels {
                let j = i * S;
                let v2 = tap_pair(top.add((j + 2) * col), (0, row), k);
                let h2 = tap_pair(low.add((j + 2) * col), (0, col), k);
                let mut a = _mm512_dpwssd_epi32(_mm512_setzero_si512(), v0, f[0]);
                a = _mm512_dpwssd_epi32(a, v1, f[1]);
                a = _mm512_dpwssd_epi32(a, v2, f[2]);
                a = _mm512_dpwssd_epi32(a, h0, f[3]);
                a = _mm512_dpwssd_epi32(a, h2, f[4]);
                _mm512_mask_storeu_epi32(out.add(i * c), k, a);
                if S == 1 {
                    (v0, v1, h0, h1) = (v1, v2, h1, h2);
                } else if i + 1 < pixels {
                    (v0, v1, h0) = (v2, tap_pair(top.add((j + 3) * col), (0, row), k), h2);
                }
            }
        }
        ch += lanes;
    }
}

/// Pairs `from..from + NP` of any window over the whole span, sixteen
/// channels a vector: taps in pairs (an odd last one with itself, under a
/// zero filter), two per `vpdpwssd`, the pairs' filters held in registers
/// and four pixels a pass. The first chunk of pairs (`from == 0`) writes
/// the sums, later ones add to them.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL and VNNI, the bounds
/// `depthwise_row` checks must hold, `from + NP` must not pass the
/// window's pairs, and `pairs` must hold them for `c` channels.
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn depthwise_pairs<const NP: usize>(
    src: &[i8],
    span: Span,
    taps: &[(usize, usize)],
    from: usize,
    pairs: &[i16],
    c: usize,
    acc: &mut [i32],
) {
    let offs: [(usize, usize); NP] = std::array::from_fn(|p| avx2::pair_offset(taps, from + p));
    const PIX: usize = 4;
    let mut ch = 0;
    while ch < c {
        let (lanes, k, k2) = block_masks(c, ch);
        // SAFETY: as the caller promises, for the channels of `k` and `k2`.
        unsafe {
            let f = filter_pairs::<NP>(pairs, from, c, ch, k2);
            let first = src.as_ptr().add(span.corner + ch);
            let out = acc.as_mut_ptr().add(ch);
            let mut i = 0;
            while i + PIX <= span.pixels {
                let b: [*const i8; PIX] = std::array::from_fn(|q| first.add((i + q) * span.step));
                // Not closures: they lack the target features, and a vector
                // they return goes through memory.
                let mut a = [_mm512_setzero_si512(); PIX];
                if from > 0 {
                    for (q, a) in a.iter_mut().enumerate() {
                        *a = _mm512_maskz_loadu_epi32(k, out.add((i + q) * c));
                    }
                }
                for p in 0..NP {
                    for q in 0..PIX {
                        a[q] = _mm512_dpwssd_epi32(a[q], tap_pair(b[q], offs[p], k), f[p]);
                    }
                }
                for (q, &a) in a.iter().enumerate() {
                    _mm512_mask_storeu_epi32(out.add((i + q) * c), k, a);
                }
                i += PIX;
            }
            while i < span.pixels {
                let b = first.add(i * span.step);
                let mut a = _mm512_setzero_si512();
                if from > 0 {
                    a = _mm512_maskz_loadu_epi32(k, out.add(i * c));
                }
                for p in 0..NP {
                    a = _mm512_dpwssd_epi32(a, tap_pair(b, offs[p], k), f[p]);
                }
                _mm512_mask_storeu_epi32(out.add(i * c), k, a);
                i += 1;
            }
        }
        ch += lanes;
    }
}

/// One block of up to sixteen channels (`k`) from `ch` on, for a window of
/// `T` taps, over the whole span.
///
/// # Safety
/// `span.check` must have passed for these arguments.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[allow(clippy::too_many_arguments)]
unsafe fn depthwise_block<const T: usize>(
    src: &[i8],
    span: Span,
    taps: &[(usize, usize); T],
    filter: &[i32],
    c: usize,
    ch: usize,
    k: __mmask16,
    acc: &mut [i32],
) {
    const PIX: usize = 4;
    unsafe {
        let f: [__m512i; T] =
            taps.map(|(tap, _)| _mm512_maskz_loadu_epi32(k, filter.as_ptr().add(tap * c + ch)));
        let offs: [usize; T] = taps.map(|(_, off)| off);
        let base = |i: usize| src.as_ptr().add(span.corner + i * span.step + ch);
        let out = acc.as_mut_ptr();
        let store = |i: usize, a: __m512i| _mm512_mask_storeu_epi32(out.add(i * c + ch), k, a);
        let mut i = 0;
        while i + PIX <= span.pixels {
            let b: [*const i8; PIX] = std::array::from_fn(|p| base(i + p));
            let mut a = [_mm512_setzero_si512(); PIX];
            for t in 0..T {
                for p in 0..PIX {
                    let x = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, b[p].add(offs[t])));
                    a[p] = _mm512_add_epi32(a[p], _mm512_mullo_epi32(x, f[t]));
                }
            }
            for (p, &a) in a.iter().enumerate() {
                store(i + p, a);
            }
            i += PIX;
        }
        while i < span.pixels {
            let b = base(i);
            let mut a = _mm512_setzero_si512();
            for t in 0..T {
                let x = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, b.add(offs[t])));
                a = _mm512_add_epi32(a, _mm512_mullo_epi32(x, f[t]));
            }
            store(i, a);
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
        return avx2::depthwise_conv2d(k, input, output);
    }
    // SAFETY (both closures): AVX-512 (hence AVX2) was checked above.
    channels::depthwise_conv2d(
        k,
        input,
        output,
        channels::Micro {
            row: |src, span, taps, filter, c, acc| unsafe {
                let window = (k.window.kernel_h, k.window.kernel_w);
                depthwise_row(src, span, taps, window, filter, &k.filter_pairs, c, acc)
            },
            epilogue: |acc, stride, out, pixels| unsafe {
                epilogue!(k).rows512(acc, stride, out, pixels)
            },
        },
    )
}

/// ADD through the table: sixteen entries per `vpgatherdd`, which the
/// table's slack lets read a whole word at any entry. Broadcasting and
/// additions without a table take the AVX2 path.
pub fn add(k: &Add, in1: &[i8], in2: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    let table = match k.table.as_deref() {
        Some(t)
            if k.shape.is_elementwise() && supported() && t.len() >= (1 << 16) + TABLE_SLACK =>
        {
            t
        }
        _ => return crate::x86::add::add(k, in1, in2, output),
    };
    check_len("add", "input 1", in1.len(), k.shape.len1)?;
    check_len("add", "input 2", in2.len(), k.shape.len2)?;
    check_len("add", "output", output.len(), k.shape.out_len)?;
    // SAFETY: AVX-512 was checked above.
    let done = unsafe { add_gathered(table, in1, in2, output) };
    for j in done..output.len() {
        output[j] = table[((in1[j] as u8 as usize) << 8) | in2[j] as u8 as usize];
    }
    Ok(())
}

/// The whole blocks of sixteen; returns how many elements were written.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn add_gathered(table: &[i8], in1: &[i8], in2: &[i8], output: &mut [i8]) -> usize {
    let n = output.len().min(in1.len()).min(in2.len());
    assert!(table.len() >= (1 << 16) + TABLE_SLACK);
    let mut i = 0;
    // SAFETY: every block of sixteen is inside all three slices, and an
    // index `a << 8 | b` reads bytes `index..index + 4` of the table, which
    // the assertion bounds.
    unsafe {
        while i + 16 <= n {
            let a = _mm512_cvtepu8_epi32(_mm_loadu_si128(in1.as_ptr().add(i) as *const __m128i));
            let b = _mm512_cvtepu8_epi32(_mm_loadu_si128(in2.as_ptr().add(i) as *const __m128i));
            let index = _mm512_or_si512(_mm512_slli_epi32::<8>(a), b);
            let words = _mm512_i32gather_epi32::<1>(index, table.as_ptr() as *const i32);
            _mm_storeu_si128(
                output.as_mut_ptr().add(i) as *mut __m128i,
                _mm512_cvtepi32_epi8(words),
            );
            i += 16;
        }
    }
    i
}
