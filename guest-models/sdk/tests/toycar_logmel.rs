//! The plugin-side ToyCar log-mel against librosa on a synthetic machine
//! recording (tests/fixtures/anomaly_wav/README.md).

use gatehouse_sdk::dsp::logmel::{MELS, ToyCarLogMel};

#[test]
fn logmel_matches_librosa() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/anomaly_wav");
    let wav = gatehouse_sdk::wav::parse(&std::fs::read(dir.join("machine.wav")).expect("wav"))
        .expect("parse");
    let samples: Vec<f64> = wav.samples.iter().map(|&s| s as f64 / 32768.0).collect();
    assert_eq!(ToyCarLogMel::frame_count(samples.len()), 313);
    let ours = ToyCarLogMel::new().frames(&samples, 50, 200);
    let librosa: Vec<f64> = std::fs::read(dir.join("machine_logmel.bin"))
        .expect("bin")
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
        .collect();
    assert_eq!(ours.len(), 200 * MELS);
    let worst = ours
        .iter()
        .zip(&librosa)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    // dB values around -100..0; librosa stores float32 (≈1e-5 dB here).
    assert!(worst < 1e-3, "log-mel differs from librosa by {worst} dB");
}
