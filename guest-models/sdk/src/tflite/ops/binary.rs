//! ADD and MUL, with broadcasting: the same lowering, two host operators.

use super::options::broadcast;
use super::{At, Io, ModelOp, Reader, TfliteOp, fb};
use crate::nn::{self, Activation, Op};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Binary {
    mul: bool,
    activation: Activation,
}

impl Binary {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        use fb::BuiltinOptionsRef as O;
        let activation = match r.options {
            Some(O::AddOptions(o)) => r.fused(o.fused_activation_function())?,
            Some(O::MulOptions(o)) => r.fused(o.fused_activation_function())?,
            _ => Activation::None,
        };
        Ok(Binary {
            mul: r.builtin == fb::BuiltinOperator::Mul,
            activation,
        })
    }
}

impl TfliteOp for Binary {
    fn required_inputs(&self) -> usize {
        2
    }

    fn data_inputs(&self, op: &ModelOp) -> Vec<usize> {
        vec![op.input(0), op.input(1)]
    }

    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        broadcast(at.shape(0), at.shape(1)).map_err(|e| at.malformed(e))
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        let b = nn::Binary {
            a: io.get(at.input(0))?,
            b: io.get(at.input(1))?,
            output: io.get(at.op.outputs[0])?,
            activation: self.activation,
        };
        Ok(Some(if self.mul { Op::Mul(b) } else { Op::Add(b) }))
    }
}
