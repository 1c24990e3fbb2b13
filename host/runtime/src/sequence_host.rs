//! `gatehouse:nn/sequence@0.2.0` host functions: the LSTM and BATCH_MATMUL,
//! on the same view of an instance as 0.1.0's operators ([`NnView`]), into
//! the same plans.

use gatehouse_nn::ops::{self, OpDesc};
use gatehouse_nn::{Plan, TensorKey};
use wasmtime::component::Resource;

use crate::bindings::NnCallError;
use crate::bindings::ops as wops;
use crate::bindings::sequence::gatehouse::nn0_2_0::sequence as wseq;
use crate::nn_host::{NnView, semantics};

impl NnView<'_> {
    fn sequence_desc(&self, op: &wseq::Op) -> Result<OpDesc, NnCallError> {
        let k = |r: &Resource<TensorKey>| self.tensor_key(r);
        let gate = |g: &wseq::LstmGate| -> Result<ops::LstmGate, NnCallError> {
            Ok(ops::LstmGate {
                input_weights: k(&g.input_weights)?,
                recurrent_weights: k(&g.recurrent_weights)?,
                bias: g.bias.as_ref().map(k).transpose()?,
            })
        };
        Ok(match op {
            wseq::Op::Lstm(l) => OpDesc::Lstm(ops::Lstm {
                input: k(&l.input)?,
                output: k(&l.output)?,
                input_gate: l.input_gate.as_ref().map(gate).transpose()?,
                forget_gate: gate(&l.forget_gate)?,
                cell_gate: gate(&l.cell_gate)?,
                output_gate: gate(&l.output_gate)?,
                time_major: l.time_major,
                cell_tanh: l.cell_activation == wseq::CellActivation::Tanh,
                cell_scale: l.cell_scale,
                hidden_scale: l.hidden_scale,
                hidden_zero_point: l.hidden_zero_point,
                cell_clip: l.cell_clip,
            }),
            wseq::Op::BatchMatmul(b) => OpDesc::BatchMatMul(ops::BatchMatMul {
                lhs: k(&b.lhs)?,
                rhs: k(&b.rhs)?,
                output: k(&b.output)?,
                adj_x: b.adj_x,
                adj_y: b.adj_y,
            }),
        })
    }
}

impl wseq::Host for NnView<'_> {
    fn execute(&mut self, op: wseq::Op, options: wops::ExecOptions) -> Result<(), NnCallError> {
        let desc = self.sequence_desc(&op)?;
        self.execute_desc(&desc, semantics(options))
    }

    fn push(&mut self, plan: Resource<Plan>, op: wseq::Op) -> Result<u32, NnCallError> {
        let desc = self.sequence_desc(&op)?;
        self.push_desc(&plan, &desc)
    }
}
