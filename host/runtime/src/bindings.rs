//! Rust bindings of the WIT contract (`wit/`), generated at build time.
//!
//! Every import may trap (`trappable`): a host fault ends the call instead of
//! returning garbage. `nn-error` results map to [`NnCallError`]: an
//! [`NnFault`] reaches the guest as a WIT error (or, past the deadline,
//! traps), a host fault traps. WIT resources map to host types, as
//! wasmtime's wasi-nn does: a tensor handle to its [`gatehouse_nn::TensorKey`],
//! a plan to the [`gatehouse_nn::Plan`] itself.

use gatehouse_nn::NnFault;

/// How an nn host function fails: with an error for the guest, or a trap.
#[derive(Debug)]
pub enum NnCallError {
    Nn(NnFault),
    Trap(wasmtime::Error),
}

impl From<NnFault> for NnCallError {
    fn from(e: NnFault) -> Self {
        NnCallError::Nn(e)
    }
}

impl From<wasmtime::Error> for NnCallError {
    fn from(e: wasmtime::Error) -> Self {
        NnCallError::Trap(e)
    }
}

impl From<wasmtime::component::ResourceTableError> for NnCallError {
    fn from(e: wasmtime::component::ResourceTableError) -> Self {
        NnCallError::Trap(e.into())
    }
}

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "gatehouse:plugin/plugin@0.1.0",
    imports: { default: trappable },
    trappable_error_type: {
        "gatehouse:nn/tensors.nn-error" => NnCallError,
    },
    with: {
        "gatehouse:nn/tensors.tensor": gatehouse_nn::TensorKey,
        "gatehouse:nn/plan.plan": gatehouse_nn::Plan,
    },
});

pub use gatehouse::nn0_1_0::{ops, plan, tensors};
pub use gatehouse::plugin0_1_0::{clock, log, types};

/// The `gatehouse:plugin/batched@0.2.0` world: 0.1.0's plus the `batch` export. Its
/// imports are 0.1.0's, so they map onto the bindings above and one linker
/// serves plugins of both versions.
pub mod batched {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "gatehouse:plugin/batched@0.2.0",
        with: {
            "gatehouse:nn/tensors@0.1.0": super::tensors,
            "gatehouse:nn/ops@0.1.0": super::ops,
            "gatehouse:nn/plan@0.1.0": super::plan,
            "gatehouse:plugin/types@0.1.0": super::types,
            "gatehouse:plugin/log@0.1.0": super::log,
            "gatehouse:plugin/clock@0.1.0": super::clock,
        },
    });
}

/// `gatehouse:nn@0.2.0`'s `sequence` interface: the LSTM and BATCH_MATMUL.
/// It takes 0.1.0's tensors, plans and options, so those map onto the
/// bindings above and its operators join the same plans.
pub mod sequence {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "gatehouse:nn/sequence-ops@0.2.0",
        imports: { default: trappable },
        trappable_error_type: {
            "gatehouse:nn/tensors.nn-error" => super::NnCallError,
        },
        with: {
            "gatehouse:nn/tensors@0.1.0": super::tensors,
            "gatehouse:nn/ops@0.1.0": super::ops,
            "gatehouse:nn/plan@0.1.0": super::plan,
        },
    });
}

/// `gatehouse:nn@0.3.0`'s `runtimes` interface: plans and immediate calls
/// under onnxruntime's arithmetic as well as TFLite's. Its plans and
/// operators are 0.1.0's, mapped onto the bindings above.
pub mod runtimes {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "gatehouse:nn/runtimes-ops@0.3.0",
        imports: { default: trappable },
        trappable_error_type: {
            "gatehouse:nn/tensors.nn-error" => super::NnCallError,
        },
        with: {
            "gatehouse:nn/tensors@0.1.0": super::tensors,
            "gatehouse:nn/ops@0.1.0": super::ops,
            "gatehouse:nn/plan@0.1.0": super::plan,
        },
    });
}

/// `gatehouse:nn@0.4.0`: its `runtimes` interface, 0.3.0's with
/// onnxruntime's uint8 arithmetic as a fourth semantics, `more-ops`,
/// LEAKY_RELU and TRANSPOSE, `dynamic`, DynamicQuantizeLinear, and
/// `linear-quant`, QuantizeLinear and DequantizeLinear per axis or block.
pub mod runtimes_uint8 {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "gatehouse:nn/runtimes-ops@0.4.0",
        imports: { default: trappable },
        trappable_error_type: {
            "gatehouse:nn/tensors.nn-error" => super::NnCallError,
        },
        with: {
            "gatehouse:nn/tensors@0.1.0": super::tensors,
            "gatehouse:nn/ops@0.1.0": super::ops,
            "gatehouse:nn/plan@0.1.0": super::plan,
        },
    });
}

/// `gatehouse:dsp@0.1.0`: audio front ends on the host. Its errors are
/// `gatehouse:nn`'s, so they map to [`NnCallError`] in the same way.
pub mod dsp {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "gatehouse:dsp/kernels@0.1.0",
        imports: { default: trappable },
        trappable_error_type: {
            "gatehouse:nn/tensors.nn-error" => super::NnCallError,
        },
        with: {
            "gatehouse:nn/tensors@0.1.0": super::tensors,
            "gatehouse:dsp/audio.front-end": crate::dsp_host::FrontEndSlot,
        },
    });
}
