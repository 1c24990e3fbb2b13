//! The plugin-side MFCC against TensorFlow's own feature ops, on every KWS
//! sample clip (fixtures made by tests/fixtures/kws_reference/make_reference.py).

use gatehouse_sdk::dsp::mfcc::{KwsMfcc, quantize_truncating};

const SCALE: f64 = 0.5847029089927673;
const ZERO_POINT: i32 = 83;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn mfcc_matches_tensorflow_on_every_clip() {
    let dir = root().join("tests/fixtures/kws_reference");
    let index: String = std::fs::read_to_string(dir.join("index.json")).expect("index.json");
    let clips: Vec<&str> = index
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix('"')?
                .split_once(".wav\"")
                .map(|(s, _)| s)
        })
        .collect();
    assert!(
        clips.len() >= 11,
        "expected the 11 sample clips, found {clips:?}"
    );
    for stem in clips {
        let wav = std::fs::read(root().join(format!("examples/data/kws/{stem}.wav"))).expect("wav");
        let samples = gatehouse_sdk::wav::parse(&wav).expect("parse").samples;
        let ours = KwsMfcc::new().compute(&samples);
        let tf: Vec<f64> = std::fs::read(dir.join(format!("{stem}.mfcc.f32")))
            .expect("mfcc")
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect();
        assert_eq!(ours.len(), tf.len());
        let worst = ours
            .iter()
            .zip(&tf)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        // TF computes in float32; we compute in float64.
        assert!(
            worst < 1e-3,
            "{stem}: features differ from TensorFlow by {worst}"
        );
        // int8: the doc's ±1 LSB (zero coefficients of silent frames sit on a
        // truncation boundary), and only rarely.
        let q = quantize_truncating(&ours, SCALE, ZERO_POINT);
        let tq: Vec<i8> = std::fs::read(dir.join(format!("{stem}.in.i8")))
            .expect("in")
            .into_iter()
            .map(|b| b as i8)
            .collect();
        let off: Vec<i32> = q
            .iter()
            .zip(&tq)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .collect();
        assert!(
            off.iter().all(|&d| d <= 1),
            "{stem}: an int8 feature is more than 1 LSB off"
        );
        let n = off.iter().filter(|&&d| d != 0).count();
        assert!(
            n * 10 < q.len(),
            "{stem}: {n} of {} int8 features differ",
            q.len()
        );
    }
}
