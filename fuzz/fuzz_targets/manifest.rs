//! A manifest's TOML, as a vendor signs it: parse, and if it parses, print
//! and parse again to the same manifest.
#![no_main]

use gatehouse_ota::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Manifest::parse(text) else {
        return;
    };
    let again = Manifest::parse(&m.to_toml()).expect("a printed manifest parses");
    assert_eq!(again.id(), m.id());
});
