//! Rust bindings of the WIT contract (`wit/`), generated at build time.
//!
//! Every import may trap (`trappable`): a host fault ends the call instead of
//! returning garbage. `nn-error` results map to [`NnFault`], whose `Trap`
//! variant traps and whose other variants reach the guest as a WIT error.
//! WIT resources map to host types, as wasmtime's wasi-nn does.

pub use crate::nn::NnFault;

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "gatehouse:plugin/plugin@0.1.0",
    imports: { default: trappable },
    trappable_error_type: {
        "gatehouse:nn/tensors.nn-error" => NnFault,
    },
    with: {
        "gatehouse:nn/tensors.tensor": crate::nn::host::TensorRef,
        "gatehouse:nn/plan.plan": crate::nn::plan::Plan,
    },
});

pub use gatehouse::nn::{ops, plan, tensors};
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
