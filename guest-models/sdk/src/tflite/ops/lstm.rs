//! UNIDIRECTIONAL_SEQUENCE_LSTM in its fully integer form (int8 input and
//! weights, int16 cell state), as the converter emits it for a Keras LSTM:
//! the host's `gatehouse:nn/sequence` LSTM. Peephole, projection and
//! layer-normalized LSTMs are refused, naming what they use.

use super::{At, Io, ModelOp, Reader, TfliteOp, fb};
use crate::nn::{self, AnyOp, CellActivation, SequenceOp};
use crate::tflite::LoadError;

/// Input positions of TFLite's LSTM (`lstm_shared.h`).
const INPUT: usize = 0;
/// Input, forget, cell and output gates: input weights, recurrent weights, bias.
const GATES: [(usize, usize, usize); 4] = [(1, 5, 12), (2, 6, 13), (3, 7, 14), (4, 8, 15)];
const PEEPHOLES: [usize; 3] = [9, 10, 11];
const PROJECTION: [usize; 2] = [16, 17];
const OUTPUT_STATE: usize = 18;
const CELL_STATE: usize = 19;
const LAYER_NORM: [usize; 4] = [20, 21, 22, 23];
/// The hidden state's intermediate, whose quantization the converter sets.
const HIDDEN: usize = 4;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Lstm {
    time_major: bool,
    cell_clip: f32,
    cell_scale: f32,
    hidden_scale: f32,
    hidden_zero_point: i32,
    cifg: bool,
}

impl Lstm {
    pub(super) fn read(r: &Reader<'_, '_>) -> Result<Self, LoadError> {
        let Some(fb::BuiltinOptionsRef::UnidirectionalSequenceLstmOptions(o)) = r.options else {
            return Err(r.missing());
        };
        if o.fused_activation_function()? != fb::ActivationFunctionType::Tanh {
            return Err(r.unsupported("has a cell activation other than TANH"));
        }
        if o.diagonal_recurrent_tensors()? {
            return Err(r.unsupported("has diagonal recurrent weights"));
        }
        let present = |k: usize| r.inputs.get(k).copied().flatten();
        if r.inputs.len() < 20 {
            return Err(r.unsupported("has fewer than 20 inputs (an older LSTM form)"));
        }
        for (what, group) in [
            ("peephole weights", &PEEPHOLES[..]),
            ("a projection", &PROJECTION[..]),
            ("layer normalization", &LAYER_NORM[..]),
        ] {
            if group.iter().any(|&k| present(k).is_some()) {
                return Err(r.unsupported(&format!("uses {what}")));
            }
        }
        let (ii, ri, ib) = GATES[0];
        let cifg = match (present(ii), present(ri), present(ib)) {
            (Some(_), Some(_), Some(_)) => false,
            (None, None, None) => true,
            _ => return Err(r.unsupported("has part of an input gate")),
        };
        for &(w, rw, b) in &GATES[1..] {
            if [w, rw, b].iter().any(|&k| present(k).is_none()) {
                return Err(r.unsupported("lacks a gate's weights or bias"));
            }
        }
        let state = |k: usize, what: &str| {
            let t = present(k)
                .and_then(|t| r.tensors.get(t))
                .filter(|t| t.variable)
                .ok_or_else(|| r.unsupported(&format!("has no {what} state tensor")))?;
            t.quant
                .as_ref()
                .map(|q| (q.scales[0], q.zero_points[0]))
                .ok_or_else(|| r.unsupported(&format!("has an unquantized {what} state")))
        };
        let (cell_scale, _) = state(CELL_STATE, "cell")?;
        let output_state = state(OUTPUT_STATE, "output")?;
        let output_quant = r
            .outputs
            .first()
            .and_then(|&t| r.tensors.get(t))
            .and_then(|t| t.quant.as_ref())
            .map(|q| (q.scales[0], q.zero_points[0]));
        if output_quant != Some(output_state) {
            return Err(r.unsupported("quantizes its output unlike its hidden state"));
        }
        let (hidden_scale, hidden_zero_point) = r
            .intermediates
            .get(HIDDEN)
            .and_then(|&t| r.tensors.get(t))
            .and_then(|t| t.quant.as_ref())
            .map(|q| (q.scales[0], q.zero_points[0]))
            .ok_or_else(|| {
                r.unsupported("lacks the hidden-state intermediate of an integer LSTM")
            })?;
        Ok(Lstm {
            time_major: o.time_major()?,
            cell_clip: o.cell_clip()?,
            cell_scale,
            hidden_scale,
            hidden_zero_point,
            cifg,
        })
    }
}

impl TfliteOp for Lstm {
    fn data_inputs(&self, op: &ModelOp) -> Vec<usize> {
        vec![op.input(INPUT)]
    }

    fn infer_shape(&self, at: &At<'_>) -> Result<Vec<u32>, LoadError> {
        let cells = match at.shape(GATES[3].0) {
            &[c, _] => c,
            other => return Err(at.malformed(format!("output gate weights {other:?}"))),
        };
        match at.shape(INPUT) {
            &[a, b, _] => Ok(vec![a, b, cells]),
            other => Err(at.malformed(format!("input {other:?}, expected rank 3"))),
        }
    }

    fn any_op<'h>(&self, at: &At<'_>, io: &Io<'h>) -> Result<Option<AnyOp<'h>>, LoadError> {
        let gate = |(w, rw, b): (usize, usize, usize)| -> Result<nn::LstmGate<'h>, LoadError> {
            Ok(nn::LstmGate {
                input_weights: io.get(at.input(w))?,
                recurrent_weights: io.get(at.input(rw))?,
                bias: Some(io.get(at.input(b))?),
            })
        };
        Ok(Some(AnyOp::Sequence(SequenceOp::Lstm(nn::Lstm {
            input: io.get(at.input(INPUT))?,
            output: io.get(at.op.outputs[0])?,
            input_gate: if self.cifg {
                None
            } else {
                Some(gate(GATES[0])?)
            },
            forget_gate: gate(GATES[1])?,
            cell_gate: gate(GATES[2])?,
            output_gate: gate(GATES[3])?,
            time_major: self.time_major,
            cell_activation: CellActivation::Tanh,
            cell_scale: self.cell_scale,
            hidden_scale: self.hidden_scale,
            hidden_zero_point: self.hidden_zero_point,
            cell_clip: self.cell_clip,
        }))))
    }
}
