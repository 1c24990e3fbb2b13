//! `gatehouse:nn` host functions: WIT values in, [`TensorStore`] and
//! [`Plan`] calls out. As wasmtime's wasi-nn does, they are implemented on a
//! small view of an instance's state ([`NnView`]: its nn context and its
//! resource table), not on the whole of it.

use std::time::{Duration, Instant};

use gatehouse_kernels::{Activation, KernelSet, Padding, Semantics};
use gatehouse_nn::ops::{self, OpDesc, PoolArgs, PreparedOp, UnaryKind, WindowArgs};
use gatehouse_nn::{
    Budget, DType, Desc, NnFault, OP_OVERHEAD, Pace, Plan, Quant, TensorKey, TensorStore, Threads,
};
use wasmtime::component::{HasData, Resource, ResourceTable};

use crate::bindings::{NnCallError, ops as wops, plan as wplan, tensors as wt};

/// An instance's `gatehouse:nn` state: its tensors and their quota, the
/// kernels and their pace, and the current call's deadline.
pub(crate) struct NnCtx {
    pub(crate) tensors: TensorStore,
    pub(crate) kernels: &'static KernelSet,
    /// The threads its plans split big layers over.
    threads: Threads,
    /// How fast this runtime's kernels work, to estimate host work.
    pace: Pace,
    /// When the current call must end: host work done for it stops there too.
    deadline: Option<Instant>,
    /// The plan, input and output of the guest's latest `plan.invoke`: what
    /// [`crate::Instance::invoke_native`] replays without entering the guest.
    pub(crate) last_invoke: Option<Invoked>,
}

/// A `plan.invoke` call as the host saw it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Invoked {
    /// The plan's handle in the resource table.
    pub(crate) plan: u32,
    pub(crate) input: TensorKey,
    pub(crate) output: TensorKey,
}

impl NnCtx {
    pub(crate) fn new(
        kernels: &'static KernelSet,
        threads: Threads,
        tensor_bytes: u64,
        pace: Pace,
    ) -> NnCtx {
        NnCtx {
            tensors: TensorStore::new(tensor_bytes),
            kernels,
            threads,
            pace,
            deadline: None,
            last_invoke: None,
        }
    }

    /// The current call, and the host work it asks for, end within
    /// `deadline` from `now`, which the caller has read already: a clock
    /// read is about 20 ns of a call that takes a few microseconds.
    pub(crate) fn begin_call_at(&mut self, now: Instant, deadline: Duration) {
        self.deadline = now.checked_add(deadline);
    }

    /// When the current call must end, if it must.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// What the nn host functions see of an instance.
pub(crate) struct NnView<'a> {
    pub(crate) nn: &'a mut NnCtx,
    pub(crate) table: &'a mut ResourceTable,
}

/// Names [`NnView`] for the linker: the nn interfaces get it from a store's data.
pub(crate) struct HasNn;

impl HasData for HasNn {
    type Data<'a> = NnView<'a>;
}

/// The trap a plugin gets when host work done for it would pass its
/// deadline; the runtime reports it as the same deadline failure as a
/// guest that loops.
#[derive(Debug, thiserror::Error)]
#[error("host work past the deadline: {0}")]
pub struct HostDeadline(pub String);

impl NnView<'_> {
    /// The time the current call's host work may take.
    pub(crate) fn budget(&self) -> Budget {
        Budget::until(self.nn.deadline, self.nn.pace)
    }

    fn key(&self, r: &Resource<TensorKey>) -> Result<TensorKey, NnCallError> {
        Ok(*self.table.get(r)?)
    }

    fn push_tensor(&mut self, key: TensorKey) -> Result<Resource<TensorKey>, NnCallError> {
        match self.table.push(key) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.nn.tensors.release(key);
                Err(e.into())
            }
        }
    }
}

fn desc_from_wit(d: wt::TensorDesc) -> Result<Desc, NnFault> {
    let dtype = match d.dtype {
        wt::Dtype::Int8 => DType::I8,
        wt::Dtype::Uint8 => DType::U8,
        wt::Dtype::Int32 => DType::I32,
        wt::Dtype::Float32 => DType::F32,
    };
    let shape = d.shape.iter().map(|&x| x as usize).collect();
    let quant = d.quantization.map(|q| Quant {
        scales: q.scales,
        zero_points: q.zero_points,
        axis: q.axis as usize,
    });
    let desc = Desc {
        dtype,
        shape,
        quant,
    };
    desc.byte_len()?;
    Ok(desc)
}

fn desc_to_wit(d: &Desc) -> wt::TensorDesc {
    wt::TensorDesc {
        dtype: match d.dtype {
            DType::I8 => wt::Dtype::Int8,
            DType::U8 => wt::Dtype::Uint8,
            DType::I32 => wt::Dtype::Int32,
            DType::F32 => wt::Dtype::Float32,
        },
        shape: d.shape.iter().map(|&x| x as u32).collect(),
        quantization: d.quant.as_ref().map(|q| wt::Quantization {
            scales: q.scales.clone(),
            zero_points: q.zero_points.clone(),
            axis: q.axis as u32,
        }),
    }
}

impl wt::HostTensor for NnView<'_> {
    fn create(&mut self, desc: wt::TensorDesc) -> Result<Resource<TensorKey>, NnCallError> {
        let desc = desc_from_wit(desc)?;
        let key = self.nn.tensors.create(desc)?;
        self.push_tensor(key)
    }

    fn view(
        &mut self,
        base: Resource<TensorKey>,
        offset: u64,
        desc: wt::TensorDesc,
    ) -> Result<Resource<TensorKey>, NnCallError> {
        let base = self.key(&base)?;
        let desc = desc_from_wit(desc)?;
        let key = self.nn.tensors.view(base, offset, desc)?;
        self.push_tensor(key)
    }

    fn write(
        &mut self,
        t: Resource<TensorKey>,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<(), NnCallError> {
        let key = self.key(&t)?;
        Ok(self.nn.tensors.write(key, offset, &data)?)
    }

    fn read(&mut self, t: Resource<TensorKey>) -> wasmtime::Result<Vec<u8>> {
        let key = *self.table.get(&t)?;
        // The copy is charged while the host holds it. `read` has no error
        // type in gatehouse:nn@0.1.0, so a copy that does not fit traps.
        let len = self
            .nn
            .tensors
            .span(key)
            .map_err(|e| wasmtime::format_err!("{e}"))?
            .len() as u64;
        self.nn
            .tensors
            .charge(len, "reading a tensor out")
            .map_err(|e| wasmtime::format_err!("{e}"))?;
        let bytes = self.nn.tensors.bytes(key).map(<[u8]>::to_vec);
        self.nn.tensors.uncharge(len);
        bytes.map_err(|e| wasmtime::format_err!("{e}"))
    }

    fn desc(&mut self, t: Resource<TensorKey>) -> wasmtime::Result<wt::TensorDesc> {
        let key = *self.table.get(&t)?;
        Ok(desc_to_wit(
            self.nn
                .tensors
                .desc(key)
                .map_err(|e| wasmtime::format_err!("{e}"))?,
        ))
    }

    fn byte_len(&mut self, t: Resource<TensorKey>) -> wasmtime::Result<u64> {
        let key = *self.table.get(&t)?;
        Ok(self
            .nn
            .tensors
            .span(key)
            .map_err(|e| wasmtime::format_err!("{e}"))?
            .len() as u64)
    }

    fn drop(&mut self, t: Resource<TensorKey>) -> wasmtime::Result<()> {
        let key = self.table.delete(t)?;
        self.nn.tensors.release(key);
        Ok(())
    }
}

impl wt::Host for NnView<'_> {
    fn usage(&mut self) -> wasmtime::Result<wt::MemoryUsage> {
        Ok(wt::MemoryUsage {
            used: self.nn.tensors.used(),
            quota: self.nn.tensors.quota(),
        })
    }

    fn convert_nn_error(&mut self, err: NnCallError) -> wasmtime::Result<wt::NnError> {
        Ok(match err {
            NnCallError::Nn(NnFault::Invalid(m)) => wt::NnError::InvalidArgument(m),
            NnCallError::Nn(NnFault::QuotaExceeded(m)) => wt::NnError::QuotaExceeded(m),
            NnCallError::Nn(NnFault::StaleTensor(m)) => wt::NnError::StaleTensor(m),
            NnCallError::Nn(NnFault::Unsupported(m)) => wt::NnError::Unsupported(m),
            NnCallError::Nn(NnFault::Deadline(m)) => {
                return Err(wasmtime::Error::new(HostDeadline(m)));
            }
            NnCallError::Trap(e) => return Err(e),
        })
    }
}

fn activation(a: wops::Activation) -> Activation {
    match a {
        wops::Activation::None => Activation::None,
        wops::Activation::Relu => Activation::Relu,
        wops::Activation::ReluN1To1 => Activation::ReluN1To1,
        wops::Activation::Relu6 => Activation::Relu6,
    }
}

fn window(w: wops::Window) -> WindowArgs {
    WindowArgs {
        padding: match w.padding {
            wops::Padding::Same => Padding::Same,
            wops::Padding::Valid => Padding::Valid,
        },
        stride_h: w.stride_h,
        stride_w: w.stride_w,
        dilation_h: w.dilation_h,
        dilation_w: w.dilation_w,
    }
}

pub(crate) fn semantics(o: wops::ExecOptions) -> Semantics {
    match o.semantics {
        wops::Semantics::TfliteReference => Semantics::TfliteReference,
        wops::Semantics::TfliteMicro => Semantics::TfliteMicro,
    }
}

impl NnView<'_> {
    pub(crate) fn op_desc(&self, op: &wops::Op) -> Result<OpDesc, NnCallError> {
        let k = |r: &Resource<TensorKey>| self.key(r);
        let ko = |r: &Option<Resource<TensorKey>>| r.as_ref().map(|r| self.key(r)).transpose();
        let unary = |kind: UnaryKind, u: &wops::Unary| -> Result<OpDesc, NnCallError> {
            Ok(OpDesc::Unary(ops::Unary {
                kind,
                input: k(&u.input)?,
                output: k(&u.output)?,
            }))
        };
        let pool = |p: &wops::Pool2d| -> Result<PoolArgs, NnCallError> {
            Ok(PoolArgs {
                input: k(&p.input)?,
                output: k(&p.output)?,
                filter_h: p.filter_h,
                filter_w: p.filter_w,
                window: window(p.window),
                activation: activation(p.activation),
            })
        };
        Ok(match op {
            wops::Op::Conv2d(c) => OpDesc::Conv2d(ops::Conv2d {
                input: k(&c.input)?,
                filter: k(&c.filter)?,
                bias: ko(&c.bias)?,
                output: k(&c.output)?,
                window: window(c.window),
                activation: activation(c.activation),
            }),
            wops::Op::DepthwiseConv2d(c) => OpDesc::DepthwiseConv2d(ops::DepthwiseConv2d {
                input: k(&c.input)?,
                filter: k(&c.filter)?,
                bias: ko(&c.bias)?,
                output: k(&c.output)?,
                window: window(c.window),
                depth_multiplier: c.depth_multiplier,
                activation: activation(c.activation),
            }),
            wops::Op::FullyConnected(f) => OpDesc::FullyConnected(ops::FullyConnected {
                input: k(&f.input)?,
                weights: k(&f.weights)?,
                bias: ko(&f.bias)?,
                output: k(&f.output)?,
                activation: activation(f.activation),
            }),
            wops::Op::AveragePool2d(p) => OpDesc::AveragePool2d(ops::AveragePool2d(pool(p)?)),
            wops::Op::MaxPool2d(p) => OpDesc::MaxPool2d(ops::MaxPool2d(pool(p)?)),
            wops::Op::Add(a) => OpDesc::Add(ops::Add {
                a: k(&a.a)?,
                b: k(&a.b)?,
                output: k(&a.output)?,
                activation: activation(a.activation),
            }),
            wops::Op::Mul(a) => OpDesc::Mul(ops::Mul {
                a: k(&a.a)?,
                b: k(&a.b)?,
                output: k(&a.output)?,
                activation: activation(a.activation),
            }),
            wops::Op::Softmax(s) => OpDesc::Softmax(ops::Softmax {
                input: k(&s.input)?,
                output: k(&s.output)?,
                beta: s.beta,
            }),
            wops::Op::Logistic(u) => unary(UnaryKind::Logistic, u)?,
            wops::Op::Tanh(u) => unary(UnaryKind::Tanh, u)?,
            wops::Op::HardSwish(u) => unary(UnaryKind::HardSwish, u)?,
            wops::Op::Relu(u) => unary(UnaryKind::Relu, u)?,
            wops::Op::Relu6(u) => unary(UnaryKind::Relu6, u)?,
            wops::Op::ReluN1To1(u) => unary(UnaryKind::ReluN1To1, u)?,
            wops::Op::Quantize(u) => unary(UnaryKind::Quantize, u)?,
            wops::Op::Dequantize(u) => unary(UnaryKind::Dequantize, u)?,
            wops::Op::Reshape(u) => unary(UnaryKind::Reshape, u)?,
            wops::Op::Mean(r) => OpDesc::Mean(ops::Mean {
                input: k(&r.input)?,
                output: k(&r.output)?,
                axes: r.axes.iter().map(|&a| a as usize).collect(),
                keep_dims: r.keep_dims,
            }),
            wops::Op::ReduceMax(r) => OpDesc::ReduceMax(ops::ReduceMax {
                input: k(&r.input)?,
                output: k(&r.output)?,
                axes: r.axes.iter().map(|&a| a as usize).collect(),
            }),
            wops::Op::Pad(p) => OpDesc::Pad(ops::Pad {
                input: k(&p.input)?,
                output: k(&p.output)?,
                paddings: p
                    .paddings
                    .iter()
                    .map(|&(b, a)| (b as usize, a as usize))
                    .collect(),
            }),
            wops::Op::Concatenation(c) => OpDesc::Concatenation(ops::Concatenation {
                inputs: c.inputs.iter().map(k).collect::<Result<_, _>>()?,
                output: k(&c.output)?,
                axis: c.axis as usize,
            }),
            wops::Op::StridedSlice(sl) => OpDesc::StridedSlice(ops::StridedSlice {
                input: k(&sl.input)?,
                output: k(&sl.output)?,
                begin: sl.begin.iter().map(|&v| v as i64).collect(),
                strides: sl.strides.iter().map(|&v| v as i64).collect(),
                counts: sl.counts.iter().map(|&v| v as usize).collect(),
            }),
            wops::Op::SpaceToBatch(sb) => OpDesc::SpaceToBatch(ops::SpaceToBatch {
                input: k(&sb.input)?,
                output: k(&sb.output)?,
                block: [sb.block.0 as usize, sb.block.1 as usize],
                before: [sb.before.0 as usize, sb.before.1 as usize],
            }),
            wops::Op::BatchToSpace(sb) => OpDesc::BatchToSpace(ops::BatchToSpace {
                input: k(&sb.input)?,
                output: k(&sb.output)?,
                block: [sb.block.0 as usize, sb.block.1 as usize],
                before: [sb.before.0 as usize, sb.before.1 as usize],
            }),
        })
    }
}

impl NnView<'_> {
    /// Prepare, admit against the deadline, run and release one operator:
    /// `execute` of every interface that has one.
    pub(crate) fn execute_desc(
        &mut self,
        desc: &OpDesc,
        semantics: Semantics,
    ) -> Result<(), NnCallError> {
        let prepared = PreparedOp::prepare(desc, &mut self.nn.tensors, semantics, self.nn.kernels)?;
        let result = self
            .budget()
            .admit(prepared.work(), || prepared.name().to_string())
            .and_then(|()| prepared.run(&mut self.nn.tensors, self.nn.kernels));
        prepared.release(&mut self.nn.tensors);
        Ok(result?)
    }

    /// Append one operator to a plan: `push` of every interface that has one.
    pub(crate) fn push_desc(
        &mut self,
        plan: &Resource<Plan>,
        desc: &OpDesc,
    ) -> Result<u32, NnCallError> {
        let plan = self.table.get_mut(plan)?;
        Ok(plan.push(desc, &mut self.nn.tensors, self.nn.kernels)?)
    }

    /// An empty plan under `semantics`, for 0.1.0's constructor and 0.3.0's `new-plan`.
    pub(crate) fn new_plan(&mut self, semantics: Semantics) -> wasmtime::Result<Resource<Plan>> {
        // A plan's own bookkeeping counts against the quota like an operator.
        self.nn
            .tensors
            .charge(OP_OVERHEAD, "plan")
            .map_err(|e| wasmtime::format_err!("{e}"))?;
        Ok(self
            .table
            .push(Plan::on(semantics, self.nn.threads.clone()))?)
    }

    /// The tensor behind a handle the guest passed.
    pub(crate) fn tensor_key(&self, r: &Resource<TensorKey>) -> Result<TensorKey, NnCallError> {
        self.key(r)
    }
}

impl wops::Host for NnView<'_> {
    fn execute(&mut self, op: wops::Op, options: wops::ExecOptions) -> Result<(), NnCallError> {
        let desc = self.op_desc(&op)?;
        self.execute_desc(&desc, semantics(options))
    }
}

impl wplan::HostPlan for NnView<'_> {
    fn new(&mut self, options: wops::ExecOptions) -> wasmtime::Result<Resource<Plan>> {
        self.new_plan(semantics(options))
    }

    fn push(&mut self, plan: Resource<Plan>, op: wops::Op) -> Result<u32, NnCallError> {
        let desc = self.op_desc(&op)?;
        self.push_desc(&plan, &desc)
    }

    fn run(&mut self, plan: Resource<Plan>) -> Result<(), NnCallError> {
        let mut budget = self.budget();
        let plan = self.table.get(&plan)?;
        Ok(plan.run(&mut self.nn.tensors, self.nn.kernels, &mut budget)?)
    }

    fn invoke(
        &mut self,
        plan: Resource<Plan>,
        input: Resource<TensorKey>,
        data: Vec<u8>,
        output: Resource<TensorKey>,
    ) -> Result<Vec<u8>, NnCallError> {
        let (ik, ok) = (self.key(&input)?, self.key(&output)?);
        let rep = plan.rep();
        let mut budget = self.budget();
        let plan = self.table.get(&plan)?;
        let result = plan.run_batch(
            &mut self.nn.tensors,
            self.nn.kernels,
            &mut budget,
            ik,
            ok,
            &data,
        )?;
        self.nn.last_invoke = Some(Invoked {
            plan: rep,
            input: ik,
            output: ok,
        });
        Ok(result)
    }

    fn len(&mut self, plan: Resource<Plan>) -> wasmtime::Result<u32> {
        Ok(self.table.get(&plan)?.len() as u32)
    }

    fn drop(&mut self, plan: Resource<Plan>) -> wasmtime::Result<()> {
        if self.nn.last_invoke.is_some_and(|i| i.plan == plan.rep()) {
            self.nn.last_invoke = None;
        }
        let plan = self.table.delete(plan)?;
        plan.release(&mut self.nn.tensors);
        self.nn.tensors.uncharge(OP_OVERHEAD);
        Ok(())
    }
}

impl wplan::Host for NnView<'_> {}

#[cfg(test)]
#[path = "nn_host_tests.rs"]
mod tests;
