//! `gatehouse:nn/runtimes@0.3.0` and `@0.4.0` host functions: 0.1.0's
//! plans and immediate calls, under onnxruntime's arithmetic (int8, and
//! from 0.4.0 uint8) as well as TFLite's; and 0.4.0's `more-ops`,
//! `dynamic` and `linear-quant`, the operators 0.1.0 lacks, into the same
//! plans.

use gatehouse_kernels::Semantics;
use gatehouse_nn::ops::{self, OpDesc};
use gatehouse_nn::{NnFault, Plan};
use wasmtime::component::Resource;

use crate::bindings::NnCallError;
use crate::bindings::ops as wops;
use crate::bindings::runtimes::gatehouse::nn0_3_0::runtimes as wrt;
use crate::bindings::runtimes_uint8::gatehouse::nn0_4_0::dynamic as wdyn;
use crate::bindings::runtimes_uint8::gatehouse::nn0_4_0::linear_quant as wlin;
use crate::bindings::runtimes_uint8::gatehouse::nn0_4_0::more_ops as wmore;
use crate::bindings::runtimes_uint8::gatehouse::nn0_4_0::runtimes as wrt4;
use crate::nn_host::NnView;

fn semantics(s: wrt::Semantics) -> Semantics {
    match s {
        wrt::Semantics::TfliteReference => Semantics::TfliteReference,
        wrt::Semantics::TfliteMicro => Semantics::TfliteMicro,
        wrt::Semantics::Onnxruntime => Semantics::Onnxruntime,
    }
}

fn semantics4(s: wrt4::Semantics) -> Semantics {
    match s {
        wrt4::Semantics::TfliteReference => Semantics::TfliteReference,
        wrt4::Semantics::TfliteMicro => Semantics::TfliteMicro,
        wrt4::Semantics::Onnxruntime => Semantics::Onnxruntime,
        wrt4::Semantics::OnnxruntimeUint8 => Semantics::OnnxruntimeUint8,
    }
}

impl wrt::Host for NnView<'_> {
    fn new_plan(&mut self, s: wrt::Semantics) -> wasmtime::Result<Resource<Plan>> {
        NnView::new_plan(self, semantics(s))
    }

    fn execute(&mut self, op: wops::Op, s: wrt::Semantics) -> Result<(), NnCallError> {
        let desc = self.op_desc(&op)?;
        self.execute_desc(&desc, semantics(s))
    }
}

impl wrt4::Host for NnView<'_> {
    fn new_plan(&mut self, s: wrt4::Semantics) -> wasmtime::Result<Resource<Plan>> {
        NnView::new_plan(self, semantics4(s))
    }

    fn execute(&mut self, op: wops::Op, s: wrt4::Semantics) -> Result<(), NnCallError> {
        let desc = self.op_desc(&op)?;
        self.execute_desc(&desc, semantics4(s))
    }
}

impl NnView<'_> {
    fn more_desc(&self, op: &wmore::Op) -> Result<OpDesc, NnCallError> {
        Ok(match op {
            wmore::Op::LeakyRelu(l) => OpDesc::LeakyRelu(ops::LeakyRelu {
                input: self.tensor_key(&l.input)?,
                output: self.tensor_key(&l.output)?,
                alpha: l.alpha,
            }),
            wmore::Op::Transpose(t) => {
                if t.perm.len() > gatehouse_kernels::movement::MAX_RANK {
                    return Err(NnFault::invalid(format!(
                        "transpose of {} dimensions",
                        t.perm.len()
                    ))
                    .into());
                }
                OpDesc::Transpose(ops::Transpose {
                    input: self.tensor_key(&t.input)?,
                    output: self.tensor_key(&t.output)?,
                    perm: t.perm.iter().map(|&p| p as usize).collect(),
                })
            }
        })
    }
}

impl wmore::Host for NnView<'_> {
    fn execute(&mut self, op: wmore::Op, s: wrt4::Semantics) -> Result<(), NnCallError> {
        let desc = self.more_desc(&op)?;
        self.execute_desc(&desc, semantics4(s))
    }

    fn push(&mut self, plan: Resource<Plan>, op: wmore::Op) -> Result<u32, NnCallError> {
        let desc = self.more_desc(&op)?;
        self.push_desc(&plan, &desc)
    }
}

impl NnView<'_> {
    fn dynamic_desc(&self, op: &wdyn::DynamicQuantize) -> Result<OpDesc, NnCallError> {
        Ok(OpDesc::DynamicQuantize(ops::DynamicQuantize {
            input: self.tensor_key(&op.input)?,
            output: self.tensor_key(&op.output)?,
            scale: self.tensor_key(&op.scale)?,
            zero_point: self.tensor_key(&op.zero_point)?,
        }))
    }
}

impl wdyn::Host for NnView<'_> {
    fn execute(
        &mut self,
        op: wdyn::DynamicQuantize,
        s: wrt4::Semantics,
    ) -> Result<(), NnCallError> {
        let desc = self.dynamic_desc(&op)?;
        self.execute_desc(&desc, semantics4(s))
    }

    fn push(
        &mut self,
        plan: Resource<Plan>,
        op: wdyn::DynamicQuantize,
    ) -> Result<u32, NnCallError> {
        let desc = self.dynamic_desc(&op)?;
        self.push_desc(&plan, &desc)
    }
}

impl NnView<'_> {
    fn linear_desc(&self, op: &wlin::Op) -> Result<OpDesc, NnCallError> {
        let (wlin::Op::Quantize(q) | wlin::Op::Dequantize(q)) = op;
        let (input, output) = (self.tensor_key(&q.input)?, self.tensor_key(&q.output)?);
        let scale = self.tensor_key(&q.params.scale)?;
        let zero_point = self.tensor_key(&q.params.zero_point)?;
        let direction = match op {
            wlin::Op::Quantize(_) => ops::Direction::Quantize,
            wlin::Op::Dequantize(_) => ops::Direction::Dequantize,
        };
        Ok(OpDesc::LinearQuant(ops::LinearQuant {
            direction,
            input,
            output,
            scale,
            zero_point,
            axis: q.params.axis as usize,
            block: q.params.block_size as usize,
        }))
    }
}

impl wlin::Host for NnView<'_> {
    fn execute(&mut self, op: wlin::Op, s: wrt4::Semantics) -> Result<(), NnCallError> {
        let desc = self.linear_desc(&op)?;
        self.execute_desc(&desc, semantics4(s))
    }

    fn push(&mut self, plan: Resource<Plan>, op: wlin::Op) -> Result<u32, NnCallError> {
        let desc = self.linear_desc(&op)?;
        self.push_desc(&plan, &desc)
    }
}
