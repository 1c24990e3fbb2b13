//! Depthwise conv across channels: the accumulators of a row of output
//! pixels, then one requantization call for the row. A depth multiplier
//! above 1 repeats each input channel that many times first, which makes
//! it a depthwise conv of multiplier 1 over the output's channels.

use crate::depthwise::{DepthwiseConv2d, pair_taps};
use crate::error::{KernelError, check_len};
use crate::geometry::Shape4;
use crate::pack::pad_input;

/// Panics unless every tap of a pixel at `corner` reads inside `src`: the
/// vector pixel kernels check this once, then load without bounds checks.
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
pub fn check_pixel(
    src: &[i8],
    corner: usize,
    taps: &[(usize, usize)],
    filter: &[i32],
    c: usize,
    acc: &[i32],
) {
    // In pair order too the last tap is the farthest.
    let last = taps.last().map_or(0, |t| t.1);
    debug_assert!(taps.iter().all(|t| t.1 <= last));
    assert!(corner + last + c <= src.len() && filter.len() >= taps.len() * c && acc.len() >= c);
}

/// The channels from `from` on, one at a time (what a vector leaves over).
pub fn pixel_tail(
    src: &[i8],
    corner: usize,
    taps: &[(usize, usize)],
    filter: &[i32],
    c: usize,
    from: usize,
    acc: &mut [i32],
) {
    for ch in from..c {
        let mut a = 0i32;
        for &(tap, off) in taps {
            a = a.wrapping_add((src[corner + off + ch] as i32).wrapping_mul(filter[tap * c + ch]));
        }
        acc[ch] = a;
    }
}

/// A row of output pixels: pixel `i`'s window starts at `corner + i·step`.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub corner: usize,
    pub step: usize,
    pub pixels: usize,
}

impl Span {
    /// Panics unless every tap of every pixel reads inside `src` and the
    /// accumulators fit: what a vector row kernel checks once.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub fn check(
        &self,
        src: &[i8],
        taps: &[(usize, usize)],
        filter: &[i32],
        c: usize,
        acc: &[i32],
    ) {
        if self.pixels == 0 {
            return;
        }
        let last = taps.last().map_or(0, |t| t.1);
        debug_assert!(taps.iter().all(|t| t.1 <= last));
        assert!(self.corner + (self.pixels - 1) * self.step + last + c <= src.len());
        assert!(filter.len() >= taps.len() * c && acc.len() >= self.pixels * c);
    }
}

/// Taps as (tap index, offset from the window's corner), in
/// [`pair_taps`] order: the last is the farthest.
pub type Taps = [(usize, usize)];

/// A row kernel made of a one-pixel kernel, for the sets whose pixel
/// kernel is fast enough on its own.
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
pub fn by_pixel<P>(pixel: P) -> impl Fn(&[i8], Span, &Taps, &[i32], usize, &mut [i32])
where
    P: Fn(&[i8], usize, &[(usize, usize)], &[i32], usize, &mut [i32]),
{
    move |src, span, taps, filter, c, acc| {
        for (i, acc) in acc.chunks_exact_mut(c).take(span.pixels).enumerate() {
            pixel(src, span.corner + i * span.step, taps, filter, c, acc);
        }
    }
}

/// One instruction set's pieces, as closures so that each set gets its own
/// monomorphized driver with direct calls.
pub struct Micro<R, E>
where
    R: Fn(&[i8], Span, &[(usize, usize)], &[i32], usize, &mut [i32]),
    E: Fn(&[i32], usize, &mut [i8], usize),
{
    /// For each pixel `i` of the span and each of the `c` channels,
    /// `acc[i·c + ch] = Σ_taps src[corner_i + off + ch] · filter[tap][ch]`.
    pub row: R,
    /// Requantize `pixels` rows of accumulators `stride` apart into `out`.
    pub epilogue: E,
}

pub fn depthwise_conv2d<R, E>(
    k: &DepthwiseConv2d,
    input: &[i8],
    output: &mut [i8],
    m: Micro<R, E>,
) -> Result<(), KernelError>
where
    R: Fn(&[i8], Span, &[(usize, usize)], &[i32], usize, &mut [i32]),
    E: Fn(&[i32], usize, &mut [i8], usize),
{
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
    let (input, is) = if k.depth_multiplier > 1 {
        let dm = k.depth_multiplier;
        scratch.expanded.clear();
        scratch.expanded.reserve_exact(os.n * is.h * is.w * os.c);
        scratch
            .expanded
            .extend(input.iter().flat_map(|&x| std::iter::repeat_n(x, dm)));
        (&scratch.expanded[..], Shape4 { c: os.c, ..is })
    } else {
        (input, is)
    };
    let zp = (-k.input_offset).clamp(-128, 127) as i8;
    let (src, ph, pw) = pad_input(input, is, &w, os.h, os.w, zp, &mut scratch.padded);
    let c = os.c;
    // Tap offsets relative to the window's top-left corner, in elements, in
    // the order of the filter's tap pairs (any order sums the same; the
    // AVX2 set reads taps 2p and 2p + 1 as pair p).
    scratch.taps.clear();
    for (a, b) in pair_taps(w.kernel_h, w.kernel_w) {
        for t in std::iter::once(a).chain((b != a).then_some(b)) {
            let (ky, kx) = (t / w.kernel_w, t % w.kernel_w);
            scratch
                .taps
                .push((t, (ky * w.dilation_h * pw + kx * w.dilation_w) * c));
        }
    }
    // An output one pixel wide (streaming WW's time columns) runs down the
    // column as one span: one call per image where a row each spent more
    // on the calls and the per-row requantization set-up than on the taps.
    if os.w == 1 {
        scratch.acc.resize(os.h * c, 0);
        let (taps, acc) = (&scratch.taps, &mut scratch.acc);
        for b in 0..os.n {
            let span = Span {
                corner: b * ph * pw * c,
                step: w.stride_h * pw * c,
                pixels: os.h,
            };
            (m.row)(src, span, taps, &k.filter_i32, c, acc);
            let first = os.offset(b, 0, 0, 0);
            (m.epilogue)(acc, c, &mut output[first..first + os.h * c], os.h);
        }
        return Ok(());
    }
    scratch.acc.resize(os.w * c, 0);
    let (taps, acc) = (&scratch.taps, &mut scratch.acc);
    for b in 0..os.n {
        for oy in 0..os.h {
            let span = Span {
                corner: (b * ph + oy * w.stride_h) * pw * c,
                step: w.stride_w * c,
                pixels: os.w,
            };
            (m.row)(src, span, taps, &k.filter_i32, c, acc);
            let row = os.offset(b, oy, 0, 0);
            (m.epilogue)(acc, c, &mut output[row..row + os.w * c], os.w);
        }
    }
    Ok(())
}

/// The most taps the x86 sets' one-step depthwise kernels take: eight filter
/// pairs, held in registers.
#[cfg(target_arch = "x86_64")]
pub(crate) const ONE_STEP_TAPS: usize = 16;

/// Pixels those kernels take at a time: their rows' pairs are built once
/// into a buffer on the stack.
#[cfg(target_arch = "x86_64")]
pub(crate) const ONE_STEP_PIXELS: usize = 32;

/// The number of taps when each lies one pixel step past the one before
/// (a one-dimensional window at a stride equal to its dilation, such as
/// streaming WW's columns over time): then pixel `i + 1`'s window is pixel `i`'s moved one tap,
/// and the pair of rows `r` and `r + 1` serves every window holding both.
/// Taps come in [`pair_taps`](crate::depthwise::pair_taps) order, which
/// for such a window is tap order, pair `p` being taps `2p` and `2p + 1`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn one_step_taps(taps: &[(usize, usize)], step: usize) -> Option<usize> {
    let n = taps.len();
    let one_step = taps
        .iter()
        .enumerate()
        .all(|(t, &(tap, off))| tap == t && Some(off) == t.checked_mul(step));
    (step > 0 && (2..=ONE_STEP_TAPS).contains(&n) && one_step).then_some(n)
}
