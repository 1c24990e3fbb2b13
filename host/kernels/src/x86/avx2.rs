//! AVX2 kernels for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED,
//! bit-exact with the scalar references: the same integer sums (wrapping
//! i32), reordered, then the same requantization.
//!
//! Convolution and fully connected multiply each pair of an input patch,
//! broadcast, with sixteen filter rows' pairs (`vpmaddwd`,
//! [`PackedPairs`]), four pixels at a time. A conv reads its windows in
//! place from the input widened to i16 once per call (`drive::pairs`);
//! fully connected rows, and windows with horizontal dilation, are widened
//! a patch at a time (`drive::rows`). Dotting each patch 16 lanes at a time
//! with each row, as before, left a horizontal sum per row and padded the
//! depth to 16: VWW's first layers, of depth 8 and 27, ran at a third of
//! the speed of its later ones, and the whole model took 342 µs where it
//! takes 275 with pairs and 266 with windows read in place.
//! Depthwise works across channels, eight at a time, two taps per
//! `vpmaddwd`.

use std::arch::x86_64::*;

use crate::conv::{Conv2d, conv2d_scalar};
use crate::depthwise::{DepthwiseConv2d, depthwise_conv2d_scalar};
use crate::drive::channels::{self, ONE_STEP_PIXELS, ONE_STEP_TAPS, Span, Taps, one_step_taps};
use crate::drive::{pairs, rows};
use crate::error::KernelError;
use crate::fully_connected::{FullyConnected, fully_connected_scalar};
use crate::pack::{BLOCK_ROWS, PAIR_ROWS, Packed, PackedPairs, PairRuns};
use crate::x86::requant::epilogue;

pub fn supported() -> bool {
    is_x86_feature_detected!("avx2")
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
        // Eight at once too: VWW's first layers have eight channels, and
        // went through the scalar tail a pixel at a time.
        if i + 8 <= n {
            let v = _mm_loadl_epi64(src.as_ptr().add(i) as *const __m128i);
            _mm_storeu_si128(
                dst.as_mut_ptr().add(i) as *mut __m128i,
                _mm_cvtepi8_epi16(v),
            );
            i += 8;
        }
    }
    for j in i..n {
        dst[j] = src[j] as i16;
    }
}

/// Pixels the GEMM and the requantization take together: they share each
/// weight vector's load, and the requantization works its per-channel
/// constants out once per pass. Four pixels by sixteen rows keep eight
/// accumulators, two weight vectors and the broadcast input in registers;
/// six (fifteen registers) measured no better (VWW 3% faster, ResNet 2.5%
/// slower).
const PIXELS: usize = 4;

/// Stores the first `valid` of `v`'s eight lanes at `dst`.
///
/// # Safety
/// The CPU must support AVX2, `valid` must be at least 1, and `min(valid,
/// 8)` values must be writable at `dst`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store_rows(dst: *mut i32, v: __m256i, valid: usize) {
    unsafe {
        if valid >= PAIR_ROWS {
            _mm256_storeu_si256(dst as *mut __m256i, v);
        } else {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid as i32), lanes);
            _mm256_maskstore_epi32(dst, mask, v);
        }
    }
}

/// Sums of `NP` patches with every row of `w`: patch `p`'s go to
/// `acc[p · w.rows..]`, and its pairs lie at `patches[p]` as `runs` say.
/// Sixteen rows a pass, then eight; each pair of a patch is broadcast and
/// multiplied with eight rows' pairs at once, so the sums come out in
/// rows' order with no horizontal adds.
///
/// # Safety
/// The CPU must support AVX2. The lengths are checked here, once per call.
#[target_feature(enable = "avx2")]
unsafe fn dot_pairs<const NP: usize>(
    patches: [&[i16]; NP],
    runs: PairRuns,
    w: &PackedPairs,
    acc: &mut [i32],
) {
    let (c, rows8, pairs) = (w.rows, w.rows8, w.pairs);
    assert!(runs.count * runs.len2 == pairs);
    assert!(patches.iter().all(|p| p.len() >= runs.span()));
    assert!(rows8 >= c && w.data.len() >= pairs * rows8 * 2 && acc.len() >= NP * c);
    let x = patches.map(|p| p.as_ptr());
    let (wd, out) = (w.data.as_ptr(), acc.as_mut_ptr());
    let mut ob = 0;
    // SAFETY: pairs below `pairs` of rows below `rows8` in `w.data`, the
    // runs within each patch, and sums stored for rows below `c` only, all
    // checked above. `w.data` is aligned to 64 bytes and each vector starts
    // a multiple of 8 rows (32 bytes) in. A block of rows from `ob` starts
    // at `ob · 2 · pairs`.
    unsafe {
        // One row (a fully connected layer's GEMV) takes two blocks a pass:
        // four products per broadcast pair.
        if NP == 1 {
            while ob + 2 * BLOCK_ROWS <= rows8 {
                rows_pass::<NP, 4>(x, runs, wd, pairs, ob, 2 * BLOCK_ROWS, out, c);
                ob += 2 * BLOCK_ROWS;
            }
        }
        while ob + BLOCK_ROWS <= rows8 {
            rows_pass::<NP, 2>(x, runs, wd, pairs, ob, 2 * BLOCK_ROWS, out, c);
            ob += BLOCK_ROWS;
        }
        if ob < rows8 {
            rows_pass::<NP, 1>(x, runs, wd, pairs, ob, 2 * PAIR_ROWS, out, c);
        }
    }
}

/// Rows `ob..ob + 8·V` of [`dot_pairs`]: vector `v` lies in the block
/// of rows from `ob + 16·(v / 2)`, which starts `2 · pairs` values a row
/// in, and holds the `v % 2` half of each pair's `w_step` values there.
///
/// # Safety
/// The CPU must support AVX2, and, as [`dot_pairs`] checks: `runs` within
/// each of the `NP` patches at `x`, `runs.count · runs.len2 = pairs`;
/// blocks of `pairs` pairs at `wd` for every row below `ob + 8·V`,
/// aligned; `c` sums of `NP` rows writable at `out`, with `ob < c`.
#[inline]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_pass<const NP: usize, const V: usize>(
    x: [*const i16; NP],
    runs: PairRuns,
    wd: *const i16,
    pairs: usize,
    ob: usize,
    w_step: usize,
    out: *mut i32,
    c: usize,
) {
    unsafe {
        let mut wp: [*const i16; V] = std::array::from_fn(|v| {
            wd.add((ob + BLOCK_ROWS * (v / 2)) * 2 * pairs + 2 * PAIR_ROWS * (v % 2))
        });
        let mut a = [[_mm256_setzero_si256(); V]; NP];
        for r in 0..runs.count {
            let run: [*const i16; NP] = std::array::from_fn(|p| x[p].add(r * runs.step));
            let mut first = 0;
            if NP == 1 {
                // A GEMV: two pairs an iteration, the second into sums of
                // its own (added in after: i32 sums wrap alike in any
                // order), so the loop's own instructions are shared by
                // twice the work.
                let mut b = [_mm256_setzero_si256(); V];
                while first + 2 <= runs.len2 {
                    let x0 =
                        _mm256_set1_epi32((run[0].add(2 * first) as *const i32).read_unaligned());
                    let x1 = _mm256_set1_epi32(
                        (run[0].add(2 * first + 2) as *const i32).read_unaligned(),
                    );
                    for v in 0..V {
                        let w0 = _mm256_load_si256(wp[v] as *const __m256i);
                        let w1 = _mm256_load_si256(wp[v].add(w_step) as *const __m256i);
                        a[0][v] = _mm256_add_epi32(a[0][v], _mm256_madd_epi16(x0, w0));
                        b[v] = _mm256_add_epi32(b[v], _mm256_madd_epi16(x1, w1));
                    }
                    for p in wp.iter_mut() {
                        *p = p.add(2 * w_step);
                    }
                    first += 2;
                }
                for v in 0..V {
                    a[0][v] = _mm256_add_epi32(a[0][v], b[v]);
                }
            }
            for i in first..runs.len2 {
                let w: [__m256i; V] =
                    std::array::from_fn(|v| _mm256_load_si256(wp[v] as *const __m256i));
                for (p, a) in a.iter_mut().enumerate() {
                    let pair = (run[p].add(2 * i) as *const i32).read_unaligned();
                    let xv = _mm256_set1_epi32(pair);
                    for v in 0..V {
                        a[v] = _mm256_add_epi32(a[v], _mm256_madd_epi16(xv, w[v]));
                    }
                }
                for p in wp.iter_mut() {
                    *p = p.add(w_step);
                }
            }
        }
        for (p, a) in a.iter().enumerate() {
            for (v, &a) in a.iter().enumerate() {
                // Rows past `c` are padding: only the last vector meets them.
                let row = ob + PAIR_ROWS * v;
                if row < c {
                    store_rows(out.add(p * c + row), a, c - row);
                }
            }
        }
    }
}

/// This set's pieces for the i16-row driver, which gathers patches `kp`
/// apart (fully connected rows, and windows with horizontal dilation).
// SAFETY (all four closures): only built after AVX2 support was checked.
macro_rules! micro {
    ($k:expr) => {
        rows::Micro::<PIXELS, _, _, _, _> {
            widen: |x: &[i8], d: &mut [i16]| unsafe { widen(x, d) },
            dot: |col: &[i16], w: &PackedPairs, acc: &mut [i32]| unsafe {
                dot_pairs::<1>([col], PairRuns::contiguous(w.pairs), w, acc)
            },
            dot_p: |cols: &[i16], w: &PackedPairs, acc: &mut [i32]| unsafe {
                let patches = std::array::from_fn(|p| &cols[(p * w.kp).min(cols.len())..]);
                dot_pairs::<PIXELS>(patches, PairRuns::contiguous(w.pairs), w, acc)
            },
            epilogue: |acc: &[i32], out: &mut [i8], pixels: usize| unsafe {
                let c = out.len() / pixels.max(1);
                epilogue!($k).rows(acc, c, out, pixels)
            },
        }
    };
}

pub fn conv2d(k: &Conv2d, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    let Some(Packed::Pairs(packed)) = k.packed.as_deref() else {
        return conv2d_scalar(k, input, output);
    };
    if !supported() {
        return conv2d_scalar(k, input, output);
    }
    // SAFETY (all four closures): AVX2 support was checked above.
    let in_place = pairs::InPlace::<PIXELS, _, _, _, _> {
        widen: |x: &[i8], d: &mut [i16]| unsafe { widen(x, d) },
        dot: |patch: &[i16], runs: PairRuns, w: &PackedPairs, acc: &mut [i32]| unsafe {
            dot_pairs::<1>([patch], runs, w, acc)
        },
        dot_p: |patches: [&[i16]; PIXELS], runs: PairRuns, w: &PackedPairs, acc: &mut [i32]| unsafe {
            dot_pairs::<PIXELS>(patches, runs, w, acc)
        },
        epilogue: |acc: &[i32], out: &mut [i8], pixels: usize| unsafe {
            let c = out.len() / pixels.max(1);
            epilogue!(k).rows(acc, c, out, pixels)
        },
    };
    if pairs::reads_in_place(k, packed) {
        pairs::conv2d(k, packed, input, output, in_place)
    } else {
        rows::conv2d(k, packed, input, output, micro!(k))
    }
}

pub fn fully_connected(
    k: &FullyConnected,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    let Some(Packed::Pairs(packed)) = &k.packed else {
        return fully_connected_scalar(k, input, output);
    };
    if !supported() {
        return fully_connected_scalar(k, input, output);
    }
    rows::fully_connected(k, packed, input, output, micro!(k))
}

/// Two taps' inputs at `base` (eight channels each) interleaved and
/// widened to i16: `x0[0], x1[0], x0[1], x1[1], …`, the order of the
/// interleaved filter pairs.
///
/// # Safety
/// The CPU must support AVX2, and eight bytes must be readable at
/// `base + o0` and at `base + o1`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn tap_pair(base: *const i8, (o0, o1): (usize, usize)) -> __m256i {
    unsafe {
        interleave(
            _mm_loadl_epi64(base.add(o0) as *const __m128i),
            _mm_loadl_epi64(base.add(o1) as *const __m128i),
        )
    }
}

/// The low eight bytes of `a` and of `b`, interleaved as i16 pairs.
#[inline]
#[target_feature(enable = "avx2")]
fn interleave(a: __m128i, b: __m128i) -> __m256i {
    _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b))
}

/// The element offsets of pair `p`: taps come in
/// [`pair_taps`](crate::depthwise::pair_taps) order, pair `p` being taps
/// `2p` and `2p + 1`, an odd last tap paired with itself (under a zero
/// filter).
pub(crate) fn pair_offset(taps: &Taps, p: usize) -> (usize, usize) {
    let last = taps.len().saturating_sub(1);
    (
        taps.get(2 * p).map_or(0, |t| t.1),
        taps.get((2 * p + 1).min(last)).map_or(0, |t| t.1),
    )
}

/// [`pair_offset`] for the first `P` pairs.
pub(crate) fn pair_offsets<const P: usize>(taps: &Taps) -> [(usize, usize); P] {
    let mut offs = [(0, 0); P];
    for (p, o) in offs.iter_mut().enumerate() {
        *o = pair_offset(taps, p);
    }
    offs
}

/// Every whole group of eight channels over the whole span, a pixel at a
/// time, for any window.
///
/// # Safety
/// The CPU must support AVX2, the bounds `depthwise_row` checks must hold,
/// and `whole <= c` must be a multiple of eight.
#[inline(never)]
#[target_feature(enable = "avx2")]
unsafe fn depthwise_pixels(
    src: &[i8],
    span: Span,
    taps: &Taps,
    pairs: &[i16],
    c: usize,
    whole: usize,
    acc: &mut [i32],
) {
    let np = taps.len().div_ceil(2);
    unsafe {
        for ch in (0..whole).step_by(8) {
            for i in 0..span.pixels {
                let base = src.as_ptr().add(span.corner + i * span.step + ch);
                let mut a = _mm256_setzero_si256();
                for p in 0..np {
                    let f =
                        _mm256_loadu_si256(pairs.as_ptr().add((p * c + ch) * 2) as *const __m256i);
                    a = _mm256_add_epi32(
                        a,
                        _mm256_madd_epi16(tap_pair(base, pair_offset(taps, p)), f),
                    );
                }
                _mm256_storeu_si256(acc.as_mut_ptr().add(i * c + ch) as *mut __m256i, a);
            }
        }
    }
}

/// A row of depthwise output pixels, eight channels at a time. Two taps
/// share one `vpmaddwd` (their inputs interleaved as i16 against the
/// filter's interleaved pairs), which does sixteen multiplies and the
/// first add where a 32-bit multiply did eight. The sums are the scalar
/// reference's products added in another order: exact, as i8 products
/// and their pairwise sums fit i32.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
fn depthwise_row(
    src: &[i8],
    span: Span,
    taps: &Taps,
    (kh, kw): (usize, usize),
    filter: &[i32],
    pairs: &[i16],
    c: usize,
    acc: &mut [i32],
) {
    span.check(src, taps, filter, c, acc);
    assert_eq!(taps.len(), kh * kw);
    let np = taps.len().div_ceil(2);
    assert!(pairs.len() >= np * 2 * c);
    let whole = c - c % 8;
    if let Some(t) = one_step_taps(taps, span.step).filter(|_| whole > 0) {
        // SAFETY: as for the kernels below; the rows the pairs read are
        // the span's taps.
        unsafe {
            by_pairs!(
                t.div_ceil(2),
                depthwise_one_step(src, span, t, pairs, c, whole, acc)
            )
        }
    } else {
        depthwise_row_pairs(src, span, taps, (kh, kw), pairs, c, whole, acc);
    }
    if whole < c {
        for (i, acc) in acc.chunks_exact_mut(c).take(span.pixels).enumerate() {
            channels::pixel_tail(
                src,
                span.corner + i * span.step,
                taps,
                filter,
                c,
                whole,
                acc,
            );
        }
    }
}

/// [`depthwise_row`]'s whole groups of eight channels for windows that do
/// not take one step a pixel.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
fn depthwise_row_pairs(
    src: &[i8],
    span: Span,
    taps: &Taps,
    (kh, kw): (usize, usize),
    pairs: &[i16],
    c: usize,
    whole: usize,
    acc: &mut [i32],
) {
    let np = taps.len().div_ceil(2);
    // The pixels that slide, then the rest (at most the last) by the block.
    let (slide, slid, rest) = Slide::split(src, span, taps, (kh, kw), c);
    let (acc_slid, acc_rest) = acc.split_at_mut(slid * c);
    // SAFETY: `span.check` bounds every pixel's taps over its `c` channels
    // and the accumulators; the blocks read channels below `whole <= c`,
    // and the filter pairs below `np * 2 * c`, asserted above; `Slide::of`
    // checks the one column past the window its pixels read.
    // Each kernel runs out of line, with its own loop over the channel
    // groups: inlined into one loop here they kept dozens of pointers
    // spilled on the stack, and one-pixel rows (streaming WW's) ran 25%
    // slower.
    unsafe {
        match slide {
            Some(s) if s.stride == 1 => {
                depthwise_3x3::<1>(src, span, s, slid, pairs, c, whole, acc_slid)
            }
            Some(s) => depthwise_3x3::<2>(src, span, s, slid, pairs, c, whole, acc_slid),
            None => {}
        }
        if rest.pixels > 0 {
            if np == 5 {
                depthwise_block::<5>(src, rest, pair_offsets(taps), pairs, c, whole, acc_rest);
            } else {
                depthwise_pixels(src, rest, taps, pairs, c, whole, acc_rest);
            }
        }
    }
}

/// The AVX-512 set's `depthwise_one_step` on eight channels a vector, for
/// every whole group of eight: each pair of rows `r`, `r + 1` interleaved
/// once, then summed into every pixel whose window holds it.
///
/// # Safety
/// The CPU must support AVX2; `span.check` must have passed for `taps`
/// one step apart ([`one_step_taps`]); `pairs` must hold the `NP =
/// ceil(taps / 2)` filter pairs of `c` channels; `whole <= c` must be a
/// multiple of eight.
#[inline(never)]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn depthwise_one_step<const NP: usize>(
    src: &[i8],
    span: Span,
    taps: usize,
    pairs: &[i16],
    c: usize,
    whole: usize,
    acc: &mut [i32],
) {
    let step = span.step;
    let rows = span.pixels + taps - 1;
    for ch in (0..whole).step_by(8) {
        // SAFETY: rows below `rows` are the span's taps, inside `src` for
        // channels below `whole` as the caller promises; the filter pairs
        // and the accumulators likewise.
        unsafe {
            let mut f = [_mm256_setzero_si256(); NP];
            for (p, f) in f.iter_mut().enumerate() {
                *f = _mm256_loadu_si256(pairs.as_ptr().add((p * c + ch) * 2) as *const __m256i);
            }
            let base = src.as_ptr().add(span.corner + ch);
            let out = acc.as_mut_ptr().add(ch);
            let mut i0 = 0;
            while i0 < span.pixels {
                let n = (span.pixels - i0).min(ONE_STEP_PIXELS);
                let mut pair =
                    [std::mem::MaybeUninit::<__m256i>::uninit(); ONE_STEP_PIXELS + ONE_STEP_TAPS];
                let mut a = _mm_loadl_epi64(base.add(i0 * step) as *const __m128i);
                for (j, pair) in pair.iter_mut().enumerate().take(n + taps - 1) {
                    let r = i0 + j;
                    let b = if r + 1 < rows {
                        _mm_loadl_epi64(base.add((r + 1) * step) as *const __m128i)
                    } else {
                        _mm_setzero_si128()
                    };
                    pair.write(interleave(a, b));
                    a = b;
                }
                for i in 0..n {
                    let mut sum = _mm256_setzero_si256();
                    for (p, f) in f.iter().enumerate() {
                        // Pairs below `n + taps - 1` were written above.
                        let x = pair[i + 2 * p].assume_init();
                        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(x, *f));
                    }
                    _mm256_storeu_si256(out.add((i0 + i) * c) as *mut __m256i, sum);
                }
                i0 += n;
            }
        }
    }
}

/// Eight channels from `ch` on over the whole span, for a window of `P`
/// pairs of taps (3×3 has five), four pixels a pass with the filter
/// pairs held in registers.
///
/// # Safety
/// The CPU must support AVX2, and the bounds `depthwise_row` checks must hold.
#[inline(never)]
#[target_feature(enable = "avx2")]
unsafe fn depthwise_block_at<const P: usize>(
    src: &[i8],
    span: Span,
    offs: [(usize, usize); P],
    pairs: &[i16],
    c: usize,
    ch: usize,
    acc: &mut [i32],
) {
    const PIX: usize = 4;
    unsafe {
        let mut f = [_mm256_setzero_si256(); P];
        for (p, f) in f.iter_mut().enumerate() {
            *f = _mm256_loadu_si256(pairs.as_ptr().add((p * c + ch) * 2) as *const __m256i);
        }
        let first = src.as_ptr().add(span.corner + ch);
        let out = acc.as_mut_ptr();
        let mut i = 0;
        while i + PIX <= span.pixels {
            let b: [*const i8; PIX] = [0, 1, 2, 3].map(|q| first.add((i + q) * span.step));
            let mut a = [_mm256_setzero_si256(); PIX];
            for p in 0..P {
                for q in 0..PIX {
                    a[q] = _mm256_add_epi32(a[q], _mm256_madd_epi16(tap_pair(b[q], offs[p]), f[p]));
                }
            }
            for (q, a) in a.into_iter().enumerate() {
                _mm256_storeu_si256(out.add((i + q) * c + ch) as *mut __m256i, a);
            }
            i += PIX;
        }
        while i < span.pixels {
            let b = first.add(i * span.step);
            let mut a = _mm256_setzero_si256();
            for p in 0..P {
                a = _mm256_add_epi32(a, _mm256_madd_epi16(tap_pair(b, offs[p]), f[p]));
            }
            _mm256_storeu_si256(out.add(i * c + ch) as *mut __m256i, a);
            i += 1;
        }
    }
}

/// [`depthwise_block_at`] for every whole group of eight channels.
///
/// # Safety
/// As for [`depthwise_block_at`], with `whole <= c` a multiple of eight.
#[inline(never)]
#[target_feature(enable = "avx2")]
unsafe fn depthwise_block<const P: usize>(
    src: &[i8],
    span: Span,
    offs: [(usize, usize); P],
    pairs: &[i16],
    c: usize,
    whole: usize,
    acc: &mut [i32],
) {
    for ch in (0..whole).step_by(8) {
        unsafe { depthwise_block_at::<P>(src, span, offs, pairs, c, ch, acc) };
    }
}

/// [`depthwise_3x3_at`] for every whole group of eight channels.
///
/// # Safety
/// As for [`depthwise_3x3_at`], with `whole <= c` a multiple of eight.
#[inline(never)]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn depthwise_3x3<const S: usize>(
    src: &[i8],
    span: Span,
    s: Slide,
    pixels: usize,
    pairs: &[i16],
    c: usize,
    whole: usize,
    acc: &mut [i32],
) {
    for ch in (0..whole).step_by(8) {
        unsafe { depthwise_3x3_at::<S>(src, span, s, pixels, pairs, c, ch, acc) };
    }
}

/// A 3×3 window whose pixels start `stride` columns apart (1 or 2), so
/// that neighbours share input columns: `col` and `row` are the element
/// offsets of the next tap to the right and below.
#[derive(Clone, Copy)]
pub(crate) struct Slide {
    pub(crate) stride: usize,
    pub(crate) col: usize,
    pub(crate) row: usize,
}

impl Slide {
    /// The sliding geometry of this span, if it has one, and how many of
    /// its pixels may slide: those whose last row's pairs, which read one
    /// column past the window (under a zero filter), stay inside `src`.
    pub(crate) fn of(
        src: &[i8],
        span: Span,
        taps: &Taps,
        (kh, kw): (usize, usize),
        c: usize,
    ) -> Option<(Slide, usize)> {
        if (kh, kw) != (3, 3) || span.pixels == 0 {
            return None;
        }
        // Pair order puts taps 0, 3, 1, 4, …: tap 1 (one column right) third,
        // tap 3 (one row down) second.
        debug_assert_eq!((taps[2].0, taps[1].0), (1, 3));
        let (col, row) = (taps[2].1, taps[1].1);
        let stride = [1, 2].into_iter().find(|&s| span.step == s * col)?;
        // Only the last pixel can fail: every earlier one's extra column
        // lies inside the next pixel's window (the stride is a column or more).
        let last = span.corner + (span.pixels - 1) * span.step;
        let fits = last + 2 * row + 3 * col + c <= src.len();
        let n = if fits { span.pixels } else { span.pixels - 1 };
        (n > 0).then_some((Slide { stride, col, row }, n))
    }

    /// [`Slide::of`] as the row kernels use it: the sliding geometry if
    /// any, how many of the span's first pixels slide, and the span of the
    /// pixels after them.
    pub(crate) fn split(
        src: &[i8],
        span: Span,
        taps: &Taps,
        window: (usize, usize),
        c: usize,
    ) -> (Option<Slide>, usize, Span) {
        let (slide, slid) = match Slide::of(src, span, taps, window, c) {
            Some((s, n)) => (Some(s), n),
            None => (None, 0),
        };
        let rest = Span {
            corner: span.corner + slid * span.step,
            pixels: span.pixels - slid,
            ..span
        };
        (slide, slid, rest)
    }
}

/// Eight channels from `ch` on over the first `pixels` of a 3×3 window that
/// slides by `S` columns. The window's first two rows pair vertically, so
/// the interleaved inputs of one column serve every pixel whose window
/// holds it; the last row pairs along itself, each pair again shared. A
/// pixel then builds `S` columns' pairs where the generic block builds
/// five.
///
/// # Safety
/// The CPU must support AVX2, the bounds `depthwise_row` checks must hold,
/// and `Slide::of` must have returned `(s, n)` for this span, `pixels <= n`.
#[inline]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn depthwise_3x3_at<const S: usize>(
    src: &[i8],
    span: Span,
    s: Slide,
    pixels: usize,
    pairs: &[i16],
    c: usize,
    ch: usize,
    acc: &mut [i32],
) {
    unsafe {
        // Pairs in `pair_taps` order: columns 0..3 of rows 0-1, then row
        // 2's (0, 1) and (2, nothing).
        let mut f = [_mm256_setzero_si256(); 5];
        for (p, f) in f.iter_mut().enumerate() {
            *f = _mm256_loadu_si256(pairs.as_ptr().add((p * c + ch) * 2) as *const __m256i);
        }
        // Column `j`'s rows 0 and 1 start at `top + j·col`; row 2 of
        // columns j and j + 1 at `low + j·col`. (Plain arithmetic, not
        // closures: a closure returning a vector was left out of line.)
        let top = src.as_ptr().add(span.corner + ch);
        let low = top.add(2 * s.row);
        let (col, row) = (s.col, s.row);
        let out = acc.as_mut_ptr().add(ch);
        let (mut v0, mut v1) = (tap_pair(top, (0, row)), tap_pair(top.add(col), (0, row)));
        let (mut h0, mut h1) = (tap_pair(low, (0, col)), tap_pair(low.add(col), (0, col)));
        for i in 0..pixels {
            let j = i * S;
            let v2 = tap_pair(top.add((j + 2) * col), (0, row));
            let h2 = tap_pair(low.add((j + 2) * col), (0, col));
            let mut a = _mm256_madd_epi16(v0, f[0]);
            a = _mm256_add_epi32(a, _mm256_madd_epi16(v1, f[1]));
            a = _mm256_add_epi32(a, _mm256_madd_epi16(v2, f[2]));
            a = _mm256_add_epi32(a, _mm256_madd_epi16(h0, f[3]));
            a = _mm256_add_epi32(a, _mm256_madd_epi16(h2, f[4]));
            _mm256_storeu_si256(out.add(i * c) as *mut __m256i, a);
            if S == 1 {
                (v0, v1, h0, h1) = (v1, v2, h1, h2);
            } else if i + 1 < pixels {
                // The next window starts at column j + 2.
                (v0, v1, h0) = (v2, tap_pair(top.add((j + 3) * col), (0, row)), h2);
            }
        }
    }
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
            row: |src, span, taps, filter, c, acc| unsafe {
                let window = (k.window.kernel_h, k.window.kernel_w);
                depthwise_row(src, span, taps, window, filter, &k.filter_pairs, c, acc)
            },
            epilogue: |acc, stride, out, pixels| unsafe {
                epilogue!(k).rows(acc, stride, out, pixels)
            },
        },
    )
}
