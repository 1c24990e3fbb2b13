//! `gatehouse run` with the kws plugin on the sample clips.

use crate::common::{gatehouse, root, stderr};
use serde_json::Value;

/// Score drift allowed against the reference interpreter. Our features are
/// within ±1 LSB of TensorFlow's (`guest-models/sdk/tests/kws_features.rs`)
/// and the model is bit-exact on them (the conformance suite), so scores can
/// only move by what a 1-LSB feature change does to the output.
const SCORE_LSB: i64 = 4;

/// `examples/data/kws/expected.json` is the MLPerf Tiny evaluation pipeline's
/// output (no time shift, no noise); `gatehouse run` must give its label on
/// every clip, and its int8 scores within [`SCORE_LSB`].
#[test]
fn every_clip_gets_the_reference_pipelines_label() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/data/kws/expected.json")).unwrap(),
    )
    .unwrap();
    let labels: Vec<&str> = expected["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let clips = expected["clips"].as_array().unwrap();
    assert_eq!(clips.len(), 11);
    let mut args = vec![
        "run".to_string(),
        "target/plugins/kws.wasm".into(),
        "--input".into(),
    ];
    args.extend(
        clips
            .iter()
            .map(|c| format!("examples/data/kws/{}", c["file"].as_str().unwrap())),
    );
    let o = gatehouse(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), clips.len());
    let mut worst = 0;
    for (clip, line) in clips.iter().zip(&lines) {
        let file = clip["file"].as_str().unwrap();
        assert_eq!(line["plugin"], "kws");
        assert_eq!(line["version"], "0.1.0");
        assert_eq!(line["input"], file);
        assert_eq!(
            line["label"].as_str().unwrap(),
            clip["reference_top1"].as_str().unwrap(),
            "{file}"
        );
        let want: Vec<i64> = clip["reference_output_int8"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let scores = line["scores"].as_object().unwrap();
        assert_eq!(scores.len(), labels.len());
        for (label, w) in labels.iter().zip(&want) {
            let g = scores[*label].as_f64().unwrap();
            let gq = (g * 256.0).round() as i64 - 128;
            worst = worst.max((gq - w).abs());
        }
    }
    eprintln!("largest int8 score difference from expected.json: {worst} LSB");
    assert!(
        worst <= SCORE_LSB,
        "scores drift from the reference by {worst} LSB"
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
