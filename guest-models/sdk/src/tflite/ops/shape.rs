//! SHAPE: always folded to a constant when the model is recorded.

use super::{At, Io, Reader, TfliteOp};
use crate::nn::Op;
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape;

impl Shape {
    pub(super) fn read(_r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        Ok(Shape)
    }
}

impl TfliteOp for Shape {
    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        Ok(vec![at.shape(0).len() as u32])
    }

    fn host_op<'h>(&self, at: &At<'_>, _io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        Err(at.malformed("SHAPE should have been folded"))
    }
}
