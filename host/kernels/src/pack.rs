//! Weights repacked at upload into the layout the vector kernels want:
//! rows of i16, each zero-padded to a multiple of 16, with per-row sums so
//! the input zero point can be folded into the bias.
//!
//! The folding is exact: Σ f·(x + off) = Σ f·x + off·Σ f in wrapping i32
//! arithmetic, and taps that fall in the padding are made to contribute 0
//! by padding the input with −off (the input zero point) instead of skipping.

use crate::aligned::{Aligned, Plain};

/// The weight layout a kernel set wants; filters are repacked into it once,
/// when the operator is prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WeightLayout {
    /// The reference reads the original int8 weights.
    #[default]
    Original,
    /// i16 rows padded to 16 (NEON `smlal`).
    I16Rows,
    /// i16 pairs of k, eight rows a vector (AVX2 `vpmaddwd` against a
    /// broadcast pair of the input).
    I16Pairs,
    /// i8 blocks of 16 rows × 4 values, multiplied with the input shifted to u8
    /// (AVX-512 VNNI `vpdpbusd`).
    I8Rows,
    /// The same blocks, multiplied with the signed input as it is (aarch64 `sdot`).
    I8RowsSigned,
}

/// Weights in a vector layout, with the bias that folds the input offset in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packed {
    I16(PackedRows),
    Pairs(PackedPairs),
    I8(PackedI8Rows),
    /// For a signed input: the bias folds the input offset only.
    I8Signed(PackedI8Rows),
}

impl Packed {
    /// Pack `rows × k` weights (each plus `add`) for `layout`, and fold
    /// `input_offset` into `bias`. `None` for the original layout. The i8
    /// layouts pad each of `kernel_rows` runs of k (see [`PackedI8Rows::new`]);
    /// weights with a zero point (`add != 0`) can leave 8 bits, so they get
    /// the i16 layout of the set each i8 set falls back to instead (AVX-512
    /// machines have AVX2's pairs, aarch64 has NEON's rows).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        layout: WeightLayout,
        values: &[i8],
        rows: usize,
        k: usize,
        kernel_rows: usize,
        add: i32,
        bias: &[i32],
        input_offset: i32,
    ) -> Option<(Packed, Vec<i32>)> {
        let fold = |sums: &[i32], off: i32| {
            bias.iter()
                .zip(sums)
                .map(|(&b, &s)| b.wrapping_add(off.wrapping_mul(s)))
                .collect::<Vec<i32>>()
        };
        match wider(layout, add) {
            WeightLayout::Original => None,
            WeightLayout::I16Rows => {
                let p = PackedRows::new(values, rows, k, add);
                let b = fold(&p.sums, input_offset);
                Some((Packed::I16(p), b))
            }
            WeightLayout::I16Pairs => {
                let p = PackedPairs::new(values, rows, k, kernel_rows, add);
                let b = fold(&p.sums, input_offset);
                Some((Packed::Pairs(p), b))
            }
            WeightLayout::I8Rows => {
                let p = PackedI8Rows::new(values, rows, k, kernel_rows);
                // The input arrives as u = x + 128: Σ w(x + off) = Σ w·u + (off − 128)·Σ w.
                let b = fold(&p.sums, input_offset.wrapping_sub(128));
                Some((Packed::I8(p), b))
            }
            WeightLayout::I8RowsSigned => {
                let p = PackedI8Rows::new(values, rows, k, kernel_rows);
                let b = fold(&p.sums, input_offset);
                Some((Packed::I8Signed(p), b))
            }
        }
    }

    pub fn bytes(&self) -> usize {
        match self {
            Packed::I16(p) => p.bytes(),
            Packed::Pairs(p) => p.data.len() * 2 + p.sums.len() * 4,
            Packed::I8(p) | Packed::I8Signed(p) => p.data.len() + 4 * p.sums.len(),
        }
    }

    /// What [`bytes`](Self::bytes) of the weights [`new`](Self::new) would
    /// pack for these arguments is, without packing them: 0 where it would
    /// pack nothing, `None` where the size overflows.
    pub fn bytes_for(
        layout: WeightLayout,
        rows: usize,
        k: usize,
        kernel_rows: usize,
        add: i32,
    ) -> Option<usize> {
        let sums = rows.checked_mul(4)?;
        match wider(layout, add) {
            WeightLayout::Original => Some(0),
            WeightLayout::I16Rows => rows
                .checked_mul(k.div_ceil(LANES).checked_mul(LANES * 2)?)?
                .checked_add(sums),
            WeightLayout::I16Pairs => {
                let runs = whole_runs(k, kernel_rows);
                let pairs = runs.checked_mul((k / runs).div_ceil(2))?;
                rows.div_ceil(PAIR_ROWS)
                    .checked_mul(pairs.checked_mul(PAIR_ROWS * 2 * 2)?)?
                    .checked_add(sums)
            }
            WeightLayout::I8Rows | WeightLayout::I8RowsSigned => {
                let kernel_rows = whole_runs(k, kernel_rows);
                let k4 = kernel_rows.checked_mul((k / kernel_rows).div_ceil(4))?;
                rows.div_ceil(16)
                    .checked_mul(k4)?
                    .checked_mul(I8_LANES)?
                    .checked_add(sums)
            }
        }
    }
}

/// The layout weights plus `add` are packed in: i8 rows hold 8-bit values
/// only, and a weight plus a zero point can need 9, so those take the i16
/// layout of the set whose kernels then run them.
fn wider(layout: WeightLayout, add: i32) -> WeightLayout {
    match layout {
        WeightLayout::I8Rows if add != 0 => WeightLayout::I16Pairs,
        WeightLayout::I8RowsSigned if add != 0 => WeightLayout::I16Rows,
        other => other,
    }
}

/// int8 weights blocked for a broadcast GEMM with `vpdpbusd`: 16 rows at a
/// time, 4 values per row per 32-bit lane, so one 64-byte vector holds
/// `w[16 rows][4 k]`. Rows pad to 16 and k to 4 with zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedI8Rows {
    pub(crate) rows: usize,
    pub(crate) k: usize,
    /// Groups of 4 along k, each kernel row padded to whole groups.
    pub(crate) k4: usize,
    /// The runs k is made of (see [`PackedI8Rows::new`]).
    pub(crate) kernel_rows: usize,
    /// Blocks of 16 rows.
    pub(crate) blocks: usize,
    pub(crate) data: Aligned<i8>,
    pub(crate) sums: Vec<i32>,
}

/// Bytes a 512-bit register holds.
pub const I8_LANES: usize = 64;

/// Where the `4·k4` bytes of one GEMM patch lie: `count` runs of `len4`
/// groups of four bytes, the runs `step` bytes apart. A gathered patch is
/// one run; a window read in place from the input is one run per kernel
/// row, which spares copying it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Runs {
    pub count: usize,
    pub step: usize,
    pub len4: usize,
}

impl Runs {
    /// One run of `k4` groups.
    pub fn contiguous(k4: usize) -> Runs {
        Runs {
            count: 1,
            step: 0,
            len4: k4,
        }
    }

    /// Bytes from a patch's first byte to past its last.
    pub fn span(&self) -> usize {
        match self.count {
            0 => 0,
            n => (n - 1) * self.step + 4 * self.len4,
        }
    }

    /// Panics unless `patches` hold these runs and the runs are `w`'s depth:
    /// what the GEMM kernels check once before loading without bounds checks.
    pub fn check(&self, patches: &[&[u8]], w: &PackedI8Rows) {
        assert_eq!(self.count * self.len4, w.k4);
        assert!(patches.iter().all(|p| p.len() >= self.span()));
    }
}

impl PackedI8Rows {
    /// Packs `rows × k` values whose depth is `kernel_rows` equal runs (a
    /// conv filter's kernel rows; 1 for a plain matrix). Each run is padded
    /// with zeros to whole groups of 4, so a window can be read in place as
    /// one run per kernel row: the bytes a run reads past its end meet zero
    /// weights.
    pub fn new(values: &[i8], rows: usize, k: usize, kernel_rows: usize) -> Self {
        let kernel_rows = whole_runs(k, kernel_rows);
        let run = k / kernel_rows;
        let run4 = run.div_ceil(4);
        let (k4, blocks) = (kernel_rows * run4, rows.div_ceil(16));
        let mut data = Aligned::zeroed(blocks * k4 * I8_LANES);
        for r in 0..rows {
            let (block, lane) = (r / 16, r % 16);
            for (j, &v) in values[r * k..(r + 1) * k].iter().enumerate() {
                // Position j of the depth, in its run's padded place.
                let at = (j / run) * 4 * run4 + j % run;
                data[(block * k4 + at / 4) * I8_LANES + lane * 4 + at % 4] = v;
            }
        }
        let sums = (0..rows)
            .map(|r| values[r * k..(r + 1) * k].iter().map(|&v| v as i32).sum())
            .collect();
        PackedI8Rows {
            rows,
            k,
            k4,
            kernel_rows,
            blocks,
            data,
            sums,
        }
    }

    /// Rows rounded up to whole blocks.
    pub fn padded_rows(&self) -> usize {
        self.blocks * 16
    }
}

/// Rows of a weight matrix (one per output channel or unit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedRows {
    pub(crate) rows: usize,
    /// Values per row before padding.
    pub(crate) k: usize,
    /// Values per row after padding to a multiple of [`LANES`].
    pub(crate) kp: usize,
    pub(crate) data: Aligned<i16>,
    pub(crate) sums: Vec<i32>,
}

/// i16 values a 256-bit register holds.
pub const LANES: usize = 16;

impl PackedRows {
    /// Pack `rows × k` int8 values, each offset by `add` (a weights zero point).
    pub fn new(values: &[i8], rows: usize, k: usize, add: i32) -> PackedRows {
        let kp = k.div_ceil(LANES) * LANES;
        let mut data = Aligned::zeroed(rows * kp);
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

/// Rows of a weight matrix by pairs of k: the vector for pair `j` and rows
/// `r..r + 8` holds `w[r][2j], w[r][2j + 1], w[r + 1][2j], …`, so that one
/// `vpmaddwd` with the input's pair `j` broadcast gives eight rows' sums
/// with no horizontal adds at the end, and a depth that is not a multiple
/// of 16 costs its own length, not the next multiple's. Rows pad to 8 and
/// k to 2 with zero weights.
///
/// The kernel takes 16 rows a pass (the last pass 8, if 8 are left), so
/// each such block of rows is stored whole, pair after pair: a pass reads
/// its weights in order (with the pairs of all rows side by side, a GEMV
/// read 64 bytes of every 512 and AD ran 12% slower).
///
/// As [`PackedI8Rows`], k may be `kernel_rows` equal runs (a conv filter's
/// kernel rows), each padded to whole pairs, so that a window is read in
/// place from the input, a run per kernel row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedPairs {
    pub(crate) rows: usize,
    pub(crate) k: usize,
    /// The patch length the driver gathers: k padded to [`LANES`], as for
    /// [`PackedRows`], so that the pair past an odd k reads a lane that is
    /// there.
    pub(crate) kp: usize,
    /// The runs k is made of, and the pairs of each.
    pub(crate) runs: usize,
    pub(crate) run2: usize,
    /// Pairs in all: `runs · run2`.
    pub(crate) pairs: usize,
    /// Rows rounded up to [`PAIR_ROWS`].
    pub(crate) rows8: usize,
    pub(crate) data: Aligned<i16>,
    pub(crate) sums: Vec<i32>,
}

/// Where the pairs of one [`PackedPairs`] patch lie: `count` runs of
/// `len2` pairs, the runs `step` values apart (one run, for a gathered
/// patch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairRuns {
    pub count: usize,
    pub step: usize,
    pub len2: usize,
}

impl PairRuns {
    /// One run of `pairs` pairs.
    pub fn contiguous(pairs: usize) -> PairRuns {
        PairRuns {
            count: 1,
            step: 0,
            len2: pairs,
        }
    }

    /// Values from a patch's first to past its last.
    pub fn span(&self) -> usize {
        match self.count {
            0 => 0,
            n => (n - 1) * self.step + 2 * self.len2,
        }
    }
}

/// The runs `k` values are read in, for [`PackedI8Rows`] and
/// [`PackedPairs`] alike: `kernel_rows` if it divides them, else one.
fn whole_runs(k: usize, kernel_rows: usize) -> usize {
    if kernel_rows > 0 && k.is_multiple_of(kernel_rows) {
        kernel_rows
    } else {
        1
    }
}

/// Rows one vector of [`PackedPairs`] holds.
pub const PAIR_ROWS: usize = 8;

/// Rows a block of [`PackedPairs`] holds, but for a last block of eight.
pub const BLOCK_ROWS: usize = 2 * PAIR_ROWS;

impl PackedPairs {
    /// Pack `rows × k` int8 values, each offset by `add` (a weights zero
    /// point), k being `kernel_rows` runs (1 for a plain matrix).
    pub fn new(values: &[i8], rows: usize, k: usize, kernel_rows: usize, add: i32) -> PackedPairs {
        let rows8 = rows.div_ceil(PAIR_ROWS) * PAIR_ROWS;
        let runs = whole_runs(k, kernel_rows);
        let run = k / runs;
        let run2 = run.div_ceil(2);
        let pairs = runs * run2;
        let mut data = Aligned::zeroed(pairs * rows8 * 2);
        let mut sums = vec![0i32; rows];
        for (r, sum) in sums.iter_mut().enumerate() {
            let block = r / BLOCK_ROWS * BLOCK_ROWS;
            let width = BLOCK_ROWS.min(rows8 - block);
            for (j, &v) in values[r * k..(r + 1) * k].iter().enumerate() {
                let w = v as i32 + add;
                // Position j of the depth, in its run's padded place.
                let at = (j / run) * 2 * run2 + j % run;
                data[block * 2 * pairs + ((at / 2) * width + r - block) * 2 + at % 2] = w as i16;
                *sum = sum.wrapping_add(w);
            }
        }
        PackedPairs {
            rows,
            k,
            kp: k.div_ceil(LANES) * LANES,
            runs,
            run2,
            pairs,
            rows8,
            data,
            sums,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_hold_sixteen_rows_a_block_and_eight_in_the_last() {
        // 20 rows of k = 3: a block of 16, then one of 8 (rows 16..20 and
        // four rows of padding), each of two pairs (k padded to 4).
        let (rows, k) = (20, 3);
        let vals: Vec<i8> = (0..rows * k).map(|i| (i % 97) as i8 - 40).collect();
        let p = PackedPairs::new(&vals, rows, k, 1, 2);
        assert_eq!((p.rows8, p.kp, p.data.len()), (24, 16, 2 * 24 * 2));
        let w = |r: usize, j: usize| {
            if r < rows && j < k {
                (vals[r * k + j] as i16) + 2
            } else {
                0
            }
        };
        // Block 0: pair j's 16 rows side by side, 32 values a pair.
        assert_eq!(&p.data[..4], &[w(0, 0), w(0, 1), w(1, 0), w(1, 1)]);
        assert_eq!(&p.data[32..34], &[w(0, 2), w(0, 3)]);
        assert_eq!(&p.data[62..64], &[w(15, 2), w(15, 3)]);
        // Block 1 starts after block 0's two pairs, 16 values a pair.
        let b1 = 16 * 2 * 2;
        assert_eq!(&p.data[b1..b1 + 2], &[w(16, 0), w(16, 1)]);
        assert_eq!(&p.data[b1 + 16..b1 + 18], &[w(16, 2), w(16, 3)]);
        assert_eq!(&p.data[b1 + 6..b1 + 10], &[w(19, 0), w(19, 1), 0, 0]);
        assert_eq!(p.sums[19], (0..k).map(|j| w(19, j) as i32).sum::<i32>());
        assert_eq!(
            Packed::bytes_for(WeightLayout::I16Pairs, rows, k, 1, 2),
            Some(Packed::Pairs(p).bytes())
        );
    }

    #[test]
    fn pairs_pad_each_kernel_row_to_whole_pairs() {
        // One row of a 3x3 filter over 1 channel: three runs of 3 values,
        // each padded to two pairs; 8 rows a block (rows pad to 8).
        let vals: Vec<i8> = (1..=9).collect();
        let p = PackedPairs::new(&vals, 1, 9, 3, 0);
        assert_eq!((p.runs, p.run2, p.pairs), (3, 2, 6));
        for (a, run) in vals.chunks(3).enumerate() {
            // Pair 2a holds run[0], run[1]; pair 2a + 1 holds run[2], 0.
            let pair = |j: usize| &p.data[j * 16..j * 16 + 2];
            assert_eq!(pair(2 * a), &[run[0] as i16, run[1] as i16]);
            assert_eq!(pair(2 * a + 1), &[run[2] as i16, 0]);
        }
        assert_eq!(
            Packed::bytes_for(WeightLayout::I16Pairs, 1, 9, 3, 0),
            Some(Packed::Pairs(p).bytes())
        );
        // Runs that do not divide k fall back to one run.
        assert_eq!(PackedPairs::new(&vals, 1, 9, 2, 0).pairs, 5);
    }

    #[test]
    fn weights_with_a_zero_point_take_the_fallback_sets_i16_layout() {
        let pack = |layout| Packed::new(layout, &[1, 2], 1, 2, 1, 3, &[0], 0).map(|p| p.0);
        // AVX-512 and AMX fall back to AVX2, which reads pairs; NEON-dot to NEON's rows.
        assert!(matches!(pack(WeightLayout::I8Rows), Some(Packed::Pairs(_))));
        assert!(matches!(
            pack(WeightLayout::I8RowsSigned),
            Some(Packed::I16(_))
        ));
    }

    #[test]
    fn kernel_rows_are_padded_to_whole_groups() {
        // One row of a 3×3 filter over 1 channel: three runs of 3 values,
        // each padded to a group of 4.
        let vals: Vec<i8> = (1..=9).collect();
        let p = PackedI8Rows::new(&vals, 1, 9, 3);
        assert_eq!((p.k, p.k4, p.kernel_rows), (9, 3, 3));
        for (g, run) in vals.chunks(3).enumerate() {
            assert_eq!(&p.data[g * 64..g * 64 + 4], &[run[0], run[1], run[2], 0]);
        }
        assert_eq!(p.sums, vec![45]);
        // Runs that do not divide k fall back to one run.
        assert_eq!(PackedI8Rows::new(&vals, 1, 9, 2).kernel_rows, 1);
    }

    #[test]
    fn blocks_interleave_four_values_per_row() {
        // 17 rows of k = 5: two blocks, k4 = 2.
        let vals: Vec<i8> = (0..17 * 5).map(|i| (i % 100) as i8).collect();
        let p = PackedI8Rows::new(&vals, 17, 5, 1);
        assert_eq!((p.k4, p.blocks, p.data.len()), (2, 2, 2 * 2 * 64));
        // Row 1, values 0..4 sit in lane 1 of the first vector.
        assert_eq!(&p.data[4..8], &vals[5..9]);
        // Row 1, value 4 opens the second vector's lane 1; the rest is padding.
        assert_eq!(&p.data[64 + 4..64 + 8], &[vals[9], 0, 0, 0]);
        // Row 16 is lane 0 of the second block.
        assert_eq!(&p.data[128..132], &vals[80..84]);
        assert_eq!(
            p.sums[16],
            vals[80..85].iter().map(|&v| v as i32).sum::<i32>()
        );
    }

    #[test]
    fn pads_and_sums() {
        let p = PackedRows::new(&[1, -2, 3, 4, 5, -6], 2, 3, 1);
        assert_eq!(p.kp, 16);
        assert_eq!(&p.row(0)[..4], &[2, -1, 4, 0]);
        assert_eq!(p.sums, vec![5, 6]);
    }
}

use crate::geometry::{Shape4, Window};

/// The input with the window's padding made explicit: `(data, ph, pw)` of
/// shape `[n, ph, pw, c]`, padded with the zero point. Borrows `input` when
/// no padding is needed.
pub(crate) fn pad_input<'a>(
    input: &'a [i8],
    is: Shape4,
    w: &Window,
    out_h: usize,
    out_w: usize,
    zero_point: i8,
    buf: &'a mut Aligned<i8>,
) -> (&'a [i8], usize, usize) {
    let (ph, pw) = padded_size(is, w, out_h, out_w);
    if w.pad_top == 0 && w.pad_left == 0 && (ph, pw) == (is.h, is.w) {
        return (input, is.h, is.w);
    }
    pad_convert(input, is, w, (ph, pw), zero_point, 0, buf, |s, d| {
        d.copy_from_slice(s)
    });
    (buf, ph, pw)
}

/// Rows and columns of the padded input: enough for every window, and at
/// least the whole input after the leading padding.
pub fn padded_size(is: Shape4, w: &Window, out_h: usize, out_w: usize) -> (usize, usize) {
    let need_h = out_h.saturating_sub(1) * w.stride_h + (w.kernel_h - 1) * w.dilation_h + 1;
    let need_w = out_w.saturating_sub(1) * w.stride_w + (w.kernel_w - 1) * w.dilation_w + 1;
    (need_h.max(w.pad_top + is.h), need_w.max(w.pad_left + is.w))
}

/// Writes the input padded to `(ph, pw)` into `buf` as `[n, ph, pw, c]`,
/// each input row converted by `put` and the padding cells set to `fill`,
/// followed by `slack` more cells. Only the borders are filled, not the
/// whole buffer: every cell is written once.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pad_convert<T: Plain>(
    input: &[i8],
    is: Shape4,
    w: &Window,
    (ph, pw): (usize, usize),
    fill: T,
    slack: usize,
    buf: &mut Aligned<T>,
    put: impl Fn(&[i8], &mut [T]),
) {
    let row = pw * is.c;
    let image = ph * row;
    let total = is.n * image + slack;
    if buf.len() != total {
        buf.clear();
        buf.resize(total, fill);
    }
    let (left, inner) = (w.pad_left * is.c, is.w * is.c);
    // Empty borders are skipped rather than filled: a fill is a `memset`
    // call even when empty, and one per row was 2% of streaming WW, whose
    // images are 30 rows of one pixel.
    let fill_some = |cells: &mut [T]| {
        if !cells.is_empty() {
            cells.fill(fill)
        }
    };
    for b in 0..is.n {
        let img = &mut buf[b * image..(b + 1) * image];
        fill_some(&mut img[..w.pad_top * row]);
        fill_some(&mut img[(w.pad_top + is.h) * row..]);
        let rows = &mut img[w.pad_top * row..(w.pad_top + is.h) * row];
        if inner == row {
            // No padding at the sides: the rows are contiguous in both.
            let at = is.offset(b, 0, 0, 0);
            put(&input[at..at + is.h * inner], rows);
            continue;
        }
        for (y, r) in rows.chunks_exact_mut(row).enumerate() {
            fill_some(&mut r[..left]);
            fill_some(&mut r[left + inner..]);
            let at = is.offset(b, y, 0, 0);
            put(&input[at..at + inner], &mut r[left..left + inner]);
        }
    }
    fill_some(&mut buf[is.n * image..]);
}

/// An output pixel `[b, oy, ox]`, walked in row-major order by
/// [`Pixel::advance`]: no divisions per pixel on the gather path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pixel {
    pub b: usize,
    pub oy: usize,
    pub ox: usize,
}

impl Pixel {
    /// Pixel number `index` of an `[n, out_h, out_w]` output.
    pub fn at(index: usize, out_h: usize, out_w: usize) -> Pixel {
        let row = index / out_w.max(1);
        Pixel {
            b: row / out_h.max(1),
            oy: row % out_h.max(1),
            ox: index % out_w.max(1),
        }
    }

    /// The next pixel of an `[n, out_h, out_w]` output.
    #[inline]
    pub fn advance(&mut self, out_h: usize, out_w: usize) {
        self.ox += 1;
        if self.ox == out_w {
            self.ox = 0;
            self.oy += 1;
            if self.oy == out_h {
                self.oy = 0;
                self.b += 1;
            }
        }
    }
}

/// Copy the window of output pixel `at` from a padded input
/// `[n, ph, pw, c]` into `col`, in filter order `[ky][kx][c]`, converting
/// each run of values with `put`. Returns the values written. Runs are whole
/// kernel rows when there is no horizontal dilation.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn gather_window<S, T>(
    src: &[S],
    ph: usize,
    pw: usize,
    c: usize,
    w: &Window,
    at: Pixel,
    col: &mut [T],
    put: impl Fn(&[S], &mut [T]),
) -> usize {
    let mut j = 0;
    for ky in 0..w.kernel_h {
        let row = (at.b * ph + at.oy * w.stride_h + ky * w.dilation_h) * pw;
        if w.dilation_w == 1 {
            let base = (row + at.ox * w.stride_w) * c;
            let len = w.kernel_w * c;
            put(&src[base..base + len], &mut col[j..j + len]);
            j += len;
        } else {
            for kx in 0..w.kernel_w {
                let base = (row + at.ox * w.stride_w + kx * w.dilation_w) * c;
                put(&src[base..base + c], &mut col[j..j + c]);
                j += c;
            }
        }
    }
    j
}
