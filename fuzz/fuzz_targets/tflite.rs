//! A TFLite model as a plugin's `init` gets it: read and validate it with
//! the SDK's loader, natively (everything before the loader's first host
//! call). A malformed model is an error, never a panic.
#![no_main]

use gatehouse_sdk::tflite::Model;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Model::inspect(data);
});
