//! Operators of one input and one output of the same shape that need only
//! the tensors' quantization: LOGISTIC, TANH, HARD_SWISH, RELU, RELU6,
//! RELU_N1_TO_1, QUANTIZE, DEQUANTIZE.

use super::{At, Io, Reader, TfliteOp, fb};
use crate::nn::{self, Op};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Unary(fb::BuiltinOperator);

impl Unary {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        Ok(Unary(r.builtin))
    }
}

impl TfliteOp for Unary {
    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        Ok(at.shape(0).to_vec())
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        use fb::BuiltinOperator as B;
        let u = nn::Unary {
            input: io.get(at.input(0))?,
            output: io.get(at.op.outputs[0])?,
        };
        Ok(Some(match self.0 {
            B::Logistic => Op::Logistic(u),
            B::Tanh => Op::Tanh(u),
            B::HardSwish => Op::HardSwish(u),
            B::Relu => Op::Relu(u),
            B::Relu6 => Op::Relu6(u),
            B::ReluN1To1 => Op::ReluN1To1(u),
            B::Quantize => Op::Quantize(u),
            B::Dequantize => Op::Dequantize(u),
            // The table sends only the builtins above here.
            other => return Err(at.malformed(format!("{other:?} is not a unary operator"))),
        }))
    }
}
