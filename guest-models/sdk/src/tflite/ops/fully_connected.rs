//! FULLY_CONNECTED.

use super::options::elements;
use super::{At, Io, Reader, TfliteOp, fb};
use crate::nn::{self, Activation, Op};
use crate::tflite::LoadError;

#[derive(Clone, Copy, Debug)]
pub(crate) struct FullyConnected {
    activation: Activation,
    keep_num_dims: bool,
}

impl FullyConnected {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        let (activation, keep_num_dims) = match r.options {
            Some(fb::BuiltinOptionsRef::FullyConnectedOptions(o)) => {
                if o.weights_format()? != fb::FullyConnectedOptionsWeightsFormat::Default {
                    return Err(r.unsupported("uses shuffled weights"));
                }
                (r.fused(o.fused_activation_function())?, o.keep_num_dims()?)
            }
            _ => (Activation::None, false),
        };
        Ok(FullyConnected {
            activation,
            keep_num_dims,
        })
    }
}

impl TfliteOp for FullyConnected {
    fn required_inputs(&self) -> usize {
        2
    }

    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        let s = at.shape(0);
        let (units, depth) = match at.shape(1) {
            &[u, d] if d > 0 => (u, d),
            other => return Err(at.malformed(format!("weights {other:?}"))),
        };
        Ok(if self.keep_num_dims {
            let mut o = s.to_vec();
            if let Some(l) = o.last_mut() {
                *l = units;
            }
            o
        } else {
            vec![(elements(s) / depth as u64) as u32, units]
        })
    }

    fn host_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<Op<'h>>, LoadError> {
        Ok(Some(Op::FullyConnected(nn::FullyConnected {
            input: io.get(at.input(0))?,
            weights: io.get(at.input(1))?,
            bias: at.op.optional(2).map(|t| io.get(t)).transpose()?,
            output: io.get(at.op.outputs[0])?,
            activation: self.activation,
        })))
    }
}
