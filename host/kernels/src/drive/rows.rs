//! Conv and fully connected over i16 filter rows: per output pixel, the patch
//! is widened to i16, dotted with every filter row, then requantized.

use crate::conv::Conv2d;
use crate::error::{KernelError, check_len};
use crate::fully_connected::FullyConnected;
use crate::pack::{PackedRows, Pixel, gather_window, pad_input};

/// One instruction set's pieces, as closures so that each set gets its own
/// monomorphized driver with direct calls (a call per pixel is measurable).
pub struct Micro<W, D, E>
where
    W: Fn(&[i8], &mut [i16]),
    D: Fn(&[i16], &PackedRows, &mut [i32]),
    E: Fn(&[i32], &mut [i8]),
{
    /// Widen int8 values to i16.
    pub widen: W,
    /// Dot products of a patch (`kp` long) with every row.
    pub dot: D,
    /// Requantize one pixel's accumulators into its outputs.
    pub epilogue: E,
}

pub fn conv2d<W, D, E>(
    k: &Conv2d,
    packed: &PackedRows,
    input: &[i8],
    output: &mut [i8],
    m: Micro<W, D, E>,
) -> Result<(), KernelError>
where
    W: Fn(&[i8], &mut [i16]),
    D: Fn(&[i16], &PackedRows, &mut [i32]),
    E: Fn(&[i32], &mut [i8]),
{
    let (is, os, w) = (k.input, k.output, k.window);
    check_len("conv2d", "input", input.len(), is.len().unwrap_or(0))?;
    check_len("conv2d", "output", output.len(), os.len().unwrap_or(0))?;
    let mut guard = k.scratch.lock().unwrap_or_else(|p| p.into_inner());
    let scratch = &mut *guard;
    let zp = (-k.input_offset).clamp(-128, 127) as i8;
    let (src, ph, pw) = pad_input(input, is, &w, os.h, os.w, zp, &mut scratch.padded);
    scratch.col.resize(packed.kp, 0);
    scratch.acc.resize(os.c, 0);
    let (col, acc) = (&mut scratch.col, &mut scratch.acc);
    let mut at = Pixel::default();
    for pix in 0..os.n * os.h * os.w {
        gather_window(src, ph, pw, is.c, &w, at, col, &m.widen);
        at.advance(os.h, os.w);
        (m.dot)(col, packed, acc);
        (m.epilogue)(acc, &mut output[pix * os.c..(pix + 1) * os.c]);
    }
    Ok(())
}

pub fn fully_connected<W, D, E>(
    k: &FullyConnected,
    packed: &PackedRows,
    input: &[i8],
    output: &mut [i8],
    m: Micro<W, D, E>,
) -> Result<(), KernelError>
where
    W: Fn(&[i8], &mut [i16]),
    D: Fn(&[i16], &PackedRows, &mut [i32]),
    E: Fn(&[i32], &mut [i8]),
{
    k.rows(input, output)?;
    let mut guard = k.scratch.lock().unwrap_or_else(|p| p.into_inner());
    let scratch = &mut *guard;
    scratch.col.clear();
    scratch.col.resize(packed.kp, 0);
    scratch.acc.resize(k.units, 0);
    let (col, acc) = (&mut scratch.col, &mut scratch.acc);
    for (row, out) in input
        .chunks_exact(k.depth)
        .zip(output.chunks_exact_mut(k.units))
    {
        (m.widen)(row, &mut col[..k.depth]);
        (m.dot)(col, packed, acc);
        (m.epilogue)(acc, out);
    }
    Ok(())
}
