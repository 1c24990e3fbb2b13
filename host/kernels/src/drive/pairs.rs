//! Conv over [`PackedPairs`] with each window read in place: the padded
//! input is widened to i16 once per call, and the GEMM reads a window's
//! kernel rows from it as runs of pairs. Gathering each pixel's patch
//! instead widened every input value once per window that holds it (nine
//! times for a 3x3 conv), in calls of a few values each.

use crate::conv::Conv2d;
use crate::drive::groups;
use crate::error::KernelError;
use crate::pack::{PackedPairs, PairRuns, Pixel, pad_convert, padded_size};

/// One instruction set's pieces, as closures (see [`super::rows::Micro`]).
pub struct InPlace<const P: usize, W, D, DP, E> {
    /// Widen int8 values to i16.
    pub widen: W,
    /// Sums of one patch, whose pairs lie as the runs say, with every row.
    pub dot: D,
    /// The same for `P` patches: patch `p`'s sums go to `acc[p · rows..]`.
    pub dot_p: DP,
    /// Requantize `pixels` pixels' accumulators (pixel `p`'s at
    /// `acc[p · c..]`, `c = out.len() / pixels`) into their outputs.
    pub epilogue: E,
}

/// Whether `k`'s windows can be read in place with these weights: not
/// with horizontal dilation, nor with weights not padded per kernel row.
/// Where they cannot, the caller gathers them instead.
pub fn reads_in_place(k: &Conv2d, packed: &PackedPairs) -> bool {
    let w = k.window;
    let run = w.kernel_w * k.input.c;
    if w.dilation_w != 1 || packed.runs != w.kernel_h || packed.run2 != run.div_ceil(2) {
        // The gathering driver lays patches out unpadded: so must the weights.
        assert!(
            packed.runs == 1 || (packed.k / packed.runs).is_multiple_of(2),
            "run-padded pairs need in-place windows"
        );
        return false;
    }
    true
}

/// The layer on `input` into `output`, its windows read in place: only
/// where [`reads_in_place`] says they can be.
pub fn conv2d<const P: usize, W, D, DP, E>(
    k: &Conv2d,
    packed: &PackedPairs,
    input: &[i8],
    output: &mut [i8],
    m: InPlace<P, W, D, DP, E>,
) -> Result<(), KernelError>
where
    W: Fn(&[i8], &mut [i16]),
    D: Fn(&[i16], PairRuns, &PackedPairs, &mut [i32]),
    DP: Fn([&[i16]; P], PairRuns, &PackedPairs, &mut [i32]),
    E: Fn(&[i32], &mut [i8], usize),
{
    if !reads_in_place(k, packed) {
        return Err(KernelError::new(
            "conv2d",
            "these windows cannot be read in place with these weights",
        ));
    }
    let (is, os, w) = (k.input, k.output, k.window);
    let mut guard = k.checked_scratch(input, output)?;
    let scratch = &mut *guard;
    // Padding cells hold the input's zero point, so that with the offset
    // folded into the bias they contribute nothing. A run of odd length
    // reads one value past its kernel row, which meets a zero weight: one
    // value of slack keeps the last window's inside the buffer.
    let zp = (-k.input_offset).clamp(-128, 127) as i16;
    let (ph, pw) = padded_size(is, &w, os.h, os.w);
    pad_convert(input, is, &w, (ph, pw), zp, 1, &mut scratch.col, &m.widen);
    scratch.acc.resize(P * os.c, 0);
    let (image, acc) = (&scratch.col[..], &mut scratch.acc[..]);
    let runs = PairRuns {
        count: w.kernel_h,
        step: w.dilation_h * pw * is.c,
        len2: packed.run2,
    };
    let corner = |at: Pixel| ((at.b * ph + at.oy * w.stride_h) * pw + at.ox * w.stride_w) * is.c;
    let pixels = os.n * os.h * os.w;
    for (pix, n) in groups(pixels, P) {
        let mut at = Pixel::at(pix, os.h, os.w);
        let mut starts = [0usize; P];
        for start in starts.iter_mut().take(n) {
            *start = corner(at);
            at.advance(os.h, os.w);
        }
        let out = &mut output[pix * os.c..(pix + n) * os.c];
        if n == P {
            (m.dot_p)(starts.map(|s| &image[s..]), runs, packed, acc);
            (m.epilogue)(acc, out, P);
        } else {
            for (&s, out) in starts.iter().zip(out.chunks_exact_mut(os.c)) {
                (m.dot)(&image[s..], runs, packed, acc);
                (m.epilogue)(acc, out, 1);
            }
        }
    }
    Ok(())
}
