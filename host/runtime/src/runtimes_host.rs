//! `gatehouse:nn/runtimes@0.3.0` and `@0.4.0` host functions: 0.1.0's
//! plans and immediate calls, under onnxruntime's arithmetic (int8, and
//! from 0.4.0 uint8) as well as TFLite's.

use gatehouse_kernels::Semantics;
use gatehouse_nn::Plan;
use wasmtime::component::Resource;

use crate::bindings::NnCallError;
use crate::bindings::ops as wops;
use crate::bindings::runtimes::gatehouse::nn0_3_0::runtimes as wrt;
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
