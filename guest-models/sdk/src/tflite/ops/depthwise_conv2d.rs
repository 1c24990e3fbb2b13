//! DEPTHWISE_CONV_2D.

use super::options::{padding, windowed};
use super::{At, Io, Reader, TfliteOp, fb};
use crate::nn::{self, Activation, Op, Window};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct DepthwiseConv2d {
    window: Window,
    activation: Activation,
    depth_multiplier: u32,
}

impl DepthwiseConv2d {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        let Some(fb::BuiltinOptionsRef::DepthwiseConv2DOptions(o)) = r.options else {
            return Err(r.missing());
        };
        // TFLite derives the multiplier from the channel counts, not the
        // option; so do we. Without both tensors the operand count check
        // refuses the operator.
        let depth_multiplier = match (r.input_shape(0), r.output_shape(0)) {
            (Some(i), Some(o)) => {
                let (ic, oc) = (
                    i.last().copied().unwrap_or(0),
                    o.last().copied().unwrap_or(0),
                );
                if ic == 0 || oc % ic != 0 {
                    return Err(LoadError::Malformed(format!(
                        "operator {}: {oc} output channels from {ic} input channels",
                        r.index
                    )));
                }
                oc / ic
            }
            _ => 0,
        };
        Ok(DepthwiseConv2d {
            window: Window {
                padding: padding(o.padding()?),
                stride_h: r.positive("stride", o.stride_h()?)?,
                stride_w: r.positive("stride", o.stride_w()?)?,
                dilation_h: r.positive("dilation", o.dilation_h_factor()?)?,
                dilation_w: r.positive("dilation", o.dilation_w_factor()?)?,
            },
            activation: r.fused(o.fused_activation_function())?,
            depth_multiplier,
        })
    }
}

impl TfliteOp for DepthwiseConv2d {
    fn required_inputs(&self) -> usize {
        2
    }

    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        match *at.shape(1) {
            [_, kh, kw, oc] => windowed(at, (kh, kw, oc), &self.window),
            ref f => Err(at.malformed(format!("filter {f:?}"))),
        }
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        Ok(Some(Op::DepthwiseConv2d(nn::DepthwiseConv2d {
            input: io.get(at.input(0))?,
            filter: io.get(at.input(1))?,
            bias: at.op.optional(2).map(|t| io.get(t)).transpose()?,
            output: io.get(at.op.outputs[0])?,
            window: self.window,
            depth_multiplier: self.depth_multiplier,
            activation: self.activation,
        })))
    }
}
