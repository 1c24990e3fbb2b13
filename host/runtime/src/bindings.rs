//! Rust bindings of the WIT contract (`wit/`), generated at build time.
//!
//! Every import may trap (`trappable`): a host fault ends the call instead of
//! returning garbage. `nn-error` results map to [`NnFault`], whose `Trap`
//! variant traps and whose other variants reach the guest as a WIT error.
//! WIT resources map to host types, as wasmtime's wasi-nn does.

pub use crate::nn::NnFault;

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "gatehouse:plugin/plugin",
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
pub use gatehouse::plugin::{clock, log, types};
