//! Conv and fully connected over i16 weights: per output pixel, the patch
//! is widened to i16, multiplied with every filter row, then requantized.

use crate::conv::Conv2d;
use crate::drive::groups;
use crate::error::KernelError;
use crate::fully_connected::FullyConnected;
use crate::pack::{PackedPairs, PackedRows, Pixel, gather_window, pad_input};

/// i16 weights in a set's layout ([`PackedRows`], [`PackedPairs`]): the
/// driver needs only the patch length their kernels read.
pub trait I16Weights {
    /// The length of one gathered patch, k padded with zeros.
    fn kp(&self) -> usize;
}

impl I16Weights for PackedRows {
    fn kp(&self) -> usize {
        self.kp
    }
}

impl I16Weights for PackedPairs {
    fn kp(&self) -> usize {
        self.kp
    }
}

/// One instruction set's pieces, as closures so that each set gets its own
/// monomorphized driver with direct calls (a call per pixel is measurable).
/// `P` pixels (or rows of a batch) go through `dot_p` together, so that a
/// set can share each filter row's loads between them and requantize
/// several pixels in one pass; a set without such a kernel takes `P = 1`.
/// The dot kernels take the set's [`I16Weights`]; the functions below
/// state the closures' signatures.
pub struct Micro<const P: usize, W, D, DP, E> {
    /// Widen int8 values to i16.
    pub widen: W,
    /// Dot products of a patch (`kp` long) with every row.
    pub dot: D,
    /// The same for `P` patches, `kp` apart: patch `p`'s sums go to
    /// `acc[p · rows..]`.
    pub dot_p: DP,
    /// Requantize `pixels` pixels' accumulators (pixel `p`'s at
    /// `acc[p · c..]`, `c = out.len() / pixels`) into their outputs.
    pub epilogue: E,
}

pub fn conv2d<const P: usize, R: I16Weights, W, D, DP, E>(
    k: &Conv2d,
    packed: &R,
    input: &[i8],
    output: &mut [i8],
    m: Micro<P, W, D, DP, E>,
) -> Result<(), KernelError>
where
    W: Fn(&[i8], &mut [i16]),
    D: Fn(&[i16], &R, &mut [i32]),
    DP: Fn(&[i16], &R, &mut [i32]),
    E: Fn(&[i32], &mut [i8], usize),
{
    let (is, os, w) = (k.input, k.output, k.window);
    let mut guard = k.checked_scratch(input, output)?;
    let scratch = &mut *guard;
    let zp = (-k.input_offset).clamp(-128, 127) as i8;
    let (src, ph, pw) = pad_input(input, is, &w, os.h, os.w, zp, &mut scratch.padded);
    let kp = packed.kp();
    scratch.col.resize(P * kp, 0);
    scratch.acc.resize(P * os.c, 0);
    let (col, acc) = (&mut scratch.col, &mut scratch.acc);
    let pixels = os.n * os.h * os.w;
    for (pix, n) in groups(pixels, P) {
        let mut at = Pixel::at(pix, os.h, os.w);
        for patch in col.chunks_exact_mut(kp).take(n) {
            gather_window(src, ph, pw, is.c, &w, at, patch, &m.widen);
            at.advance(os.h, os.w);
        }
        let out = &mut output[pix * os.c..(pix + n) * os.c];
        if n == P {
            (m.dot_p)(col, packed, acc);
            (m.epilogue)(acc, out, P);
        } else {
            for (patch, out) in col.chunks_exact(kp).zip(out.chunks_exact_mut(os.c)) {
                (m.dot)(patch, packed, acc);
                (m.epilogue)(acc, out, 1);
            }
        }
    }
    Ok(())
}

pub fn fully_connected<const P: usize, R: I16Weights, W, D, DP, E>(
    k: &FullyConnected,
    packed: &R,
    input: &[i8],
    output: &mut [i8],
    m: Micro<P, W, D, DP, E>,
) -> Result<(), KernelError>
where
    W: Fn(&[i8], &mut [i16]),
    D: Fn(&[i16], &R, &mut [i32]),
    DP: Fn(&[i16], &R, &mut [i32]),
    E: Fn(&[i32], &mut [i8], usize),
{
    let rows = k.rows(input, output)?;
    let mut guard = k.scratch.lock().unwrap_or_else(|p| p.into_inner());
    let scratch = &mut *guard;
    let kp = packed.kp();
    // Lanes past `depth` meet zero weights but must be defined: zeroed
    // when the buffer takes this layer's shape, and never written after
    // (a layer's scratch is its own). Zeroing them every call was a
    // `memset` of up to 5 KB per layer of AD's ten.
    if scratch.col.len() != P * kp {
        scratch.col.clear();
        scratch.col.resize(P * kp, 0);
    }
    scratch.acc.resize(P * k.units, 0);
    let (col, acc) = (&mut scratch.col, &mut scratch.acc);
    // Groups of `P` rows of a batch share each filter row's loads.
    for (row, n) in groups(rows, P) {
        let src = &input[row * k.depth..(row + n) * k.depth];
        let out = &mut output[row * k.units..(row + n) * k.units];
        for (src, patch) in src.chunks_exact(k.depth).zip(col.chunks_exact_mut(kp)) {
            (m.widen)(src, &mut patch[..k.depth]);
        }
        if n == P {
            (m.dot_p)(col, packed, acc);
            (m.epilogue)(acc, out, P);
        } else {
            for (patch, out) in col.chunks_exact(kp).zip(out.chunks_exact_mut(k.units)) {
                (m.dot)(patch, packed, acc);
                (m.epilogue)(acc, out, 1);
            }
        }
    }
    Ok(())
}
