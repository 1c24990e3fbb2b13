//! A bundle as the admin API or a registry hands it over: parse it, read
//! its signature and manifest, and write it back. Nothing may panic, and a
//! bundle that parses must survive the round trip unchanged.
#![no_main]

use gatehouse_ota::bundle::Bundle;
use gatehouse_ota::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = Bundle::parse(data) else {
        return;
    };
    let _ = bundle.signature();
    if let Ok(text) = std::str::from_utf8(bundle.manifest_bytes()) {
        let _ = Manifest::parse(text);
    }
    let bytes = bundle.to_bytes().expect("a parsed bundle writes back");
    let again = Bundle::parse(&bytes).expect("a written bundle parses");
    assert!(
        again.entries().eq(bundle.entries()),
        "the round trip changed the entries"
    );
});
