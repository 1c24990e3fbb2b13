//! DEPTHWISE_CONV_2D with TFLite's int8 per-channel semantics
//! (`reference_integer_ops::DepthwiseConvPerChannel`), depth multiplier and dilation included.

use std::sync::{Arc, Mutex};

use crate::aligned::Aligned;
use crate::conv::{Scratch, expand_requant, per_channel_bytes};
use crate::error::{KernelError, check_len, ensure};
use crate::geometry::{Shape4, Window, WindowSpec};
use crate::quant::{Multipliers, Requant, Rounding};
use crate::slab::{Slab, cut};

const OP: &str = "depthwise_conv2d";

/// What a caller knows about a depthwise convolution before it is prepared.
#[derive(Clone, Debug)]
pub struct DepthwiseConv2dSpec {
    pub input: Shape4,
    pub output: Shape4,
    pub window: WindowSpec,
    /// Filter, `[1][kh][kw][in_c * depth_multiplier]`.
    pub filter: Vec<i8>,
    pub depth_multiplier: usize,
    pub bias: Option<Vec<i32>>,
    pub requant: Vec<Requant>,
    pub input_offset: i32,
    pub output_offset: i32,
    pub act_min: i32,
    pub act_max: i32,
    pub rounding: Rounding,
}

/// A depthwise convolution ready to run.
#[derive(Debug)]
pub struct DepthwiseConv2d {
    pub(crate) input: Shape4,
    pub(crate) output: Shape4,
    pub(crate) window: Window,
    /// (Weights and per-channel arrays are shared with the layer's slabs.)
    pub(crate) filter: Arc<Vec<i8>>,
    pub(crate) depth_multiplier: usize,
    pub(crate) bias: Arc<Vec<i32>>,
    pub(crate) requant: Arc<Vec<Requant>>,
    pub(crate) input_offset: i32,
    pub(crate) output_offset: i32,
    pub(crate) act_min: i32,
    pub(crate) act_max: i32,
    pub(crate) rounding: Rounding,
    /// Filter as i32 `[tap][channel]` for the vector paths.
    pub(crate) filter_i32: Arc<Vec<i32>>,
    /// Filter as i16 `[tap pair][channel][2]`, the taps of each pair side
    /// by side in [`pair_taps`] order, for `vpmaddwd`.
    pub(crate) filter_pairs: Arc<Aligned<i16>>,
    /// `bias + input_offset · Σ taps` per channel.
    pub(crate) bias_folded: Arc<Aligned<i32>>,
    /// `requant` as two arrays, for the vector paths.
    pub(crate) multipliers: Arc<Multipliers>,
    pub(crate) scratch: Mutex<Scratch>,
    /// The most bytes `scratch` grows to on any kernel set.
    scratch_bound: usize,
}

impl DepthwiseConv2d {
    pub fn new(spec: DepthwiseConv2dSpec) -> Result<Self, KernelError> {
        let DepthwiseConv2dSpec {
            input,
            output,
            window,
            filter,
            depth_multiplier,
            bias,
            requant,
            input_offset,
            output_offset,
            act_min,
            act_max,
            rounding,
        } = spec;
        ensure!(
            OP,
            input.len().is_some() && output.len().is_some(),
            "shape overflows"
        );
        ensure!(
            OP,
            input.n == output.n,
            "batch {} in, {} out",
            input.n,
            output.n
        );
        ensure!(
            OP,
            depth_multiplier > 0,
            "depth multiplier must be positive"
        );
        ensure!(
            OP,
            input.c.checked_mul(depth_multiplier) == Some(output.c),
            "{} input channels x multiplier {depth_multiplier} != {} output channels",
            input.c,
            output.c
        );
        let window = window.resolve(OP, input.h, input.w, output.h, output.w)?;
        let want = output.c.checked_mul(window.kernel_h * window.kernel_w);
        ensure!(
            OP,
            want == Some(filter.len()),
            "filter holds {} values, expected 1x{}x{}x{}",
            filter.len(),
            window.kernel_h,
            window.kernel_w,
            output.c
        );
        let bias = bias.unwrap_or_else(|| vec![0; output.c]);
        ensure!(
            OP,
            bias.len() == output.c,
            "bias holds {} values for {} output channels",
            bias.len(),
            output.c
        );
        let requant = expand_requant(OP, requant, output.c)?;
        ensure!(
            OP,
            act_min <= act_max,
            "activation range {act_min}..{act_max} is empty"
        );
        // Accumulators for one output row across its channels.
        let scratch_bound = scratch_bound(input, output, &window, depth_multiplier)?;
        let filter_i32: Vec<i32> = filter.iter().map(|&f| f as i32).collect();
        let filter_pairs = tap_pairs(&filter, output.c, window.kernel_h, window.kernel_w);
        let mut bias_folded = bias.clone();
        for tap in filter_i32.chunks_exact(output.c) {
            for (b, &f) in bias_folded.iter_mut().zip(tap) {
                *b = b.wrapping_add(input_offset.wrapping_mul(f));
            }
        }
        let multipliers = Multipliers::new(&requant);
        Ok(DepthwiseConv2d {
            input,
            output,
            window,
            filter: Arc::new(filter),
            depth_multiplier,
            bias: Arc::new(bias),
            requant: Arc::new(requant),
            input_offset,
            output_offset,
            act_min,
            act_max,
            rounding,
            filter_i32: Arc::new(filter_i32),
            filter_pairs: Arc::new(filter_pairs),
            bias_folded: Arc::new(Aligned::copied(&bias_folded)),
            multipliers: Arc::new(multipliers),
            scratch: Mutex::new(Scratch::default()),
            scratch_bound,
        })
    }

    /// The layer cut into at most `parts` slabs of output rows that run
    /// independently ([`slab`](crate::slab)), sharing these weights; empty
    /// when it does not split (a batch, a single row).
    pub fn slabs(&self, parts: usize) -> Result<Vec<Slab<DepthwiseConv2d>>, KernelError> {
        let multiplier = self.depth_multiplier;
        cut(self.input, self.output, &self.window, parts, |g| {
            Ok(DepthwiseConv2d {
                input: g.input,
                output: g.output,
                window: g.window,
                filter: self.filter.clone(),
                bias: self.bias.clone(),
                requant: self.requant.clone(),
                filter_i32: self.filter_i32.clone(),
                filter_pairs: self.filter_pairs.clone(),
                bias_folded: self.bias_folded.clone(),
                multipliers: self.multipliers.clone(),
                scratch: Mutex::new(Scratch::default()),
                scratch_bound: scratch_bound(g.input, g.output, &g.window, multiplier)?,
                ..*self
            })
        })
    }

    /// Host memory a slab holds beyond the weights it shares: its scratch.
    pub fn slab_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.scratch_bound
    }

    pub fn macs(&self) -> u64 {
        (self.output.len().unwrap_or(0) as u64)
            .saturating_mul((self.window.kernel_h * self.window.kernel_w) as u64)
    }

    /// The most host memory the prepared layer holds: its filter as i8,
    /// i32 and i16 pairs, biases, multipliers, and the scratch its runs may
    /// grow to.
    pub fn heap_bytes(&self) -> usize {
        5 * self.filter.len()
            + 2 * self.filter_pairs.len()
            + per_channel_bytes(
                &self.bias,
                &self.bias_folded,
                &self.requant,
                &self.multipliers,
            )
            + self.scratch_bound
    }

    /// What [`heap_bytes`](Self::heap_bytes) of the layer [`new`](Self::new)
    /// would prepare from these shapes comes to, before anything is
    /// allocated. Refuses windows and sizes `new` would refuse.
    pub fn heap_bytes_for(
        input: Shape4,
        output: Shape4,
        window: WindowSpec,
        depth_multiplier: usize,
    ) -> Result<usize, KernelError> {
        let window = window.resolve(OP, input.h, input.w, output.h, output.w)?;
        let oc = output.c;
        let per_channel = 8 * oc + std::mem::size_of::<Requant>() * oc + Multipliers::bytes_for(oc);
        let taps = window.kernel_h * window.kernel_w;
        // i8 and i32 per tap, and i16 for each of the pairs' two slots.
        taps.checked_mul(oc)
            .and_then(|f| f.checked_mul(5))
            .and_then(|b| b.checked_add(taps.div_ceil(2).checked_mul(4 * oc)?))
            .and_then(|b| b.checked_add(per_channel))
            .and_then(|b| {
                b.checked_add(scratch_bound(input, output, &window, depth_multiplier).ok()?)
            })
            .ok_or_else(|| KernelError::new(OP, "the layer would not fit in memory"))
    }

    /// Bytes the scratch holds now, and the bound [`heap_bytes`](Self::heap_bytes) counts.
    #[cfg(test)]
    pub(crate) fn scratch_bytes(&self) -> (usize, usize) {
        let s = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        (s.bytes(), self.scratch_bound)
    }
}

/// The taps (indices in window order) that share each pair of a
/// `kh`×`kw` window in `filter_pairs`, in order. Rows pair vertically,
/// (0, 1), (2, 3), …, one pair per column, so that with a stride equal to
/// the dilation neighbouring pixels share a column's interleaved inputs;
/// an odd window's last row pairs along itself, its last odd tap with
/// itself under a zero filter. There are `⌈kh·kw/2⌉` pairs, and in this
/// order of taps the last is the farthest, as in window order.
pub(crate) fn pair_taps(kh: usize, kw: usize) -> impl Iterator<Item = (usize, usize)> {
    let vertical =
        (0..kh / 2).flat_map(move |r| (0..kw).map(move |x| (2 * r * kw + x, (2 * r + 1) * kw + x)));
    let last = (kh % 2 == 1).then(|| (kh - 1) * kw);
    let along = last.into_iter().flat_map(move |base| {
        (0..kw)
            .step_by(2)
            .map(move |x| (base + x, base + (x + 1).min(kw - 1)))
    });
    vertical.chain(along)
}

/// `filter` (`[tap][channel]`) as `[tap pair][channel][2]` i16, pairs in
/// [`pair_taps`] order, a tap paired with itself meeting a zero.
fn tap_pairs(filter: &[i8], c: usize, kh: usize, kw: usize) -> Aligned<i16> {
    let c = c.max(1);
    let mut out = Aligned::zeroed((kh * kw).div_ceil(2) * 2 * c);
    let mut at = out.iter_mut();
    for (a, b) in pair_taps(kh, kw) {
        for ch in 0..c {
            for v in [
                filter[a * c + ch],
                if b == a { 0 } else { filter[b * c + ch] },
            ] {
                if let Some(slot) = at.next() {
                    *slot = v as i16;
                }
            }
        }
    }
    debug_assert!(at.next().is_none(), "pair_taps gives ceil(kh·kw / 2) pairs");
    out
}

/// The most scratch a depthwise conv's runs take on any kernel set: the
/// accumulators of one output row across its channels (of the column, for
/// an output one pixel wide), and the input
/// (with its channels repeated by a multiplier above 1) padded.
fn scratch_bound(
    input: Shape4,
    output: Shape4,
    window: &Window,
    depth_multiplier: usize,
) -> Result<usize, KernelError> {
    let pixels = if output.w == 1 { output.h } else { output.w };
    let acc = pixels.saturating_mul(output.c);
    let widened = Shape4 {
        c: output.c,
        ..input
    };
    let expanded = if depth_multiplier > 1 {
        widened.len()
    } else {
        Some(0)
    };
    Scratch::bound(widened, output, window, 0, acc)
        .zip(expanded)
        .and_then(|(a, b)| a.checked_add(b))
        .ok_or_else(|| KernelError::new(OP, "the padded input would not fit in memory"))
}

/// Scalar reference.
pub fn depthwise_conv2d_scalar(
    k: &DepthwiseConv2d,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    let (is, os, w) = (k.input, k.output, k.window);
    check_len(OP, "input", input.len(), is.len().unwrap_or(0))?;
    check_len(OP, "output", output.len(), os.len().unwrap_or(0))?;
    let dm = k.depth_multiplier;
    for b in 0..os.n {
        for oy in 0..os.h {
            for ox in 0..os.w {
                for ic in 0..is.c {
                    for m in 0..dm {
                        let oc = ic * dm + m;
                        let mut acc: i32 = 0;
                        for ky in 0..w.kernel_h {
                            let Some(iy) =
                                Window::tap(oy, w.stride_h, w.pad_top, ky, w.dilation_h, is.h)
                            else {
                                continue;
                            };
                            for kx in 0..w.kernel_w {
                                let Some(ix) =
                                    Window::tap(ox, w.stride_w, w.pad_left, kx, w.dilation_w, is.w)
                                else {
                                    continue;
                                };
                                let x = input[is.offset(b, iy, ix, ic)] as i32;
                                let f = k.filter[(ky * w.kernel_w + kx) * os.c + oc] as i32;
                                acc = acc.wrapping_add(f * (x + k.input_offset));
                            }
                        }
                        acc = acc.wrapping_add(k.bias[oc]);
                        let v = k.requant[oc]
                            .apply(acc, k.rounding)
                            .wrapping_add(k.output_offset);
                        output[os.offset(b, oy, ox, oc)] = v.clamp(k.act_min, k.act_max) as i8;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Padding;

    #[test]
    fn pairs_cover_every_tap_once() {
        for kh in 1usize..=7 {
            for kw in 1usize..=7 {
                assert_eq!(pair_taps(kh, kw).count(), (kh * kw).div_ceil(2));
                let mut seen = vec![0; kh * kw];
                for (a, b) in pair_taps(kh, kw) {
                    seen[a] += 1;
                    if b != a {
                        seen[b] += 1;
                    }
                }
                assert!(seen.iter().all(|&n| n == 1), "{kh}x{kw}: {seen:?}");
            }
        }
        // 3×3: the columns of rows 0-1, then row 2 along itself.
        let order: Vec<_> = pair_taps(3, 3).collect();
        assert_eq!(order, [(0, 3), (1, 4), (2, 5), (6, 7), (8, 8)]);
    }

    #[test]
    fn depth_multiplier_by_hand() {
        // 1x2x1x2 input, 1x2 kernel, multiplier 2 -> 4 output channels at one pixel.
        let k = DepthwiseConv2d::new(DepthwiseConv2dSpec {
            input: Shape4::new(1, 1, 2, 2),
            output: Shape4::new(1, 1, 1, 4),
            window: WindowSpec {
                kernel_h: 1,
                kernel_w: 2,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                padding: Padding::Valid,
            },
            // tap 0 then tap 1, each over channels [c0m0, c0m1, c1m0, c1m1]
            filter: vec![1, 2, 3, 4, 5, 6, 7, 8],
            depth_multiplier: 2,
            bias: Some(vec![0, 0, 0, 100]),
            requant: vec![Requant::from_real(0.5, Rounding::Single)],
            input_offset: 0,
            output_offset: 0,
            act_min: -128,
            act_max: 127,
            rounding: Rounding::Single,
        })
        .unwrap();
        // pixels: (c0=2, c1=4), (c0=6, c1=8)
        let mut out = [0i8; 4];
        depthwise_conv2d_scalar(&k, &[2, 4, 6, 8], &mut out).unwrap();
        // oc0 = 2*1 + 6*5 = 32 -> 16; oc1 = 2*2 + 6*6 = 40 -> 20
        // oc2 = 4*3 + 8*7 = 68 -> 34; oc3 = 4*4 + 8*8 + 100 = 180 -> 90
        assert_eq!(out, [16, 20, 34, 90]);
    }
}
