//! Weights repacked at upload into the layout the vector kernels want:
//! rows of i16, each zero-padded to a multiple of 16, with per-row sums so
//! the input zero point can be folded into the bias.
//!
//! The folding is exact: Σ f·(x + off) = Σ f·x + off·Σ f in wrapping i32
//! arithmetic, and taps that fall in the padding are made to contribute 0
//! by padding the input with −off (the input zero point) instead of skipping.

/// Rows of a weight matrix (one per output channel or unit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedRows {
    pub rows: usize,
    /// Values per row before padding.
    pub k: usize,
    /// Values per row after padding to a multiple of [`LANES`].
    pub kp: usize,
    pub data: Vec<i16>,
    pub sums: Vec<i32>,
}

/// i16 values a 256-bit register holds.
pub const LANES: usize = 16;

impl PackedRows {
    /// Pack `rows × k` int8 values, each offset by `add` (a weights zero point).
    pub fn new(values: &[i8], rows: usize, k: usize, add: i32) -> PackedRows {
        let kp = k.div_ceil(LANES) * LANES;
        let mut data = vec![0i16; rows * kp];
        let mut sums = vec![0i32; rows];
        for r in 0..rows {
            for (j, &v) in values[r * k..(r + 1) * k].iter().enumerate() {
                let w = v as i32 + add;
                data[r * kp + j] = w as i16;
                sums[r] = sums[r].wrapping_add(w);
            }
        }
        PackedRows {
            rows,
            k,
            kp,
            data,
            sums,
        }
    }

    pub fn row(&self, r: usize) -> &[i16] {
        &self.data[r * self.kp..(r + 1) * self.kp]
    }

    pub fn bytes(&self) -> usize {
        self.data.len() * 2 + self.sums.len() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_and_sums() {
        let p = PackedRows::new(&[1, -2, 3, 4, 5, -6], 2, 3, 1);
        assert_eq!(p.kp, 16);
        assert_eq!(&p.row(0)[..4], &[2, -1, 4, 0]);
        assert_eq!(p.sums, vec![5, 6]);
    }
}

use crate::geometry::{Shape4, Window};

/// The input as the vector kernels read it: with the window's padding made
/// explicit (filled with the zero point, so padded taps contribute 0 after
/// folding), or the input itself when no tap leaves it. Returns the buffer
/// and its height and width.
pub fn pad_input<'a>(
    input: &'a [i8],
    is: Shape4,
    w: &Window,
    out_h: usize,
    out_w: usize,
    zero_point: i8,
    buf: &'a mut Vec<i8>,
) -> (&'a [i8], usize, usize) {
    let need_h = out_h.saturating_sub(1) * w.stride_h + (w.kernel_h - 1) * w.dilation_h + 1;
    let need_w = out_w.saturating_sub(1) * w.stride_w + (w.kernel_w - 1) * w.dilation_w + 1;
    if w.pad_top == 0 && w.pad_left == 0 && need_h <= is.h && need_w <= is.w {
        return (input, is.h, is.w);
    }
    let ph = need_h.max(w.pad_top + is.h);
    let pw = need_w.max(w.pad_left + is.w);
    buf.clear();
    buf.resize(is.n * ph * pw * is.c, zero_point);
    for b in 0..is.n {
        for y in 0..is.h {
            let src = &input[is.offset(b, y, 0, 0)..is.offset(b, y, 0, 0) + is.w * is.c];
            let dst = ((b * ph + y + w.pad_top) * pw + w.pad_left) * is.c;
            buf[dst..dst + src.len()].copy_from_slice(src);
        }
    }
    (buf, ph, pw)
}
