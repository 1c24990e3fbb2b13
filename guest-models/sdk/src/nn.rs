//! Tensors and plans in host memory, and helpers to describe them.
//!
//! The generated types are already safe: a [`Tensor`] handle is freed when
//! dropped, and borrows in operator records keep handles alive while a call
//! uses them. This module adds constructors and error text.

pub use crate::bindings::gatehouse::nn0_1_0::ops::{
    Activation, Binary, Concatenation, Conv2d, DepthwiseConv2d, ExecOptions, FullyConnected, Op,
    Pad, Padding, Pool2d, Reduce, Semantics, Softmax, SpaceBatch, StridedSlice, Unary, Window,
    execute,
};
pub use crate::bindings::gatehouse::nn0_1_0::plan::Plan;
pub use crate::bindings::gatehouse::nn0_1_0::tensors::{
    Dtype, MemoryUsage, NnError, Quantization, Tensor, TensorDesc, usage,
};
pub use crate::bindings::sequence::gatehouse::nn0_2_0::sequence::{
    BatchMatmul, CellActivation, Lstm, LstmGate, Op as SequenceOp,
};

/// Plans and immediate calls under any of three runtimes' arithmetic,
/// onnxruntime's among them, for int8 or uint8 activations
/// (`gatehouse:nn/runtimes@0.4.0`). A plugin that never calls these does
/// not import the interface, and runs on hosts without it.
pub mod runtimes {
    use crate::bindings::runtimes::gatehouse::nn0_4_0::runtimes as wit;
    pub use wit::{Semantics, execute};

    /// LEAKY_RELU and TRANSPOSE (`gatehouse:nn/more-ops@0.4.0`), recorded
    /// into the same plans with [`more::push`].
    pub use crate::bindings::runtimes::gatehouse::nn0_4_0::more_ops::{
        self as more, LeakyRelu, Op as MoreOp, Transpose,
    };

    /// DynamicQuantizeLinear (`gatehouse:nn/dynamic@0.4.0`), recorded into
    /// the same plans with [`dynamic::push`].
    pub use crate::bindings::runtimes::gatehouse::nn0_4_0::dynamic::{self, DynamicQuantize};

    /// QuantizeLinear and DequantizeLinear per axis or per block
    /// (`gatehouse:nn/linear-quant@0.4.0`), recorded with [`linear_quant::push`].
    pub use crate::bindings::runtimes::gatehouse::nn0_4_0::linear_quant::{
        self, Op as LinearQuantOp, Params as LinearQuantParams, QuantizeLinear,
    };

    /// An empty plan whose operators all use `semantics`.
    pub fn new_plan(semantics: Semantics) -> super::Plan {
        // The import is small enough to be inlined into its callers, which
        // then leave nothing that refers to the object file holding the
        // interface's type section, and the linker drops it (the component
        // then fails to encode). Calling the bindings' link helper keeps it.
        crate::bindings::runtimes::__link_custom_section_describing_imports();
        wit::new_plan(semantics)
    }
}

impl Quantization {
    /// One scale and zero point for the whole tensor.
    pub fn per_tensor(scale: f32, zero_point: i32) -> Self {
        Quantization {
            scales: vec![scale],
            zero_points: vec![zero_point],
            axis: 0,
        }
    }
}

impl Dtype {
    pub fn size(self) -> usize {
        match self {
            Dtype::Int8 | Dtype::Uint8 => 1,
            Dtype::Int32 | Dtype::Float32 => 4,
        }
    }
}

impl TensorDesc {
    pub fn new(dtype: Dtype, shape: &[u32], quantization: Option<Quantization>) -> Self {
        TensorDesc {
            dtype,
            shape: shape.to_vec(),
            quantization,
        }
    }

    /// Elements times element size; saturates rather than overflowing, so
    /// the host is the one to refuse an absurd shape.
    pub fn byte_len(&self) -> usize {
        self.shape
            .iter()
            .fold(self.dtype.size(), |a, &d| a.saturating_mul(d as usize))
    }
}

impl Tensor {
    /// A tensor holding `data`.
    pub fn with_data(desc: &TensorDesc, data: &[u8]) -> Result<Tensor, NnError> {
        let t = Tensor::create(desc)?;
        if !data.is_empty() {
            t.write(0, data)?;
        }
        Ok(t)
    }
}

impl ExecOptions {
    /// The TFLite interpreter's reference kernels.
    pub fn reference() -> Self {
        ExecOptions {
            semantics: Semantics::TfliteReference,
        }
    }
}

impl NnError {
    /// The error as a sentence for logs and plugin errors.
    pub fn message(&self) -> String {
        match self {
            NnError::InvalidArgument(m) => format!("invalid argument: {m}"),
            NnError::QuotaExceeded(m) => format!("tensor quota exceeded: {m}"),
            NnError::StaleTensor(m) => format!("stale tensor: {m}"),
            NnError::Unsupported(m) => format!("unsupported: {m}"),
        }
    }
}

/// An operator of either interface: 0.1.0's `ops` or 0.2.0's `sequence`.
/// A plugin that records only the first never imports the second.
pub enum AnyOp<'a> {
    Core(Op<'a>),
    Sequence(SequenceOp<'a>),
}

impl AnyOp<'_> {
    /// Append to `plan`; returns the operator's index.
    pub fn push(&self, plan: &Plan) -> Result<u32, NnError> {
        match self {
            AnyOp::Core(op) => plan.push(op),
            AnyOp::Sequence(op) => {
                crate::bindings::sequence::gatehouse::nn0_2_0::sequence::push(plan, op)
            }
        }
    }

    /// Prepare and run now.
    pub fn execute(&self, options: ExecOptions) -> Result<(), NnError> {
        match self {
            AnyOp::Core(op) => execute(op, options),
            AnyOp::Sequence(op) => {
                crate::bindings::sequence::gatehouse::nn0_2_0::sequence::execute(op, options)
            }
        }
    }
}
