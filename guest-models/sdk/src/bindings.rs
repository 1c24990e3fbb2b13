//! The `gatehouse:plugin@0.1.0` world as Rust, generated from `wit/`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "gatehouse:plugin/plugin",
    pub_export_macro: true,
    export_macro_name: "export_plugin",
    default_bindings_module: "gatehouse_sdk::bindings",
    runtime_path: "gatehouse_sdk::__wit_bindgen::rt",
    generate_all,
});
