//! Operators, one file each (as TFLite Micro keeps them): the arguments a
//! plugin gives, their validation and preparation into kernel state
//! (`prepare`), and the kernel call that runs them (`eval`), side by side.
//! A new operator is a new file here and one line in the `operators!`
//! table below; [`PreparedOp`] does what every operator shares (charging
//! the quota, holding the operands, the deadline's work).

mod operand;
mod sliced;

mod add;
mod batch_matmul;
mod concatenation;
mod conv2d;
mod depthwise_conv2d;
mod dynamic_quantize;
mod fully_connected;
mod leaky_relu;
mod linear_quant;
mod lstm;
mod mul;
#[cfg(test)]
mod onnxruntime_tests;
mod pad;
mod pool2d;
mod reduce;
mod softmax;
mod space_batch;
mod strided_slice;
mod transpose;
mod unary;

pub use add::Add;
pub use batch_matmul::BatchMatMul;
pub use concatenation::Concatenation;
pub use conv2d::Conv2d;
pub use depthwise_conv2d::DepthwiseConv2d;
pub use dynamic_quantize::DynamicQuantize;
pub use fully_connected::FullyConnected;
pub use leaky_relu::LeakyRelu;
pub use linear_quant::{Direction, LinearQuant};
pub use lstm::{Lstm, LstmGate};
pub use mul::Mul;
pub use operand::WindowArgs;
pub use pad::Pad;
pub use pool2d::{AveragePool2d, MaxPool2d, PoolArgs};
pub use reduce::{Mean, ReduceMax};
pub use softmax::Softmax;
pub use space_batch::{BatchToSpace, SpaceToBatch};
pub use strided_slice::StridedSlice;
pub use transpose::Transpose;
pub use unary::{Unary, UnaryKind};

use gatehouse_kernels::{KernelError, KernelSet, Semantics};

use crate::budget::Work;
use crate::tensor::{Span, TensorKey, TensorStore};
use crate::threads::Threads;
use crate::{NnFault, OP_OVERHEAD};

/// The operator table: each variant of [`OpDesc`] and the type (in its
/// own file) that prepares it.
macro_rules! operators {
    ($($variant:ident($ty:ty),)*) => {
        /// One operator over tensors of a [`TensorStore`].
        #[derive(Clone, Debug)]
        pub enum OpDesc {
            $($variant($ty),)*
        }

        impl OpDesc {
            fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
                match self {
                    $(OpDesc::$variant(op) => op.prepare(cx),)*
                }
            }
        }

        $(impl From<$ty> for OpDesc {
            fn from(op: $ty) -> Self {
                OpDesc::$variant(op)
            }
        })*
    };
}

operators! {
    Conv2d(Conv2d),
    DepthwiseConv2d(DepthwiseConv2d),
    FullyConnected(FullyConnected),
    AveragePool2d(AveragePool2d),
    MaxPool2d(MaxPool2d),
    Add(Add),
    Mul(Mul),
    Softmax(Softmax),
    Unary(Unary),
    Mean(Mean),
    ReduceMax(ReduceMax),
    Pad(Pad),
    Concatenation(Concatenation),
    StridedSlice(StridedSlice),
    SpaceToBatch(SpaceToBatch),
    BatchToSpace(BatchToSpace),
    Lstm(Lstm),
    BatchMatMul(BatchMatMul),
    LeakyRelu(LeakyRelu),
    Transpose(Transpose),
    DynamicQuantize(DynamicQuantize),
    LinearQuant(LinearQuant),
}

/// An operator's arguments, validated and prepared against the tensors
/// they name.
trait Operator {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault>;
}

/// What `prepare` works with.
struct Prep<'a> {
    st: &'a mut TensorStore,
    semantics: Semantics,
    ks: &'a KernelSet,
    /// The threads a layer may be split over.
    threads: &'a Threads,
    /// Bytes charged ahead of building (see [`Prep::stage`]).
    staged: u64,
}

impl Prep<'_> {
    /// Refuses `what` under onnxruntime's semantics: its arithmetic there
    /// (tanh, hard-swish and the relus as onnxruntime runs them, in float
    /// or not at all) is not reproduced yet, and an operator that
    /// ran TFLite's instead would give results that are close but not the
    /// bits the plugin asked for.
    fn fixed_point(&self, what: &str) -> Result<(), NnFault> {
        if self.semantics.is_onnxruntime() {
            return Err(NnFault::Unsupported(format!(
                "{what} under onnxruntime semantics (supported there: conv2d, \
                 depthwise-conv2d, fully-connected, add, mul, logistic, leaky-relu, softmax, \
                 average-pool2d, max-pool2d, mean, concatenation, batch-matmul, quantize, dequantize and \
                 the operators that only move bytes)"
            )));
        }
        Ok(())
    }

    /// Charge what a layer with weights will hold before its weights are
    /// copied and packed, so a layer too big for the quota is refused
    /// before the host allocates anything for it.
    fn stage(&mut self, bytes: Result<usize, KernelError>, what: &str) -> Result<(), NnFault> {
        let bytes = bytes? as u64;
        self.st.charge(bytes, what)?;
        self.staged += bytes;
        Ok(())
    }
}

/// A prepared operator before [`PreparedOp`] takes its operands.
struct Built {
    name: &'static str,
    eval: Box<dyn Eval>,
    inputs: Vec<TensorKey>,
    output: TensorKey,
    /// Outputs besides `output` (DynamicQuantizeLinear's scale and zero
    /// point), at most [`MAX_EXTRA`].
    extra: Vec<TensorKey>,
}

/// The most outputs an operator has besides its first.
const MAX_EXTRA: usize = 2;

impl Built {
    fn new(
        name: &'static str,
        eval: impl Eval + 'static,
        inputs: Vec<TensorKey>,
        output: TensorKey,
    ) -> Built {
        Built {
            name,
            eval: Box::new(eval),
            inputs,
            output,
            extra: vec![],
        }
    }

    /// With outputs besides the first, which the kernel writes too.
    fn with_extra(mut self, extra: Vec<TensorKey>) -> Built {
        self.extra = extra;
        self
    }
}

/// An operator's operands for one run: the store and where its inputs and
/// output are.
struct Operands<'a> {
    st: &'a mut TensorStore,
    inputs: &'a [Span],
    output: Span,
    /// Outputs besides the first (see [`Built::with_extra`]).
    extra: &'a [Span],
}

impl Operands<'_> {
    /// Run `f` on the first input and the output.
    fn one(
        self,
        f: impl FnOnce(&[i8], &mut [i8]) -> Result<(), KernelError>,
    ) -> Result<(), NnFault> {
        let input = *self
            .inputs
            .first()
            .ok_or_else(|| NnFault::invalid("no input"))?;
        Ok(self
            .st
            .with_operands([input], self.output, |[i], out| f(i, out))??)
    }

    /// The same with the input and output as bytes (data movement, any type).
    fn bytes(
        self,
        f: impl FnOnce(&[u8], &mut [u8]) -> Result<(), KernelError>,
    ) -> Result<(), NnFault> {
        self.one(|i, out| f(bytemuck::cast_slice(i), bytemuck::cast_slice_mut(out)))
    }

    /// Run `f` on the first two inputs and the output.
    fn two(
        self,
        f: impl FnOnce(&[i8], &[i8], &mut [i8]) -> Result<(), KernelError>,
    ) -> Result<(), NnFault> {
        let (&a, &b) = match self.inputs {
            [a, b, ..] => (a, b),
            _ => return Err(NnFault::invalid("fewer than two inputs")),
        };
        Ok(self
            .st
            .with_operands([a, b], self.output, |[x, y], out| f(x, y, out))??)
    }

    /// Run `f` on the first input and all three outputs, for an operator
    /// with two outputs besides the first.
    fn one_into_three(
        self,
        f: impl FnOnce(&[i8], [&mut [i8]; 3]) -> Result<(), KernelError>,
    ) -> Result<(), NnFault> {
        let (&[input, ..], &[b, c]) = (self.inputs, self.extra) else {
            return Err(NnFault::invalid("an input and three outputs expected"));
        };
        Ok(self
            .st
            .with_outputs([input], [self.output, b, c], |[i], outs| f(i, outs))??)
    }

    /// Run `f` on every input and the output.
    fn many(
        self,
        f: impl FnOnce(&[&[i8]], &mut [i8]) -> Result<(), KernelError>,
    ) -> Result<(), NnFault> {
        Ok(self.st.with_many(self.inputs, self.output, f)??)
    }
}

/// Runs a prepared operator on its operands' bytes.
trait Eval: Send + Sync {
    /// Run on the operands, inputs in the order `prepare` named them.
    fn eval(&self, ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault>;

    /// Host memory the kernel state holds (packed weights, tables).
    fn held_bytes(&self) -> u64 {
        0
    }

    /// Multiply-accumulates per run, for layers with weights.
    fn macs(&self) -> u64 {
        0
    }

    /// Per-run work beyond touching each element, for the deadline: the
    /// MACs, or a pool's window reads.
    fn window_work(&self) -> u64 {
        self.macs()
    }

    /// Whether the output may be the input's own bytes (a reshape in place).
    fn may_alias(&self) -> bool {
        false
    }

    /// The kernel, when this is a fully connected layer (batched in lanes).
    fn fully_connected(&self) -> Option<&gatehouse_kernels::FullyConnected> {
        None
    }
}

/// An operator ready to run: kernel state plus the spans it reads and writes.
/// It holds a reference to every tensor it touches until [`release`](Self::release).
pub struct PreparedOp {
    name: &'static str,
    eval: Box<dyn Eval>,
    inputs: Vec<Span>,
    output: Span,
    extra: Vec<Span>,
    held: Vec<TensorKey>,
    charged: u64,
    /// What one run costs, for the deadline.
    work: Work,
}

impl PreparedOp {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Validate `op` against the tensors it names and build its kernel state.
    /// Charges copied weights to the quota; holds every operand.
    pub fn prepare(
        op: &OpDesc,
        st: &mut TensorStore,
        semantics: Semantics,
        ks: &KernelSet,
    ) -> Result<PreparedOp, NnFault> {
        Self::prepare_on(op, st, semantics, ks, &Threads::one())
    }

    /// As [`prepare`](Self::prepare), with the layer split to run over
    /// `threads` where it is big enough to gain from it.
    pub fn prepare_on(
        op: &OpDesc,
        st: &mut TensorStore,
        semantics: Semantics,
        ks: &KernelSet,
        threads: &Threads,
    ) -> Result<PreparedOp, NnFault> {
        let mut cx = Prep {
            st,
            semantics,
            ks,
            threads,
            staged: 0,
        };
        let built = op.prepare(&mut cx);
        let staged = cx.staged;
        match built.and_then(|b| Self::finish(b, st, staged)) {
            Ok(p) => Ok(p),
            Err(e) => {
                st.uncharge(staged);
                Err(e)
            }
        }
    }

    /// Charge the rest of what the operator holds and take its operands.
    fn finish(built: Built, st: &mut TensorStore, staged: u64) -> Result<PreparedOp, NnFault> {
        let Built {
            name,
            eval,
            inputs,
            output,
            extra,
        } = built;
        // The operator and its operand lists (a concatenation has up to 32).
        let per_operand = (std::mem::size_of::<Span>() + std::mem::size_of::<TensorKey>()) as u64;
        let bookkeeping =
            OP_OVERHEAD + (inputs.len() as u64 + 1 + extra.len() as u64) * per_operand;
        let spans = inputs
            .iter()
            .map(|k| st.span(*k))
            .collect::<Result<Vec<_>, _>>()?;
        let out_span = st.span(output)?;
        let aliasing = eval.may_alias() && spans.first() == Some(&out_span);
        if !aliasing && spans.iter().any(|s| s.overlaps(&out_span)) {
            return Err(NnFault::invalid(format!(
                "{name}: the output overlaps an input"
            )));
        }
        if extra.len() > MAX_EXTRA {
            return Err(NnFault::invalid(format!("{name}: too many outputs")));
        }
        let extra_spans = extra
            .iter()
            .map(|k| st.span(*k))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, e) in extra_spans.iter().enumerate() {
            let others = spans.iter().chain([&out_span]).chain(&extra_spans[..i]);
            if others.clone().any(|s| s.overlaps(e)) {
                return Err(NnFault::invalid(format!(
                    "{name}: output {} overlaps another operand",
                    i + 2
                )));
            }
        }
        // Layers with weights were staged at their exact size; the rest now.
        let charged = eval.held_bytes().max(staged) + bookkeeping;
        st.charge(charged - staged, name)?;
        let mut held = inputs;
        held.push(output);
        held.extend(extra);
        for (i, k) in held.iter().enumerate() {
            if let Err(e) = st.retain(*k) {
                for k in &held[..i] {
                    st.release(*k);
                }
                st.uncharge(charged - staged);
                return Err(e);
            }
        }
        let elements = spans
            .iter()
            .chain([&out_span])
            .chain(&extra_spans)
            .map(|s| s.len() as u64)
            .sum();
        let work = Work {
            macs: eval.window_work(),
            elements,
        };
        Ok(PreparedOp {
            name,
            eval,
            inputs: spans,
            output: out_span,
            extra: extra_spans,
            held,
            charged,
            work,
        })
    }

    /// Run on the store's current activations.
    pub fn run(&self, st: &mut TensorStore, ks: &KernelSet) -> Result<(), NnFault> {
        // As `run_at` with no move, but on the spans as they are: copying
        // them into `run_at`'s arrays (768 bytes for the inputs) was a
        // noticeable part of a small layer's fixed cost.
        if self.output.is_empty() {
            return Ok(());
        }
        let io = Operands {
            st,
            inputs: &self.inputs,
            output: self.output,
            extra: &self.extra,
        };
        self.eval.eval(ks, io)
    }

    /// Run with every operand span moved by `at`: one lane of a batch.
    pub fn run_at(
        &self,
        st: &mut TensorStore,
        ks: &KernelSet,
        at: impl Fn(Span) -> Span,
    ) -> Result<(), NnFault> {
        // An empty output has nothing to compute. Its shape may still be
        // huge ([32639, 32639, 0]), and kernels that walk the outer
        // dimensions would loop a billion times over nothing: work its
        // estimate, which counts elements, would not see.
        if self.output.is_empty() {
            return Ok(());
        }
        // No operator has more inputs than this (prepare refused them), and
        // an array keeps the hot path free of allocation.
        let mut spans = [self.output; TensorStore::MAX_MANY];
        let n = self.inputs.len().min(spans.len());
        for (d, &s) in spans.iter_mut().zip(&self.inputs) {
            *d = at(s);
        }
        let mut extra = [self.output; MAX_EXTRA];
        let m = self.extra.len().min(MAX_EXTRA);
        for (d, &s) in extra.iter_mut().zip(&self.extra) {
            *d = at(s);
        }
        let io = Operands {
            st,
            inputs: &spans[..n],
            output: at(self.output),
            extra: &extra[..m],
        };
        self.eval.eval(ks, io)
    }

    pub fn inputs(&self) -> &[Span] {
        &self.inputs
    }

    pub fn output(&self) -> Span {
        self.output
    }

    /// Outputs besides the first.
    pub fn extra_outputs(&self) -> &[Span] {
        &self.extra
    }

    /// What one run costs, for the deadline.
    pub fn work(&self) -> Work {
        self.work
    }

    /// Multiply-accumulates per run of the layers that have them.
    pub fn macs(&self) -> u64 {
        self.eval.macs()
    }

    /// The layer, when this is a fully connected one.
    pub fn fully_connected(&self) -> Option<&gatehouse_kernels::FullyConnected> {
        self.eval.fully_connected()
    }

    /// Give back the operands and the quota.
    pub fn release(self, st: &mut TensorStore) {
        for k in self.held {
            st.release(k);
        }
        st.uncharge(self.charged);
    }
}
#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, Instant};

    use gatehouse_kernels::dispatch;

    use super::*;
    use crate::budget::Budget;
    use crate::plan::Plan;
    use crate::tensor::{DType, Desc, Quant};

    /// An int8 tensor of `shape` at scale 0.1, zero point 0.
    pub(crate) fn i8s(shape: &[usize]) -> Desc {
        Desc {
            dtype: DType::I8,
            shape: shape.to_vec(),
            quant: Some(Quant {
                scales: vec![0.1],
                zero_points: vec![0],
                axis: 0,
            }),
        }
    }

    /// Found by the `nn_ops` fuzz target: a concatenation of tensors shaped
    /// [32639, 32639, 0] costs no bytes and was estimated as no work, yet
    /// the kernel walked its billion outer positions for a minute. An
    /// empty output is now not computed at all.
    #[test]
    fn an_empty_output_costs_nothing_whatever_its_shape() {
        let ks = dispatch::available().last().expect("a kernel set");
        let mut st = TensorStore::new(1 << 20);
        let t = st.create(i8s(&[32639, 32639, 0])).unwrap();
        let out = st.create(i8s(&[32639, 32639, 0])).unwrap();
        let concat = OpDesc::from(Concatenation {
            inputs: vec![t, t, t],
            output: out,
            axis: 2,
        });
        let mut plan = Plan::new(Semantics::TfliteReference);
        plan.push(&concat, &mut st, ks).unwrap();
        let start = Instant::now();
        plan.run(&mut st, ks, &mut Budget::unlimited()).unwrap();
        // Unfixed, this took a minute in a release build.
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        plan.release(&mut st);
    }

    /// Found reading the kernels after the finding above: a MEAN over 2^25
    /// elements overflowed its int32 sum (a panic in a debug host). It
    /// wraps, as TFLite's int32 does.
    #[test]
    fn a_mean_of_very_many_elements_wraps_instead_of_panicking() {
        let ks = dispatch::available().last().expect("a kernel set");
        let mut st = TensorStore::new(1 << 26);
        let x = st.create(i8s(&[1 << 25])).unwrap();
        st.write(x, 0, &vec![127u8; 1 << 25]).unwrap();
        let y = st.create(i8s(&[1])).unwrap();
        let mean = OpDesc::from(Mean {
            input: x,
            output: y,
            axes: vec![0],
            keep_dims: true,
        });
        let op = PreparedOp::prepare(&mean, &mut st, Semantics::TfliteReference, ks).unwrap();
        op.run(&mut st, ks).unwrap();
        op.release(&mut st);
    }
}
