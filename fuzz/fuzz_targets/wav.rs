//! WAV files as sensors send them, whole and in pieces: headers that lie
//! about their sizes, truncated chunks, odd formats. The whole-file and the
//! streaming parser must agree on the samples of any file both accept.
#![no_main]

use gatehouse_sdk::wav;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wav::parse_header(data);
    let whole = wav::parse(data);
    let mut stream = wav::WavStream::default();
    let mut streamed = Vec::new();
    let mut ok = true;
    // Pieces of varying sizes, as a chunked upload would come.
    let mut at = 0;
    let mut piece = 1;
    while at < data.len() {
        let end = (at + piece).min(data.len());
        match stream.push(&data[at..end]) {
            Ok(samples) => streamed.extend(samples),
            Err(_) => {
                ok = false;
                break;
            }
        }
        at = end;
        piece = piece * 3 % 97 + 1;
    }
    if let (Ok(w), true) = (whole, ok) {
        if stream.finished() {
            assert!(
                streamed.starts_with(&w.samples) || w.samples.starts_with(&streamed),
                "streamed samples differ from the whole file's"
            );
        }
    }
});
