//! Conv and fully connected as a broadcast GEMM over 16-row blocks of i8
//! weights: patches of `P` pixels (the set's choice) share each weight
//! load, and each set
//! requantizes them as it sees fit (AVX-512 straight from its registers). Where the kernel rows allow
//! it, windows are read in place from the converted input, not copied.

use crate::conv::Conv2d;
use crate::drive::groups;
use crate::error::KernelError;
use crate::fully_connected::FullyConnected;
use crate::pack::{PackedI8Rows, Pixel, Runs, gather_window, pad_convert, padded_size};

/// One instruction set's pieces, as closures so that each set gets its own
/// monomorphized driver with direct calls.
pub struct Micro<const P: usize, B, GP, G1>
where
    B: Fn(&[i8], &mut [u8]),
    GP: Fn([&[u8]; P], Runs, &PackedI8Rows, &mut [i32], &mut [i8]),
    G1: Fn(&[u8], Runs, &PackedI8Rows, &mut [i32], &mut [i8]),
{
    /// The bytes the GEMM multiplies (u8 shifted by 128 for `vpdpbusd`, as
    /// they are for `sdot`).
    pub to_bytes: B,
    /// `P` patches, laid out as the runs say, against every weight block,
    /// requantized into `out` (`P` pixels of `rows` channels); `acc` is
    /// scratch of `P · padded_rows()` accumulators.
    pub gemm_p: GP,
    /// The same for one patch and one pixel.
    pub gemm1: G1,
    /// The fewest pixels of a conv layer too small for one whole group
    /// worth running through `gemm_p` anyway, the last patch repeated to
    /// fill it; fewer go one at a time through `gemm1`, each reading every
    /// weight. `P` or more: never. (For the AMX tiles, whose sixteen rows
    /// cost about the same however many are used: WW's 15-pixel layer.)
    pub short_min: usize,
}

pub fn conv2d<const P: usize, B, GP, G1>(
    k: &Conv2d,
    packed: &PackedI8Rows,
    input: &[i8],
    output: &mut [i8],
    m: Micro<P, B, GP, G1>,
) -> Result<(), KernelError>
where
    B: Fn(&[i8], &mut [u8]),
    GP: Fn([&[u8]; P], Runs, &PackedI8Rows, &mut [i32], &mut [i8]),
    G1: Fn(&[u8], Runs, &PackedI8Rows, &mut [i32], &mut [i8]),
{
    let (is, os, w) = (k.input, k.output, k.window);
    let mut guard = k.checked_scratch(input, output)?;
    let scratch = &mut *guard;
    let zp = (-k.input_offset).clamp(-128, 127) as i8;
    let (ph, pw) = padded_size(is, &w, os.h, os.w);
    let kp = 4 * packed.k4;
    let stride = packed.padded_rows();
    // Padding lanes meet zero weights, so their value does not matter.
    scratch.col8.resize(P * kp, 0);
    scratch.acc.resize(P * stride, 0);
    let pixels = os.n * os.h * os.w;
    let short = pixels < P && pixels >= m.short_min;
    if short {
        scratch.short_out.resize(P * os.c, 0);
    }
    // The (padded) input is converted once. Without horizontal dilation a
    // window is read in place, one run per kernel row, each padded in the
    // weights to whole groups of 4 (a pointwise conv: one run). A run may
    // read up to 3 bytes past its row, so the buffer has that much slack;
    // those bytes meet zero weights. Otherwise windows are gathered.
    let mut fill = [0u8];
    (m.to_bytes)(&[zp], &mut fill);
    pad_convert(
        input,
        is,
        &w,
        (ph, pw),
        fill[0],
        3,
        &mut scratch.shifted,
        &m.to_bytes,
    );
    let row4 = (w.kernel_w * is.c).div_ceil(4);
    let in_place =
        w.dilation_w == 1 && packed.kernel_rows == w.kernel_h && packed.k4 == w.kernel_h * row4;
    let runs = if in_place {
        Runs {
            count: w.kernel_h,
            step: w.dilation_h * pw * is.c,
            len4: row4,
        }
    } else {
        // Gathered windows are unpadded: the weights must be too.
        assert_eq!(
            packed.k4,
            packed.k.div_ceil(4),
            "run-padded weights need in-place windows"
        );
        Runs::contiguous(packed.k4)
    };
    let (cols, acc, shifted, short_out) = (
        &mut scratch.col8,
        &mut scratch.acc,
        &scratch.shifted,
        &mut scratch.short_out,
    );
    let corner = |at: Pixel| ((at.b * ph + at.oy * w.stride_h) * pw + at.ox * w.stride_w) * is.c;
    for (pix, n) in groups(pixels, P) {
        let mut at = Pixel::at(pix, os.h, os.w);
        let mut starts = [0usize; P];
        for (p, start) in starts.iter_mut().enumerate().take(n) {
            if in_place {
                *start = corner(at);
            } else {
                let col = &mut cols[p * kp..(p + 1) * kp];
                gather_window(shifted, ph, pw, is.c, &w, at, col, |s, d| {
                    d.copy_from_slice(s)
                });
            }
            at.advance(os.h, os.w);
        }
        let patch = |p: usize| -> &[u8] {
            if in_place {
                &shifted[starts[p]..]
            } else {
                &cols[p * kp..(p + 1) * kp]
            }
        };
        let out = &mut output[pix * os.c..(pix + n) * os.c];
        if n == P {
            (m.gemm_p)(std::array::from_fn(patch), runs, packed, acc, out);
        } else if short {
            // `groups` gives one short group only when the layer has fewer
            // than `P` pixels: all of them, here.
            let patches = std::array::from_fn(|p| patch(p.min(n - 1)));
            (m.gemm_p)(patches, runs, packed, acc, short_out);
            out.copy_from_slice(&short_out[..n * os.c]);
        } else {
            for (p, out) in out.chunks_exact_mut(os.c).enumerate() {
                (m.gemm1)(patch(p), runs, packed, acc, out);
            }
        }
    }
    Ok(())
}

pub fn fully_connected<const P: usize, B, GP, G1>(
    k: &FullyConnected,
    packed: &PackedI8Rows,
    input: &[i8],
    output: &mut [i8],
    m: Micro<P, B, GP, G1>,
) -> Result<(), KernelError>
where
    B: Fn(&[i8], &mut [u8]),
    GP: Fn([&[u8]; P], Runs, &PackedI8Rows, &mut [i32], &mut [i8]),
    G1: Fn(&[u8], Runs, &PackedI8Rows, &mut [i32], &mut [i8]),
{
    let rows = k.rows(input, output)?;
    let mut guard = k.scratch.lock().unwrap_or_else(|p| p.into_inner());
    let scratch = &mut *guard;
    let kp = 4 * packed.k4;
    let stride = packed.padded_rows();
    // Bytes past `depth` in a row meet zero weights but must be defined:
    // zeroed when the buffer takes this shape, and never written after, as
    // each row's conversion below writes its first `depth` bytes only.
    let group = rows.clamp(1, P);
    if scratch.col8.len() != group * kp {
        scratch.col8.clear();
        scratch.col8.resize(group * kp, 0);
    }
    scratch.acc.resize(group * stride, 0);
    let (cols, acc) = (&mut scratch.col8, &mut scratch.acc);
    let runs = Runs::contiguous(packed.k4);
    // Groups of `P` rows share each weight load, as pixels do in conv2d:
    // batched invocations make fully connected layers a GEMM.
    for (row, n) in groups(rows, P) {
        let src = &input[row * k.depth..(row + n) * k.depth];
        let out = &mut output[row * k.units..(row + n) * k.units];
        for (src, col) in src.chunks_exact(k.depth).zip(cols.chunks_exact_mut(kp)) {
            (m.to_bytes)(src, &mut col[..k.depth]);
        }
        if n == P {
            let patches = std::array::from_fn(|p| &cols[p * kp..(p + 1) * kp]);
            (m.gemm_p)(patches, runs, packed, acc, out);
        } else {
            for (col, out) in cols.chunks_exact(kp).zip(out.chunks_exact_mut(k.units)) {
                (m.gemm1)(col, runs, packed, acc, out);
            }
        }
    }
    Ok(())
}
