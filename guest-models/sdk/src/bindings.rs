//! The `gatehouse:plugin` worlds as Rust, generated from `wit/`: 0.1.0 here,
//! and 0.2.0, which adds batched processing, in [`batched`].

wit_bindgen::generate!({
    path: "../../wit",
    world: "gatehouse:plugin/plugin@0.1.0",
    pub_export_macro: true,
    export_macro_name: "export_plugin",
    default_bindings_module: "gatehouse_sdk::bindings",
    runtime_path: "gatehouse_sdk::__wit_bindgen::rt",
    generate_all,
});

/// The `gatehouse:plugin/batched@0.2.0` world. Its imports are 0.1.0's, mapped onto
/// the modules above, so the SDK's tensors and types serve both worlds.
pub mod batched {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "gatehouse:plugin/batched@0.2.0",
        pub_export_macro: true,
        export_macro_name: "export_batched_plugin",
        default_bindings_module: "gatehouse_sdk::bindings::batched",
        runtime_path: "gatehouse_sdk::__wit_bindgen::rt",
        with: {
            "gatehouse:nn/tensors@0.1.0": crate::bindings::gatehouse::nn0_1_0::tensors,
            "gatehouse:nn/ops@0.1.0": crate::bindings::gatehouse::nn0_1_0::ops,
            "gatehouse:nn/plan@0.1.0": crate::bindings::gatehouse::nn0_1_0::plan,
            "gatehouse:plugin/types@0.1.0": crate::bindings::gatehouse::plugin0_1_0::types,
            "gatehouse:plugin/log@0.1.0": crate::bindings::gatehouse::plugin0_1_0::log,
            "gatehouse:plugin/clock@0.1.0": crate::bindings::gatehouse::plugin0_1_0::clock,
        },
    });
}

/// The batched world's own four functions are 0.1.0's: a plugin implements
/// [`Guest`] once and adds `batch::Guest` to export the batched world.
impl<T: Guest> batched::Guest for T {
    fn describe() -> Descriptor {
        <T as Guest>::describe()
    }

    fn init(config: Config) -> Result<(), PluginError> {
        <T as Guest>::init(config)
    }

    fn process(input: Vec<u8>) -> Result<Inference, PluginError> {
        <T as Guest>::process(input)
    }

    fn stats() -> Vec<Stat> {
        <T as Guest>::stats()
    }
}

/// `gatehouse:nn@0.2.0`'s `sequence` interface: the LSTM and BATCH_MATMUL,
/// over 0.1.0's tensors and into 0.1.0's plans (mapped onto the modules above).
pub mod sequence {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "gatehouse:nn/sequence-ops@0.2.0",
        runtime_path: "gatehouse_sdk::__wit_bindgen::rt",
        with: {
            "gatehouse:nn/tensors@0.1.0": crate::bindings::gatehouse::nn0_1_0::tensors,
            "gatehouse:nn/ops@0.1.0": crate::bindings::gatehouse::nn0_1_0::ops,
            "gatehouse:nn/plan@0.1.0": crate::bindings::gatehouse::nn0_1_0::plan,
        },
    });
}

/// `gatehouse:nn@0.4.0`'s `runtimes` interface: 0.1.0's plans and immediate
/// calls under onnxruntime's arithmetic too, int8 or uint8 (mapped onto the
/// modules above). The SDK imports 0.4.0 only; hosts still serve 0.3.0 to
/// plugins built against it.
pub mod runtimes {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "gatehouse:nn/runtimes-ops@0.4.0",
        runtime_path: "gatehouse_sdk::__wit_bindgen::rt",
        with: {
            "gatehouse:nn/tensors@0.1.0": crate::bindings::gatehouse::nn0_1_0::tensors,
            "gatehouse:nn/ops@0.1.0": crate::bindings::gatehouse::nn0_1_0::ops,
            "gatehouse:nn/plan@0.1.0": crate::bindings::gatehouse::nn0_1_0::plan,
        },
    });
}

/// `gatehouse:dsp@0.1.0`: the host's audio front ends. Their errors are
/// `gatehouse:nn`'s, mapped onto the modules above.
pub mod dsp {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "gatehouse:dsp/kernels@0.1.0",
        runtime_path: "gatehouse_sdk::__wit_bindgen::rt",
        with: {
            "gatehouse:nn/tensors@0.1.0": crate::bindings::gatehouse::nn0_1_0::tensors,
        },
    });
}
