//! CONV_2D with TFLite's int8 per-channel semantics (`reference_integer_ops::ConvPerChannel`).

use std::sync::{Arc, Mutex, MutexGuard};

use crate::aligned::Aligned;
use crate::error::{KernelError, check_len, ensure};
use crate::geometry::{Shape4, Window, WindowSpec};
use crate::pack::{Packed, WeightLayout};
use crate::quant::{Multipliers, Requant, Rounding};
use crate::slab::{Slab, cut};

const OP: &str = "conv2d";

/// What a caller knows about a convolution before it is prepared.
#[derive(Clone, Debug)]
pub struct Conv2dSpec {
    pub input: Shape4,
    pub output: Shape4,
    pub window: WindowSpec,
    /// Filter, `[out_c][kh][kw][in_c / groups]`.
    pub filter: Vec<i8>,
    /// Input channels each filter sees; `input.c / filter_in_c` groups.
    pub filter_in_c: usize,
    /// One bias per output channel, or none.
    pub bias: Option<Vec<i32>>,
    /// One multiplier per output channel, or one for all.
    pub requant: Vec<Requant>,
    pub input_offset: i32,
    /// Added to every filter value: minus the filter's zero point. 0 for
    /// TFLite's symmetric filters; onnxruntime's may be asymmetric.
    pub weights_offset: i32,
    pub output_offset: i32,
    pub act_min: i32,
    pub act_max: i32,
    pub rounding: Rounding,
    /// The weight layout of the kernel set that will run it.
    pub layout: WeightLayout,
}

/// A convolution ready to run: validated, with weights owned (and repacked
/// for the vector paths) by the host.
#[derive(Debug)]
pub struct Conv2d {
    pub(crate) input: Shape4,
    pub(crate) output: Shape4,
    pub(crate) window: Window,
    pub(crate) filter: Arc<Vec<i8>>,
    pub(crate) filter_in_c: usize,
    pub(crate) bias: Arc<Vec<i32>>,
    pub(crate) requant: Arc<Vec<Requant>>,
    pub(crate) input_offset: i32,
    pub(crate) weights_offset: i32,
    pub(crate) output_offset: i32,
    pub(crate) act_min: i32,
    pub(crate) act_max: i32,
    pub(crate) rounding: Rounding,
    /// Filter rows in the kernel set's layout (ungrouped convolutions only).
    /// (Weights and per-channel arrays are shared with the layer's slabs.)
    pub(crate) packed: Option<Arc<Packed>>,
    /// The bias with the input offset folded in, for `packed`.
    pub(crate) bias_folded: Arc<Aligned<i32>>,
    /// `requant` as two arrays, for the vector paths.
    pub(crate) multipliers: Arc<Multipliers>,
    pub(crate) scratch: Mutex<Scratch>,
    /// The most bytes `scratch` grows to on any kernel set.
    scratch_bound: usize,
}

/// Buffers a vector kernel reuses between runs, so a run allocates nothing.
#[derive(Debug, Default)]
pub struct Scratch {
    pub(crate) padded: Aligned<i8>,
    pub(crate) col: Aligned<i16>,
    pub(crate) acc: Aligned<i32>,
    /// The input patch as u8 for the VNNI path.
    pub(crate) col8: Aligned<u8>,
    /// The whole input as u8, for pointwise convolutions on the VNNI path.
    pub(crate) shifted: Aligned<u8>,
    /// (tap index, element offset from the window's corner) for depthwise.
    pub(crate) taps: Vec<(usize, usize)>,
    /// A depthwise input with each channel repeated by the depth multiplier.
    pub(crate) expanded: Vec<i8>,
    /// The outputs of a group shorter than the GEMM's pixels, run whole
    /// (see [`crate::drive::blocks::Micro::short_min`]).
    pub(crate) short_out: Aligned<i8>,
}

/// Most pixels (or rows) any kernel set's GEMM runs per weight load: the
/// AMX set's tiles take sixteen.
pub(crate) const MAX_PIXELS: usize = 16;

impl Scratch {
    /// Bytes the buffers hold now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.padded.capacity()
            + 2 * self.col.capacity()
            + 4 * self.acc.capacity()
            + self.col8.capacity()
            + self.shifted.capacity()
            + std::mem::size_of::<(usize, usize)>() * self.taps.capacity()
            + self.expanded.capacity()
            + self.short_out.capacity()
    }

    /// An upper bound of [`bytes`](Self::bytes) for a window operator on
    /// any kernel set: the input padded for the window (as i8 or u8, with
    /// slack, and as i16), a patch of `k` taps for [`MAX_PIXELS`] pixels as i16 and as
    /// u8, the window's taps, `acc` accumulators and [`MAX_PIXELS`] pixels
    /// of output. `None` when it would
    /// not fit in memory, which is how a window dilated to absurd sizes is
    /// refused before anything is allocated.
    pub(crate) fn bound(is: Shape4, os: Shape4, w: &Window, k: usize, acc: usize) -> Option<usize> {
        let (ph, pw) = crate::pack::padded_size(is, w, os.h, os.w);
        let padded = is.n.checked_mul(ph)?.checked_mul(pw)?.checked_mul(is.c)?;
        // Patches pad k to whole vectors, and each kernel row to groups of 4.
        let kp = k.checked_add(w.kernel_h.checked_mul(4)?)?.checked_add(64)?;
        let taps = w.kernel_h.checked_mul(w.kernel_w)?;
        padded
            .checked_add(64)?
            // The same widened to i16, with a value of slack (AVX2's pairs).
            .checked_add(padded.checked_add(1)?.checked_mul(2)?)?
            .checked_add(kp.checked_mul(2 + MAX_PIXELS)?)?
            .checked_add(taps.checked_mul(std::mem::size_of::<(usize, usize)>())?)?
            .checked_add(acc.checked_mul(4)?)?
            .checked_add(os.c.checked_mul(MAX_PIXELS)?)?
            // Six of the buffers round up to whole cache lines (`Aligned`).
            .checked_add(6 * 64)
    }
}

impl Conv2d {
    pub fn new(spec: Conv2dSpec) -> Result<Self, KernelError> {
        let Conv2dSpec {
            input,
            output,
            window,
            filter,
            filter_in_c,
            bias,
            requant,
            input_offset,
            weights_offset,
            output_offset,
            act_min,
            act_max,
            rounding,
            layout,
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
            filter_in_c > 0 && input.c % filter_in_c == 0,
            "input has {} channels, not a multiple of the filter's {filter_in_c}",
            input.c
        );
        let groups = input.c / filter_in_c;
        ensure!(
            OP,
            output.c > 0 && output.c % groups == 0,
            "{} output channels do not split into {groups} groups",
            output.c
        );
        let window = window.resolve(OP, input.h, input.w, output.h, output.w)?;
        let want = output
            .c
            .checked_mul(window.kernel_h * window.kernel_w)
            .and_then(|v| v.checked_mul(filter_in_c));
        ensure!(
            OP,
            want == Some(filter.len()),
            "filter holds {} values, expected {}x{}x{}x{}",
            filter.len(),
            output.c,
            window.kernel_h,
            window.kernel_w,
            filter_in_c
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
        ensure!(
            OP,
            (-255..=255).contains(&weights_offset),
            "filter zero point {} outside 8 bits",
            -weights_offset
        );
        let k = window.kernel_h * window.kernel_w * filter_in_c;
        let scratch_bound = scratch_bound(input, output, &window, k)?;
        // Without horizontal dilation a kernel row is contiguous in the
        // input, so the GEMM can read the window in place, a run per row.
        let kernel_rows = if window.dilation_w == 1 {
            window.kernel_h
        } else {
            1
        };
        let (packed, bias_folded) = match (filter_in_c == input.c)
            .then(|| {
                Packed::new(
                    layout,
                    &filter,
                    output.c,
                    k,
                    kernel_rows,
                    weights_offset,
                    &bias,
                    input_offset,
                )
            })
            .flatten()
        {
            Some((p, b)) => (Some(p), b),
            None => (None, vec![]),
        };
        let multipliers = Multipliers::new(&requant);
        Ok(Conv2d {
            input,
            output,
            window,
            filter: Arc::new(filter),
            filter_in_c,
            bias: Arc::new(bias),
            requant: Arc::new(requant),
            input_offset,
            weights_offset,
            output_offset,
            act_min,
            act_max,
            rounding,
            packed: packed.map(Arc::new),
            bias_folded: Arc::new(Aligned::copied(&bias_folded)),
            multipliers: Arc::new(multipliers),
            scratch: Mutex::new(Scratch::default()),
            scratch_bound,
        })
    }

    /// The layer cut into at most `parts` slabs of output rows that run
    /// independently ([`slab`](crate::slab)), sharing these weights; empty
    /// when it does not split (a batch, a single row).
    pub fn slabs(&self, parts: usize) -> Result<Vec<Slab<Conv2d>>, KernelError> {
        let k = self.window.kernel_h * self.window.kernel_w * self.filter_in_c;
        cut(self.input, self.output, &self.window, parts, |g| {
            Ok(Conv2d {
                input: g.input,
                output: g.output,
                window: g.window,
                filter: self.filter.clone(),
                bias: self.bias.clone(),
                requant: self.requant.clone(),
                packed: self.packed.clone(),
                bias_folded: self.bias_folded.clone(),
                multipliers: self.multipliers.clone(),
                scratch: Mutex::new(Scratch::default()),
                scratch_bound: scratch_bound(g.input, g.output, &g.window, k)?,
                ..*self
            })
        })
    }

    /// The layer's scratch, locked, once `input` and `output` are checked
    /// to be its sizes: what every vector driver does first.
    pub(crate) fn checked_scratch(
        &self,
        input: &[i8],
        output: &[i8],
    ) -> Result<MutexGuard<'_, Scratch>, KernelError> {
        check_len(OP, "input", input.len(), self.input.len().unwrap_or(0))?;
        check_len(OP, "output", output.len(), self.output.len().unwrap_or(0))?;
        Ok(self.scratch.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Host memory a slab holds beyond the weights it shares: its scratch.
    pub fn slab_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.scratch_bound
    }

    /// Multiply-accumulates per inference, for throughput figures.
    pub fn macs(&self) -> u64 {
        (self.output.len().unwrap_or(0) as u64)
            .saturating_mul((self.window.kernel_h * self.window.kernel_w * self.filter_in_c) as u64)
    }

    /// The most host memory the prepared layer holds: its weights in every
    /// form, its multipliers, and the scratch its runs may grow to.
    pub fn heap_bytes(&self) -> usize {
        self.filter.len()
            + per_channel_bytes(
                &self.bias,
                &self.bias_folded,
                &self.requant,
                &self.multipliers,
            )
            + self.packed.as_deref().map_or(0, Packed::bytes)
            + self.scratch_bound
    }

    /// What [`heap_bytes`](Self::heap_bytes) of the layer [`new`](Self::new)
    /// would prepare from these shapes comes to, worked out before anything
    /// is allocated, so that a caller can charge it first. Refuses windows
    /// and sizes `new` would refuse.
    pub fn heap_bytes_for(
        input: Shape4,
        output: Shape4,
        window: WindowSpec,
        filter_in_c: usize,
        weights_offset: i32,
        layout: WeightLayout,
    ) -> Result<usize, KernelError> {
        let window = window.resolve(OP, input.h, input.w, output.h, output.w)?;
        let too_big = || KernelError::new(OP, "the layer would not fit in memory");
        let k = (window.kernel_h * window.kernel_w)
            .checked_mul(filter_in_c)
            .ok_or_else(too_big)?;
        let oc = output.c;
        let kernel_rows = if window.dilation_w == 1 {
            window.kernel_h
        } else {
            1
        };
        let packed = if filter_in_c == input.c {
            Packed::bytes_for(layout, oc, k, kernel_rows, weights_offset).ok_or_else(too_big)?
        } else {
            0
        };
        let biases = if packed > 0 { 2 * oc } else { oc };
        let per_channel =
            4 * biases + std::mem::size_of::<Requant>() * oc + Multipliers::bytes_for(oc);
        oc.checked_mul(k)
            .and_then(|f| f.checked_add(packed))
            .and_then(|b| b.checked_add(per_channel))
            .and_then(|b| b.checked_add(scratch_bound(input, output, &window, k).ok()?))
            .ok_or_else(too_big)
    }

    /// Bytes the scratch holds now; never above what [`heap_bytes`](Self::heap_bytes) counts.
    #[cfg(test)]
    pub(crate) fn scratch_bytes(&self) -> (usize, usize) {
        let s = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        (s.bytes(), self.scratch_bound)
    }
}

/// Bytes of a layer's per-channel arrays: biases (plain and folded) and
/// multipliers (as records and as two arrays).
pub(crate) fn per_channel_bytes(
    bias: &[i32],
    folded: &[i32],
    requant: &[Requant],
    multipliers: &Multipliers,
) -> usize {
    4 * (bias.len() + folded.len())
        + std::mem::size_of::<Requant>() * requant.len()
        + multipliers.bytes()
}

/// The most scratch a conv's runs take on any kernel set: the padded input
/// and patches for [`MAX_PIXELS`] pixels, with their accumulators.
fn scratch_bound(
    input: Shape4,
    output: Shape4,
    window: &Window,
    k: usize,
) -> Result<usize, KernelError> {
    let acc = output.c.div_ceil(16).saturating_mul(16 * MAX_PIXELS);
    Scratch::bound(input, output, window, k, acc)
        .ok_or_else(|| KernelError::new(OP, "the padded input would not fit in memory"))
}

/// One multiplier per channel: accept per-tensor (one) or per-channel (`n`).
pub(crate) fn expand_requant(
    op: &'static str,
    requant: Vec<Requant>,
    n: usize,
) -> Result<Vec<Requant>, KernelError> {
    match requant.len() {
        1 => Ok(vec![requant[0]; n]),
        len if len == n => Ok(requant),
        len => Err(KernelError::new(
            op,
            format!("{len} multipliers for {n} channels"),
        )),
    }
}

/// Scalar reference: the semantics every faster path must reproduce.
pub fn conv2d_scalar(k: &Conv2d, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    let os = k.output;
    check_len(OP, "input", input.len(), k.input.len().unwrap_or(0))?;
    check_len(OP, "output", output.len(), os.len().unwrap_or(0))?;
    let taps = Taps {
        input: k.input,
        output: os,
        window: k.window,
        filter: &k.filter,
        filter_in_c: k.filter_in_c,
        input_offset: k.input_offset,
    };
    taps.sums(
        input,
        |_| k.weights_offset,
        |at, oc, acc| {
            let acc = acc.wrapping_add(k.bias[oc]);
            let v = k.requant[oc]
                .apply(acc, k.rounding)
                .wrapping_add(k.output_offset);
            output[at] = v.clamp(k.act_min, k.act_max) as i8;
        },
    );
    Ok(())
}

/// What the scalar loops of a convolution read: shapes, window, filter
/// `[out_c][kh][kw][in_c / groups]` and the input's offset.
struct Taps<'a> {
    input: Shape4,
    output: Shape4,
    window: Window,
    filter: &'a [i8],
    filter_in_c: usize,
    input_offset: i32,
}

impl Taps<'_> {
    /// For every output element, `put(offset, out_channel, Σ (w +
    /// weights_offset(oc))·(x + input_offset))` over the taps inside the
    /// input, in int32 that wraps. The caller has checked the lengths.
    fn sums(
        &self,
        input: &[i8],
        weights_offset: impl Fn(usize) -> i32,
        mut put: impl FnMut(usize, usize, i32),
    ) {
        let (is, os, w, icf) = (self.input, self.output, self.window, self.filter_in_c);
        let oc_per_group = os.c / (is.c / icf);
        for b in 0..os.n {
            for oy in 0..os.h {
                for ox in 0..os.w {
                    for oc in 0..os.c {
                        let (group, wo) = (oc / oc_per_group, weights_offset(oc));
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
                                let in_base = is.offset(b, iy, ix, group * icf);
                                let f_base = ((oc * w.kernel_h + ky) * w.kernel_w + kx) * icf;
                                let xs = &input[in_base..in_base + icf];
                                let fs = &self.filter[f_base..f_base + icf];
                                for (&x, &f) in xs.iter().zip(fs) {
                                    acc = acc.wrapping_add(
                                        (f as i32 + wo) * (x as i32 + self.input_offset),
                                    );
                                }
                            }
                        }
                        put(os.offset(b, oy, ox, oc), oc, acc);
                    }
                }
            }
        }
    }
}

/// onnxruntime's ConvInteger (and MatMulInteger, as a 1×1 convolution):
/// the exact int32 sums `Σ (x − xz)·(w − wz[oc])`, with one filter zero
/// point per output channel and no requantization. The sums are the same
/// whatever order they are taken in, so one scalar loop serves every set.
#[derive(Clone, Debug)]
pub struct ConvInteger {
    input: Shape4,
    output: Shape4,
    window: Window,
    /// `[out_c][kh][kw][in_c]`.
    filter: Vec<i8>,
    input_offset: i32,
    /// Minus each output channel's filter zero point.
    weights_offsets: Vec<i32>,
}

impl ConvInteger {
    /// One group only; `weights_offsets` has one value per output channel.
    pub fn new(
        input: Shape4,
        output: Shape4,
        window: WindowSpec,
        filter: Vec<i8>,
        input_offset: i32,
        weights_offsets: Vec<i32>,
    ) -> Result<Self, KernelError> {
        ensure!(
            OP,
            input.len().is_some() && output.len().is_some() && input.n == output.n,
            "shapes {input:?} and {output:?} do not go together"
        );
        let window = window.resolve(OP, input.h, input.w, output.h, output.w)?;
        let taps = window.kernel_h * window.kernel_w;
        ensure!(
            OP,
            Some(filter.len())
                == output
                    .c
                    .checked_mul(taps)
                    .and_then(|n| n.checked_mul(input.c))
                && weights_offsets.len() == output.c,
            "a filter of {} values and {} zero points for {} outputs of {taps} taps of {} channels",
            filter.len(),
            weights_offsets.len(),
            output.c,
            input.c
        );
        Ok(ConvInteger {
            input,
            output,
            window,
            filter,
            input_offset,
            weights_offsets,
        })
    }

    pub fn macs(&self) -> u64 {
        let taps = (self.window.kernel_h * self.window.kernel_w) as u64;
        self.output.len().unwrap_or(0) as u64 * taps * self.input.c as u64
    }

    /// Bytes the prepared operator holds.
    pub fn bytes(&self) -> usize {
        self.filter.len() + 4 * self.weights_offsets.len()
    }
}

/// [`ConvInteger`]: int8 input, the int32 sums little-endian in `output`.
pub fn conv_integer(k: &ConvInteger, input: &[i8], output: &mut [u8]) -> Result<(), KernelError> {
    check_len(OP, "input", input.len(), k.input.len().unwrap_or(0))?;
    check_len(OP, "output", output.len(), k.output.len().unwrap_or(0) * 4)?;
    let taps = Taps {
        input: k.input,
        output: k.output,
        window: k.window,
        filter: &k.filter,
        filter_in_c: k.input.c,
        input_offset: k.input_offset,
    };
    taps.sums(
        input,
        |oc| k.weights_offsets[oc],
        |at, _, acc| {
            output[at * 4..at * 4 + 4].copy_from_slice(&acc.to_le_bytes());
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Padding;

    fn spec_1x1() -> Conv2dSpec {
        Conv2dSpec {
            input: Shape4::new(1, 2, 2, 2),
            output: Shape4::new(1, 2, 2, 1),
            window: WindowSpec {
                kernel_h: 1,
                kernel_w: 1,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                padding: Padding::Valid,
            },
            filter: vec![1, 2],
            filter_in_c: 2,
            bias: Some(vec![10]),
            requant: vec![Requant::from_real(0.5, Rounding::Single)],
            input_offset: 1,
            weights_offset: 0,
            output_offset: -3,
            act_min: -128,
            act_max: 127,
            rounding: Rounding::Single,
            layout: WeightLayout::Original,
        }
    }

    #[test]
    fn pointwise_by_hand() {
        let k = Conv2d::new(spec_1x1()).unwrap();
        let input = [1i8, 2, 3, 4, -1, -1, 0, 0];
        let mut out = [0i8; 4];
        conv2d_scalar(&k, &input, &mut out).unwrap();
        // pixel 0: (1+1)*1 + (2+1)*2 + 10 = 18 -> 9 -> 6
        // pixel 1: 4 + 10 + 10 = 24 -> 12 -> 9
        // pixel 2: 0 + 0 + 10 = 10 -> 5 -> 2
        // pixel 3: 1 + 2 + 10 = 13 -> 6.5 -> 7 -> 4
        assert_eq!(out, [6, 9, 2, 4]);
    }

    #[test]
    fn an_asymmetric_filter_subtracts_its_zero_point() {
        // onnxruntime's uint8 filters shifted to int8 keep a zero point.
        let k = Conv2d::new(Conv2dSpec {
            weights_offset: 3,
            ..spec_1x1()
        })
        .unwrap();
        let input = [1i8, 2, 3, 4, -1, -1, 0, 0];
        let mut out = [0i8; 4];
        conv2d_scalar(&k, &input, &mut out).unwrap();
        // filter [4, 5]; pixel 0: 2*4 + 3*5 + 10 = 33 -> 16.5 -> 17 -> 14
        // pixel 1: 16 + 25 + 10 = 51 -> 25.5 -> 26 -> 23
        // pixel 2: 0 + 0 + 10 = 10 -> 5 -> 2
        // pixel 3: 4 + 5 + 10 = 19 -> 9.5 -> 10 -> 7
        assert_eq!(out, [14, 23, 2, 7]);
        let refused = Conv2d::new(Conv2dSpec {
            weights_offset: 256,
            ..spec_1x1()
        });
        assert!(refused.is_err());
    }

    #[test]
    fn same_padding_skips_outside_taps() {
        // 3x3 ones over a 3x3 input of ones: corners see 4 taps, edges 6, centre 9.
        let k = Conv2d::new(Conv2dSpec {
            input: Shape4::new(1, 3, 3, 1),
            output: Shape4::new(1, 3, 3, 1),
            window: WindowSpec {
                kernel_h: 3,
                kernel_w: 3,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                padding: Padding::Same,
            },
            filter: vec![1; 9],
            filter_in_c: 1,
            bias: None,
            requant: vec![Requant::from_real(0.5, Rounding::Single)],
            input_offset: 0,
            weights_offset: 0,
            output_offset: 0,
            act_min: -128,
            act_max: 127,
            rounding: Rounding::Single,
            layout: WeightLayout::Original,
        })
        .unwrap();
        let mut out = [0i8; 9];
        conv2d_scalar(&k, &[2; 9], &mut out).unwrap();
        assert_eq!(out, [4, 6, 4, 6, 9, 6, 4, 6, 4]);
    }

    #[test]
    fn dilation_and_activation_clamp() {
        // 5x5 input, 2x2 kernel dilated by 2 -> VALID gives 3x3.
        let k = Conv2d::new(Conv2dSpec {
            input: Shape4::new(1, 5, 5, 1),
            output: Shape4::new(1, 3, 3, 1),
            window: WindowSpec {
                kernel_h: 2,
                kernel_w: 2,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 2,
                dilation_w: 2,
                padding: Padding::Valid,
            },
            filter: vec![1, 1, 1, 1],
            filter_in_c: 1,
            bias: None,
            requant: vec![Requant::from_real(0.5, Rounding::Single)],
            input_offset: 0,
            weights_offset: 0,
            output_offset: 0,
            act_min: 0,
            act_max: 10,
            rounding: Rounding::Single,
            layout: WeightLayout::Original,
        })
        .unwrap();
        let input: Vec<i8> = (0..25).map(|i| i as i8 - 12).collect();
        let mut out = [0i8; 9];
        conv2d_scalar(&k, &input, &mut out).unwrap();
        // out(0,0) = (x00 + x02 + x20 + x22)/2 = (-12 -10 -2 0)/2 = -12 -> clamp 0.
        // out(2,2) = (x22 + x24 + x42 + x44)/2 = (0+2+10+12)/2 = 12 -> clamp 10.
        assert_eq!(out[0], 0);
        assert_eq!(out[8], 10);
        // out(1,1) = (x11+x13+x31+x33)/2 = (-6-4+4+6)/2 = 0.
        assert_eq!(out[4], 0);
    }

    #[test]
    fn rejects_bad_shapes() {
        let mut s = spec_1x1();
        s.filter = vec![1];
        assert!(Conv2d::new(s).is_err());
        let mut s = spec_1x1();
        s.output = Shape4::new(1, 3, 2, 1);
        assert!(Conv2d::new(s).is_err());
        let mut s = spec_1x1();
        s.requant = vec![Requant::default(); 3];
        assert!(Conv2d::new(s).is_err());
        let k = Conv2d::new(spec_1x1()).unwrap();
        let mut out = [0i8; 3];
        assert!(conv2d_scalar(&k, &[0; 8], &mut out).is_err());
    }

    /// ConvInteger's sums by hand: a 2×2 filter of ones over a 3×3 input
    /// less its zero point, one channel with a filter zero point of 1.
    #[test]
    fn conv_integer_by_hand() {
        let k = ConvInteger::new(
            Shape4::new(1, 3, 3, 1),
            Shape4::new(1, 2, 2, 2),
            WindowSpec {
                kernel_h: 2,
                kernel_w: 2,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                padding: Padding::Valid,
            },
            vec![1; 8],
            -1,
            vec![0, -1],
        )
        .unwrap();
        let mut out = [0u8; 32];
        conv_integer(&k, &[2, 3, 4, 5, 6, 7, 8, 9, 10], &mut out).unwrap();
        let got: Vec<i32> = out
            .chunks(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        // x − 1 is 1..=9: windows 1+2+4+5 = 12, 16, 24, 28; the second channel's
        // filter is all zeros once its zero point is taken off.
        assert_eq!(got, [12, 0, 16, 0, 24, 0, 28, 0]);
        assert!(
            ConvInteger::new(
                Shape4::new(1, 3, 3, 1),
                Shape4::new(1, 2, 2, 2),
                WindowSpec {
                    kernel_h: 2,
                    kernel_w: 2,
                    stride_h: 1,
                    stride_w: 1,
                    dilation_h: 1,
                    dilation_w: 1,
                    padding: Padding::Valid
                },
                vec![1; 7],
                0,
                vec![0, 0],
            )
            .is_err()
        );
    }
}
