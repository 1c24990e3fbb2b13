//! What a registry returns for a pull: a reference, the layer sizes its
//! manifest declares, the config's media type and the layers. The registry
//! is not trusted: sizes are checked without overflow, layers are put back
//! together as a bundle or refused, and nothing panics.
#![no_main]

use arbitrary::Arbitrary;
use gatehouse_ota::oci;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Pull {
    reference: String,
    sizes: Vec<i64>,
    config_media_type: String,
    /// Layers by an index into the media types a bundle uses (or none).
    layers: Vec<(u8, Vec<u8>)>,
}

const MEDIA_TYPES: [&str; 6] = [
    "application/wasm",
    "application/vnd.gatehouse.manifest.v1+toml",
    "application/vnd.gatehouse.signature.v1+json",
    "application/vnd.gatehouse.self-test.input.v1",
    "application/vnd.gatehouse.self-test.output.v1",
    "application/octet-stream",
];

fuzz_target!(|pull: Pull| {
    let _ = oci::parse_reference(&pull.reference);
    let _ = oci::check_layer_sizes(&pull.reference, pull.sizes.iter().copied());
    let config = if pull.config_media_type.is_empty() {
        oci::CONFIG_MEDIA_TYPE.to_string()
    } else {
        pull.config_media_type
    };
    let layers = pull.layers.into_iter().map(|(m, data)| {
        (
            MEDIA_TYPES[m as usize % MEDIA_TYPES.len()].to_string(),
            data,
        )
    });
    if let Ok(bytes) = oci::assemble(&pull.reference, &config, layers) {
        gatehouse_ota::bundle::Bundle::parse(&bytes).expect("an assembled bundle parses");
    }
});
