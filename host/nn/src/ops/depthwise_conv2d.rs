//! DEPTHWISE_CONV_2D: int8 activations, symmetric int8 filters per channel.

use gatehouse_kernels::{Activation, DepthwiseConv2dSpec, KernelSet, activation_range};

use super::operand::{
    WindowArgs, act_i8, bias_i32, channel_requant, shape4, symmetric, weights_i8, window_spec,
};
use super::sliced::{Sliced, io_bytes};
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// A depthwise convolution: filter `[1, kh, kw, in_c · depth_multiplier]`.
#[derive(Clone, Debug)]
pub struct DepthwiseConv2d {
    pub input: TensorKey,
    pub filter: TensorKey,
    pub bias: Option<TensorKey>,
    pub output: TensorKey,
    pub window: WindowArgs,
    pub depth_multiplier: u32,
    pub activation: Activation,
}

impl Operator for DepthwiseConv2d {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let rounding = cx.semantics.conv();
        let (di, s_in, z_in) = act_i8(cx.st, self.input, "depthwise input")?;
        let is = shape4(di, "depthwise input")?;
        let (dout, s_out, z_out) = act_i8(cx.st, self.output, "depthwise output")?;
        let os = shape4(dout, "depthwise output")?;
        let fshape = shape4(cx.st.desc(self.filter)?, "depthwise filter")?;
        if fshape.n != 1 || fshape.c != os.c {
            return Err(NnFault::invalid(format!(
                "depthwise filter must be [1,kh,kw,{}], is {fshape:?}",
                os.c
            )));
        }
        let wspec = window_spec(self.window, fshape.h, fshape.w);
        let multiplier = self.depth_multiplier as usize;
        cx.stage(
            gatehouse_kernels::DepthwiseConv2d::heap_bytes_for(is, os, wspec, multiplier),
            "depthwise weights",
        )?;
        let (f, fscales, fzps) = weights_i8(cx.st, self.filter, "depthwise filter", os.c, 3)?;
        symmetric(&fzps, "depthwise filter")?;
        let (act_min, act_max) = activation_range(self.activation, s_out, z_out);
        let k = gatehouse_kernels::DepthwiseConv2d::new(DepthwiseConv2dSpec {
            input: is,
            output: os,
            window: wspec,
            filter: f,
            depth_multiplier: multiplier,
            bias: bias_i32(cx.st, self.bias, os.c)?,
            requant: channel_requant(s_in, &fscales, s_out, rounding),
            input_offset: -z_in,
            output_offset: z_out,
            act_min,
            act_max,
            rounding,
        })?;
        let macs = k.macs();
        Ok(Built::new(
            "depthwise_conv2d",
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

struct Kernel(Sliced<gatehouse_kernels::DepthwiseConv2d>);

impl Eval for Kernel {
    fn eval(&self, ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.one(|i, out| self.0.run(i, out, |k, i, o| (ks.depthwise_conv2d)(k, i, o)))
    }

    fn held_bytes(&self) -> u64 {
        self.0.whole.heap_bytes() as u64 + self.0.slab_bytes(|k| k.slab_bytes())
    }

    fn macs(&self) -> u64 {
        self.0.whole.macs()
    }
}
