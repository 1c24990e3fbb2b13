//! A window operator's output cut into slabs of whole rows, each run as a
//! layer of its own so that several threads can share one inference.
//!
//! A slab reads only the input rows its windows cover. Its padding is what
//! the whole layer's padding leaves inside those rows: the top slab keeps
//! the layer's top padding, the others start on real rows (or on the
//! padding their first window still reaches). Every tap of a slab's window
//! lands on the same input element, or on padding, as it does in the whole
//! layer, so a slab's outputs are the whole layer's, bit for bit, on every
//! kernel set. The weights are shared, not copied; each slab has its own
//! scratch.

use std::ops::Range;

use crate::error::KernelError;
use crate::geometry::{Shape4, Window};

/// One part of a layer's output, ready to run on its own.
#[derive(Debug)]
pub struct Slab<K> {
    /// The layer restricted to the slab: run it on `input` of the whole
    /// layer's input, writing `output` of the whole layer's output.
    pub op: K,
    /// The elements of the whole input the slab reads.
    pub input: Range<usize>,
    /// The elements of the whole output the slab writes.
    pub output: Range<usize>,
}

/// Where one slab sits in the whole layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlabGeometry {
    pub(crate) input: Shape4,
    pub(crate) output: Shape4,
    pub(crate) window: Window,
    /// First input row it reads.
    pub(crate) in_row: usize,
    /// First output row it writes.
    pub(crate) out_row: usize,
}

impl SlabGeometry {
    pub(crate) fn ranges(&self, is: Shape4, os: Shape4) -> (Range<usize>, Range<usize>) {
        let in_row = is.w * is.c;
        let out_row = os.w * os.c;
        (
            self.in_row * in_row..(self.in_row + self.input.h) * in_row,
            self.out_row * out_row..(self.out_row + self.output.h) * out_row,
        )
    }
}

/// The layer of shapes `is` → `os` and window `w` cut into at most
/// `parts` slabs ([`row_slabs`]), each made by `make` from its geometry.
pub(crate) fn cut<K>(
    is: Shape4,
    os: Shape4,
    w: &Window,
    parts: usize,
    make: impl Fn(&SlabGeometry) -> Result<K, KernelError>,
) -> Result<Vec<Slab<K>>, KernelError> {
    row_slabs(is, os, w, parts)
        .iter()
        .map(|g| {
            let (input, output) = g.ranges(is, os);
            Ok(Slab {
                op: make(g)?,
                input,
                output,
            })
        })
        .collect()
}

/// Cuts the output rows of a one-image layer into at most `parts` slabs of
/// nearly equal height. Empty when there is nothing to share (one part,
/// one row, a batch of images), or when some slab's windows would read no
/// input row at all (a dilated window over padding only), which a layer
/// of zero rows could not express.
pub(crate) fn row_slabs(is: Shape4, os: Shape4, w: &Window, parts: usize) -> Vec<SlabGeometry> {
    let parts = parts.min(os.h);
    if parts < 2 || is.n != 1 || os.n != 1 {
        return Vec::new();
    }
    let reach = (w.kernel_h - 1) * w.dilation_h + 1;
    let mut slabs = Vec::with_capacity(parts);
    for p in 0..parts {
        let (r0, r1) = (p * os.h / parts, (p + 1) * os.h / parts);
        // The rows the slab's windows span, in padded coordinates (the
        // whole layer's input row `y` is `y + pad_top`).
        let first = r0 * w.stride_h;
        let end = (r1 - 1) * w.stride_h + reach;
        let in0 = first.max(w.pad_top) - w.pad_top;
        let in1 = end.saturating_sub(w.pad_top).min(is.h);
        if in1 <= in0 {
            return Vec::new();
        }
        slabs.push(SlabGeometry {
            input: Shape4::new(1, in1 - in0, is.w, is.c),
            output: Shape4::new(1, r1 - r0, os.w, os.c),
            window: Window {
                pad_top: w.pad_top.saturating_sub(first),
                ..*w
            },
            in_row: in0,
            out_row: r0,
        });
    }
    slabs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(k: usize, stride: usize, dilation: usize, pad_top: usize) -> Window {
        Window {
            kernel_h: k,
            kernel_w: 1,
            stride_h: stride,
            stride_w: 1,
            dilation_h: dilation,
            dilation_w: 1,
            pad_top,
            pad_left: 0,
        }
    }

    /// The whole layer's input row a slab's tap reads, if any.
    fn tap(w: &Window, oy: usize, ky: usize, h: usize) -> Option<usize> {
        Window::tap(oy, w.stride_h, w.pad_top, ky, w.dilation_h, h)
    }

    #[test]
    fn every_tap_reads_what_the_whole_layer_reads() {
        for (k, stride, dilation, pad_top, in_h, out_h) in [
            (3, 1, 1, 1, 10, 10),
            (3, 2, 1, 0, 11, 5),
            (5, 2, 2, 4, 9, 5),
            (1, 1, 1, 0, 4, 4),
            (7, 3, 1, 3, 20, 7),
        ] {
            let w = window(k, stride, dilation, pad_top);
            let (is, os) = (Shape4::new(1, in_h, 1, 1), Shape4::new(1, out_h, 1, 1));
            for parts in 2..=out_h {
                let slabs = row_slabs(is, os, &w, parts);
                assert_eq!(slabs.len(), parts);
                assert_eq!(slabs.iter().map(|s| s.output.h).sum::<usize>(), out_h);
                for s in &slabs {
                    for oy in 0..s.output.h {
                        for ky in 0..k {
                            let whole = tap(&w, s.out_row + oy, ky, in_h);
                            let part = tap(&s.window, oy, ky, s.input.h).map(|y| y + s.in_row);
                            assert_eq!(whole, part, "{k} {stride} {dilation} {parts} {oy} {ky}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn nothing_to_share_gives_no_slabs() {
        let w = window(3, 1, 1, 1);
        let one = Shape4::new(1, 8, 1, 1);
        assert!(row_slabs(one, one, &w, 1).is_empty());
        let batch = Shape4::new(2, 8, 1, 1);
        assert!(row_slabs(batch, batch, &w, 4).is_empty());
        // No window TFLite pads reads padding only, but a slab of no rows
        // is refused all the same.
        let over_padding = window(1, 1, 1, 5);
        let two = Shape4::new(1, 2, 1, 1);
        assert!(row_slabs(two, two, &over_padding, 2).is_empty());
    }
}
