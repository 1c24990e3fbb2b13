//! AVERAGE_POOL_2D and MAX_POOL_2D.

use super::options::{padding, windowed};
use super::{At, Io, Reader, TfliteOp, fb};
use crate::nn::{self, Activation, Op, Window};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Pool2d {
    average: bool,
    filter_h: u32,
    filter_w: u32,
    window: Window,
    activation: Activation,
}

impl Pool2d {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        let Some(fb::BuiltinOptionsRef::Pool2DOptions(o)) = r.options else {
            return Err(r.missing());
        };
        Ok(Pool2d {
            average: r.builtin == fb::BuiltinOperator::AveragePool2d,
            filter_h: r.positive("filter height", o.filter_height()?)?,
            filter_w: r.positive("filter width", o.filter_width()?)?,
            window: Window {
                padding: padding(o.padding()?),
                stride_h: r.positive("stride", o.stride_h()?)?,
                stride_w: r.positive("stride", o.stride_w()?)?,
                dilation_h: 1,
                dilation_w: 1,
            },
            activation: r.fused(o.fused_activation_function())?,
        })
    }
}

impl TfliteOp for Pool2d {
    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        let c = at.shape(0).last().copied().unwrap_or(0);
        windowed(at, (self.filter_h, self.filter_w, c), &self.window)
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        let pool = nn::Pool2d {
            input: io.get(at.input(0))?,
            output: io.get(at.op.outputs[0])?,
            filter_h: self.filter_h,
            filter_w: self.filter_w,
            window: self.window,
            activation: self.activation,
        };
        Ok(Some(if self.average {
            Op::AveragePool2d(pool)
        } else {
            Op::MaxPool2d(pool)
        }))
    }
}
