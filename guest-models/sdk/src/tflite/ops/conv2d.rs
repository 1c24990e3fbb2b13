//! CONV_2D.

use super::options::{padding, windowed};
use super::{At, Io, Reader, TfliteOp, fb};
use crate::nn::{self, Activation, Op, Window};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Conv2d {
    window: Window,
    activation: Activation,
}

impl Conv2d {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        let Some(fb::BuiltinOptionsRef::Conv2DOptions(o)) = r.options else {
            return Err(r.missing());
        };
        Ok(Conv2d {
            window: Window {
                padding: padding(o.padding()?),
                stride_h: r.positive("stride", o.stride_h()?)?,
                stride_w: r.positive("stride", o.stride_w()?)?,
                dilation_h: r.positive("dilation", o.dilation_h_factor()?)?,
                dilation_w: r.positive("dilation", o.dilation_w_factor()?)?,
            },
            activation: r.fused(o.fused_activation_function())?,
        })
    }
}

impl TfliteOp for Conv2d {
    fn required_inputs(&self) -> usize {
        2
    }

    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        match *at.shape(1) {
            [oc, kh, kw, _] => windowed(at, (kh, kw, oc), &self.window),
            ref f => Err(at.malformed(format!("filter {f:?}"))),
        }
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        Ok(Some(Op::Conv2d(nn::Conv2d {
            input: io.get(at.input(0))?,
            filter: io.get(at.input(1))?,
            bias: at.op.optional(2).map(|t| io.get(t)).transpose()?,
            output: io.get(at.op.outputs[0])?,
            window: self.window,
            activation: self.activation,
        })))
    }
}
