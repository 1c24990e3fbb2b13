//! `gatehouse run` with the kws plugin on the sample clips.

mod common;
use common::{gatehouse, root, stderr};
use serde_json::Value;

/// Clips where the shared expected.json's top-1 differs from what its own
/// documented pipeline gives when run with TensorFlow's ops and the TFLite
/// reference interpreter (tests/fixtures/kws_reference/README.md). Asserted
/// exactly, so any change in our pipeline shows up here.
const FIXTURE_DISAGREES: [&str; 3] = [
    "synth_go_en-us.wav",
    "synth_on_en-us.wav",
    "synth_stop_en-us.wav",
];

#[test]
fn every_clip_gets_the_reference_pipelines_label() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/data/kws/expected.json")).unwrap(),
    )
    .unwrap();
    let regenerated: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/kws_reference/index.json")).unwrap(),
    )
    .unwrap();
    let clips: Vec<(String, String)> = expected["clips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["file"].as_str().unwrap().to_string(),
                c["reference_top1"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut args = vec![
        "run".to_string(),
        "target/plugins/kws.wasm".into(),
        "--input".into(),
    ];
    args.extend(clips.iter().map(|(f, _)| format!("examples/data/kws/{f}")));
    let o = gatehouse(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), clips.len());
    let mut disagree = Vec::new();
    let mut worst = 0;
    for ((file, reference_top1), line) in clips.iter().zip(&lines) {
        assert_eq!(line["plugin"], "kws");
        assert_eq!(line["version"], "0.1.0");
        assert_eq!(line["input"], file.as_str());
        let label = line["label"].as_str().unwrap();
        assert_eq!(line["scores"].as_object().unwrap().len(), 12);
        // Our label is the documented pipeline's, on every clip.
        assert_eq!(label, regenerated[file]["top1"].as_str().unwrap(), "{file}");
        // Scores stay close to the reference interpreter's on TF's features
        // (features may differ by 1 LSB on silent frames).
        let want: Vec<i64> = regenerated[file]["output_int8"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let got: Vec<f64> = line["scores"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (g, w) in got.iter().zip(&want) {
            let gq = (g * 256.0).round() as i64 - 128;
            worst = worst.max((gq - w).abs());
        }
        if label != reference_top1 {
            disagree.push(file.as_str());
        }
    }
    eprintln!("largest int8 score difference from the reference: {worst}");
    assert!(
        worst <= 4,
        "scores drift from the reference interpreter by {worst} LSB"
    );
    disagree.sort();
    assert_eq!(
        disagree, FIXTURE_DISAGREES,
        "clips whose label differs from expected.json"
    );
}

#[test]
fn a_non_wav_input_is_rejected_by_name() {
    let o = gatehouse(&[
        "run",
        "target/plugins/kws.wasm",
        "--input",
        "examples/data/kws/expected.json",
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("plugin kws@0.1.0: rejected the input: not a RIFF/WAVE file"),
        "{e}"
    );
}
