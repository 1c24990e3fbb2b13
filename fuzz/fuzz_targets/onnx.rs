//! An ONNX model as a plugin's `init` gets it: decode and check it with
//! the SDK's reader, natively (everything before the loader's first host
//! call). A malformed model is an error, never a panic.
#![no_main]

use gatehouse_sdk::onnx::Model;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Model::inspect(data);
});
