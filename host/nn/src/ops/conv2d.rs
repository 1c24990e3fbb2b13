//! CONV_2D: int8 activations, int8 filters per channel, int32 bias. Filters
//! are symmetric, as TFLite requires, except under onnxruntime's semantics,
//! where QLinearConv takes one filter zero point for the whole filter.

use gatehouse_kernels::{Activation, Conv2dSpec, KernelError, KernelSet, activation_range};

use super::operand::{
    WindowArgs, act_i8, bias_i32, channel_requant, shape4, symmetric, weights_i8, window_spec,
};
use super::sliced::{Sliced, io_bytes};
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::{DType, TensorKey};

/// A 2-D convolution: filter `[out_c, kh, kw, in_c]`.
#[derive(Clone, Debug)]
pub struct Conv2d {
    pub input: TensorKey,
    pub filter: TensorKey,
    pub bias: Option<TensorKey>,
    pub output: TensorKey,
    pub window: WindowArgs,
    pub activation: Activation,
}

impl Operator for Conv2d {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        if cx.st.desc(self.output)?.dtype == DType::I32 {
            return self.prepare_integer(cx);
        }
        let rounding = cx.semantics.conv();
        let (di, s_in, z_in) = act_i8(cx.st, self.input, "conv2d input")?;
        let is = shape4(di, "conv2d input")?;
        let (dout, s_out, z_out) = act_i8(cx.st, self.output, "conv2d output")?;
        let os = shape4(dout, "conv2d output")?;
        let fshape = shape4(cx.st.desc(self.filter)?, "conv2d filter")?;
        if fshape.n != os.c {
            return Err(NnFault::invalid(format!(
                "filter has {} output channels, output has {}",
                fshape.n, os.c
            )));
        }
        let wspec = window_spec(self.window, fshape.h, fshape.w);
        let layout = cx.ks.layout;
        let fzp = filter_zero_point(cx, self.filter)?;
        cx.stage(
            gatehouse_kernels::Conv2d::heap_bytes_for(is, os, wspec, fshape.c, -fzp, layout),
            "conv2d weights",
        )?;
        let (f, fscales, _) = weights_i8(cx.st, self.filter, "conv2d filter", os.c, 0)?;
        let (act_min, act_max) = activation_range(self.activation, s_out, z_out);
        let k = gatehouse_kernels::Conv2d::new(Conv2dSpec {
            input: is,
            output: os,
            window: wspec,
            filter: f,
            filter_in_c: fshape.c,
            bias: bias_i32(cx.st, self.bias, os.c)?,
            requant: channel_requant(s_in, &fscales, s_out, rounding),
            input_offset: -z_in,
            weights_offset: -fzp,
            output_offset: z_out,
            act_min,
            act_max,
            rounding,
            layout,
        })?;
        let macs = k.macs();
        Ok(Built::new(
            "conv2d",
            Kernel(Sliced::new(
                k,
                (macs, os.h * os.w, io_bytes(is, os)),
                cx.threads,
                cx.ks,
                |k, parts| k.slabs(parts),
            )?),
            vec![self.input],
            self.output,
        ))
    }
}

impl Conv2d {
    /// An int32 output without quantization, under onnxruntime's semantics
    /// only: ConvInteger's exact sums, one filter zero point per output
    /// channel allowed, no bias, no activation, one group.
    fn prepare_integer(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        if !cx.semantics.is_onnxruntime() {
            return Err(NnFault::Unsupported(
                "conv2d with an int32 output under TFLite semantics (onnxruntime's only)".into(),
            ));
        }
        if self.bias.is_some() || self.activation != Activation::None {
            return Err(NnFault::invalid(
                "conv2d with an int32 output takes no bias and no activation",
            ));
        }
        let (di, _, z_in) = act_i8(cx.st, self.input, "conv2d input")?;
        let is = shape4(di, "conv2d input")?;
        let dout = cx.st.desc(self.output)?;
        if dout.quant.is_some() {
            return Err(NnFault::invalid(
                "an int32 conv2d output has no quantization",
            ));
        }
        let os = shape4(dout, "conv2d output")?;
        let fshape = shape4(cx.st.desc(self.filter)?, "conv2d filter")?;
        if fshape.n != os.c || fshape.c != is.c {
            return Err(NnFault::invalid(format!(
                "filter {fshape:?} for input {is:?} and output {os:?} (one group only)"
            )));
        }
        let held = fshape.len().map(|n| n + 4 * os.c);
        cx.stage(
            held.ok_or_else(|| KernelError::new("conv2d", "the filter's size overflows")),
            "conv2d weights",
        )?;
        let (f, _, zps) = weights_i8(cx.st, self.filter, "conv2d filter", os.c, 0)?;
        let offsets = match zps.as_slice() {
            [z] => vec![-z; os.c],
            z if z.len() == os.c => z.iter().map(|z| -z).collect(),
            _ => {
                return Err(NnFault::invalid(
                    "conv2d filter zero points: one, or one per output",
                ));
            }
        };
        let wspec = window_spec(self.window, fshape.h, fshape.w);
        let k = gatehouse_kernels::conv::ConvInteger::new(is, os, wspec, f, -z_in, offsets)?;
        Ok(Built::new(
            "conv2d",
            Integer(k),
            vec![self.input],
            self.output,
        ))
    }
}

struct Integer(gatehouse_kernels::conv::ConvInteger);

impl Eval for Integer {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.bytes(|i, out| {
            gatehouse_kernels::conv::conv_integer(&self.0, bytemuck::cast_slice(i), out)
        })
    }

    fn held_bytes(&self) -> u64 {
        self.0.bytes() as u64
    }

    fn macs(&self) -> u64 {
        self.0.macs()
    }
}

/// The filter's zero point: 0 under TFLite's semantics, which take
/// symmetric filters only; under onnxruntime's, one for the whole filter.
fn filter_zero_point(cx: &Prep<'_>, filter: TensorKey) -> Result<i32, NnFault> {
    let zps = cx
        .st
        .desc(filter)?
        .quant
        .as_ref()
        .map(|q| q.zero_points.clone())
        .unwrap_or_default();
    match zps.split_first() {
        Some((&z, rest)) if cx.semantics.is_onnxruntime() => {
            if rest.iter().any(|&r| r != z) {
                return Err(NnFault::invalid(
                    "conv2d filter zero points must be one for the whole filter",
                ));
            }
            Ok(z)
        }
        _ => symmetric(&zps, "conv2d filter").map(|()| 0),
    }
}

struct Kernel(Sliced<gatehouse_kernels::Conv2d>);

impl Eval for Kernel {
    fn eval(&self, ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.one(|i, out| self.0.run(i, out, |k, i, o| (ks.conv2d)(k, i, o)))
    }

    fn held_bytes(&self) -> u64 {
        self.0.whole.heap_bytes() as u64 + self.0.slab_bytes(|k| k.slab_bytes())
    }

    fn macs(&self) -> u64 {
        self.0.whole.macs()
    }
}
