//! `gatehouse:nn` host functions: WIT values in, [`TensorStore`] and
//! [`Plan`] calls out.

use gatehouse_kernels::{Activation, Padding, Semantics};
use wasmtime::component::Resource;

use crate::bindings::{ops as wops, plan as wplan, tensors as wt};
use crate::nn::budget::Budget;
use crate::nn::ops::{OpDesc, PoolArgs, PreparedOp, UnaryKind, WindowArgs};
use crate::nn::plan::Plan;
use crate::nn::tensor::{DType, Desc, Quant, TensorKey};
use crate::nn::{HostDeadline, NnFault, OP_OVERHEAD};
use crate::plugin::state::{InstanceState, Invoked};

/// What the resource table holds for a guest's tensor handle.
pub struct TensorRef(TensorKey);

impl InstanceState {
    /// The time the current call's host work may take.
    fn budget(&self) -> Budget {
        Budget::until(self.deadline, self.pace)
    }

    fn key(&self, r: &Resource<TensorRef>) -> Result<TensorKey, NnFault> {
        Ok(self.table.get(r).map_err(|e| NnFault::Trap(e.into()))?.0)
    }

    fn push_tensor(&mut self, key: TensorKey) -> Result<Resource<TensorRef>, NnFault> {
        match self.table.push(TensorRef(key)) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.tensors.release(key);
                Err(NnFault::Trap(e.into()))
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

impl wt::HostTensor for InstanceState {
    fn create(&mut self, desc: wt::TensorDesc) -> Result<Resource<TensorRef>, NnFault> {
        let desc = desc_from_wit(desc)?;
        let key = self.tensors.create(desc)?;
        self.push_tensor(key)
    }

    fn view(
        &mut self,
        base: Resource<TensorRef>,
        offset: u64,
        desc: wt::TensorDesc,
    ) -> Result<Resource<TensorRef>, NnFault> {
        let base = self.key(&base)?;
        let desc = desc_from_wit(desc)?;
        let key = self.tensors.view(base, offset, desc)?;
        self.push_tensor(key)
    }

    fn write(&mut self, t: Resource<TensorRef>, offset: u64, data: Vec<u8>) -> Result<(), NnFault> {
        let key = self.key(&t)?;
        self.tensors.write(key, offset, &data)
    }

    fn read(&mut self, t: Resource<TensorRef>) -> wasmtime::Result<Vec<u8>> {
        let key = self.table.get(&t)?.0;
        // The copy is charged while the host holds it. `read` has no error
        // type in gatehouse:nn@0.1.0, so a copy that does not fit traps.
        let len = self
            .tensors
            .span(key)
            .map_err(|e| wasmtime::format_err!("{e}"))?
            .len() as u64;
        self.tensors
            .charge(len, "reading a tensor out")
            .map_err(|e| wasmtime::format_err!("{e}"))?;
        let bytes = self.tensors.bytes(key).map(<[u8]>::to_vec);
        self.tensors.uncharge(len);
        bytes.map_err(|e| wasmtime::format_err!("{e}"))
    }

    fn desc(&mut self, t: Resource<TensorRef>) -> wasmtime::Result<wt::TensorDesc> {
        let key = self.table.get(&t)?.0;
        Ok(desc_to_wit(
            self.tensors
                .desc(key)
                .map_err(|e| wasmtime::format_err!("{e}"))?,
        ))
    }

    fn byte_len(&mut self, t: Resource<TensorRef>) -> wasmtime::Result<u64> {
        let key = self.table.get(&t)?.0;
        Ok(self
            .tensors
            .span(key)
            .map_err(|e| wasmtime::format_err!("{e}"))?
            .len() as u64)
    }

    fn drop(&mut self, t: Resource<TensorRef>) -> wasmtime::Result<()> {
        let TensorRef(key) = self.table.delete(t)?;
        self.tensors.release(key);
        Ok(())
    }
}

impl wt::Host for InstanceState {
    fn usage(&mut self) -> wasmtime::Result<wt::MemoryUsage> {
        Ok(wt::MemoryUsage {
            used: self.tensors.used(),
            quota: self.tensors.quota(),
        })
    }

    fn convert_nn_error(&mut self, err: NnFault) -> wasmtime::Result<wt::NnError> {
        Ok(match err {
            NnFault::Invalid(m) => wt::NnError::InvalidArgument(m),
            NnFault::QuotaExceeded(m) => wt::NnError::QuotaExceeded(m),
            NnFault::StaleTensor(m) => wt::NnError::StaleTensor(m),
            NnFault::Unsupported(m) => wt::NnError::Unsupported(m),
            NnFault::Deadline(m) => return Err(wasmtime::Error::new(HostDeadline(m))),
            NnFault::Trap(e) => return Err(e),
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

fn semantics(o: wops::ExecOptions) -> Semantics {
    match o.semantics {
        wops::Semantics::TfliteReference => Semantics::TfliteReference,
        wops::Semantics::TfliteMicro => Semantics::TfliteMicro,
    }
}

impl InstanceState {
    fn op_desc(&self, op: &wops::Op) -> Result<OpDesc, NnFault> {
        let k = |r: &Resource<TensorRef>| self.key(r);
        let ko = |r: &Option<Resource<TensorRef>>| r.as_ref().map(|r| self.key(r)).transpose();
        let unary = |kind: UnaryKind, u: &wops::Unary| -> Result<OpDesc, NnFault> {
            Ok(OpDesc::Unary {
                kind,
                input: k(&u.input)?,
                output: k(&u.output)?,
            })
        };
        let pool = |p: &wops::Pool2d| -> Result<PoolArgs, NnFault> {
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
            wops::Op::Conv2d(c) => OpDesc::Conv2d {
                input: k(&c.input)?,
                filter: k(&c.filter)?,
                bias: ko(&c.bias)?,
                output: k(&c.output)?,
                window: window(c.window),
                activation: activation(c.activation),
            },
            wops::Op::DepthwiseConv2d(c) => OpDesc::DepthwiseConv2d {
                input: k(&c.input)?,
                filter: k(&c.filter)?,
                bias: ko(&c.bias)?,
                output: k(&c.output)?,
                window: window(c.window),
                depth_multiplier: c.depth_multiplier,
                activation: activation(c.activation),
            },
            wops::Op::FullyConnected(f) => OpDesc::FullyConnected {
                input: k(&f.input)?,
                weights: k(&f.weights)?,
                bias: ko(&f.bias)?,
                output: k(&f.output)?,
                activation: activation(f.activation),
            },
            wops::Op::AveragePool2d(p) => OpDesc::AveragePool2d(pool(p)?),
            wops::Op::MaxPool2d(p) => OpDesc::MaxPool2d(pool(p)?),
            wops::Op::Add(a) => OpDesc::Add {
                a: k(&a.a)?,
                b: k(&a.b)?,
                output: k(&a.output)?,
                activation: activation(a.activation),
            },
            wops::Op::Mul(a) => OpDesc::Mul {
                a: k(&a.a)?,
                b: k(&a.b)?,
                output: k(&a.output)?,
                activation: activation(a.activation),
            },
            wops::Op::Softmax(s) => OpDesc::Softmax {
                input: k(&s.input)?,
                output: k(&s.output)?,
                beta: s.beta,
            },
            wops::Op::Logistic(u) => unary(UnaryKind::Logistic, u)?,
            wops::Op::Tanh(u) => unary(UnaryKind::Tanh, u)?,
            wops::Op::HardSwish(u) => unary(UnaryKind::HardSwish, u)?,
            wops::Op::Relu(u) => unary(UnaryKind::Relu, u)?,
            wops::Op::Relu6(u) => unary(UnaryKind::Relu6, u)?,
            wops::Op::ReluN1To1(u) => unary(UnaryKind::ReluN1To1, u)?,
            wops::Op::Quantize(u) => unary(UnaryKind::Quantize, u)?,
            wops::Op::Dequantize(u) => unary(UnaryKind::Dequantize, u)?,
            wops::Op::Reshape(u) => unary(UnaryKind::Reshape, u)?,
            wops::Op::Mean(r) => OpDesc::Mean {
                input: k(&r.input)?,
                output: k(&r.output)?,
                axes: r.axes.iter().map(|&a| a as usize).collect(),
                keep_dims: r.keep_dims,
            },
            wops::Op::ReduceMax(r) => OpDesc::ReduceMax {
                input: k(&r.input)?,
                output: k(&r.output)?,
                axes: r.axes.iter().map(|&a| a as usize).collect(),
            },
            wops::Op::Pad(p) => OpDesc::Pad {
                input: k(&p.input)?,
                output: k(&p.output)?,
                paddings: p
                    .paddings
                    .iter()
                    .map(|&(b, a)| (b as usize, a as usize))
                    .collect(),
            },
            wops::Op::Concatenation(c) => OpDesc::Concatenation {
                inputs: c.inputs.iter().map(k).collect::<Result<_, _>>()?,
                output: k(&c.output)?,
                axis: c.axis as usize,
            },
            wops::Op::StridedSlice(sl) => OpDesc::StridedSlice {
                input: k(&sl.input)?,
                output: k(&sl.output)?,
                begin: sl.begin.iter().map(|&v| v as i64).collect(),
                strides: sl.strides.iter().map(|&v| v as i64).collect(),
                counts: sl.counts.iter().map(|&v| v as usize).collect(),
            },
            wops::Op::SpaceToBatch(sb) => OpDesc::SpaceToBatch {
                input: k(&sb.input)?,
                output: k(&sb.output)?,
                block: [sb.block.0 as usize, sb.block.1 as usize],
                before: [sb.before.0 as usize, sb.before.1 as usize],
            },
            wops::Op::BatchToSpace(sb) => OpDesc::BatchToSpace {
                input: k(&sb.input)?,
                output: k(&sb.output)?,
                block: [sb.block.0 as usize, sb.block.1 as usize],
                before: [sb.before.0 as usize, sb.before.1 as usize],
            },
        })
    }
}

impl wops::Host for InstanceState {
    fn execute(&mut self, op: wops::Op, options: wops::ExecOptions) -> Result<(), NnFault> {
        let desc = self.op_desc(&op)?;
        let prepared =
            PreparedOp::prepare(&desc, &mut self.tensors, semantics(options), self.kernels)?;
        let result = self
            .budget()
            .admit(prepared.work(), || prepared.name().to_string())
            .and_then(|()| prepared.run(&mut self.tensors, self.kernels));
        prepared.release(&mut self.tensors);
        result
    }
}

impl wplan::HostPlan for InstanceState {
    fn new(&mut self, options: wops::ExecOptions) -> wasmtime::Result<Resource<Plan>> {
        // A plan's own bookkeeping counts against the quota like an operator.
        self.tensors
            .charge(OP_OVERHEAD, "plan")
            .map_err(|e| wasmtime::format_err!("{e}"))?;
        Ok(self.table.push(Plan::new(semantics(options)))?)
    }

    fn push(&mut self, plan: Resource<Plan>, op: wops::Op) -> Result<u32, NnFault> {
        let desc = self.op_desc(&op)?;
        let plan = self
            .table
            .get_mut(&plan)
            .map_err(|e| NnFault::Trap(e.into()))?;
        plan.push(&desc, &mut self.tensors, self.kernels)
    }

    fn run(&mut self, plan: Resource<Plan>) -> Result<(), NnFault> {
        let mut budget = self.budget();
        let plan = self.table.get(&plan).map_err(|e| NnFault::Trap(e.into()))?;
        plan.run(&mut self.tensors, self.kernels, &mut budget)
    }

    fn invoke(
        &mut self,
        plan: Resource<Plan>,
        input: Resource<TensorRef>,
        data: Vec<u8>,
        output: Resource<TensorRef>,
    ) -> Result<Vec<u8>, NnFault> {
        let (ik, ok) = (self.key(&input)?, self.key(&output)?);
        let rep = plan.rep();
        let mut budget = self.budget();
        let plan = self.table.get(&plan).map_err(|e| NnFault::Trap(e.into()))?;
        let result = plan.run_batch(&mut self.tensors, self.kernels, &mut budget, ik, ok, &data)?;
        // Charged while the host built it; it is the guest's from here on.
        self.tensors.uncharge(result.len() as u64);
        self.last_invoke = Some(Invoked {
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
        if self.last_invoke.is_some_and(|i| i.plan == plan.rep()) {
            self.last_invoke = None;
        }
        let plan = self.table.delete(plan)?;
        plan.release(&mut self.tensors);
        self.tensors.uncharge(OP_OVERHEAD);
        Ok(())
    }
}

impl wplan::Host for InstanceState {}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
