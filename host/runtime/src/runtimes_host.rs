//! `gatehouse:nn/runtimes@0.3.0` host functions: 0.1.0's plans and
//! immediate calls, under onnxruntime's arithmetic as well as TFLite's.

use gatehouse_kernels::Semantics;
use gatehouse_nn::Plan;
use wasmtime::component::Resource;

use crate::bindings::NnCallError;
use crate::bindings::ops as wops;
use crate::bindings::runtimes::gatehouse::nn0_3_0::runtimes as wrt;
use crate::nn_host::NnView;

fn semantics(s: wrt::Semantics) -> Semantics {
    match s {
        wrt::Semantics::TfliteReference => Semantics::TfliteReference,
        wrt::Semantics::TfliteMicro => Semantics::TfliteMicro,
        wrt::Semantics::Onnxruntime => Semantics::Onnxruntime,
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
