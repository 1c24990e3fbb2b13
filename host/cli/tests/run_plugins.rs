//! `gatehouse run` with the vision, anomaly and wake-word plugins against the
//! reference pipeline's expected results in examples/data/.

use crate::common::{gatehouse, root, stderr};
use serde_json::Value;

fn run(args: &[&str]) -> Vec<Value> {
    let o = gatehouse(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn expected(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join(rel)).unwrap()).unwrap()
}

#[test]
fn images_get_the_reference_top1() {
    let exp = expected("examples/data/images/expected.json");
    for plugin in ["vww", "ic"] {
        for (stem, want) in exp.as_object().unwrap() {
            let file = format!("examples/data/images/{}", want["file"].as_str().unwrap());
            let out = run(&[
                "run",
                &format!("target/plugins/{plugin}.wasm"),
                "--input",
                &file,
            ]);
            let label = out[0]["label"].as_str().unwrap();
            assert_eq!(
                label,
                want[plugin]["top1"].as_str().unwrap(),
                "{plugin} on {stem}"
            );
            // The preprocessing is the reference's byte for byte (Pillow's
            // bilinear resize) and the kernels are bit-exact, so the top
            // probability and its margin over the second are the
            // reference's exactly, in the output's steps of 1/256.
            let steps = |p: f64| (p * 256.0).round() as i64;
            let mut scores: Vec<f64> = out[0]["scores"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_f64().unwrap())
                .collect();
            scores.sort_by(|a, b| b.total_cmp(a));
            let p_ref = want[plugin]["p1"].as_f64().unwrap();
            let margin_ref = want[plugin]["margin"].as_f64().unwrap();
            assert_eq!(
                steps(scores[0]),
                steps(p_ref),
                "{plugin} on {stem}: p1 {} vs {p_ref}",
                scores[0]
            );
            assert_eq!(
                steps(scores[0] - scores[1]),
                steps(margin_ref),
                "{plugin} on {stem}: margin vs {margin_ref}"
            );
        }
    }
}

#[test]
fn anomaly_score_of_the_log_mel_file_is_the_reference_to_float32_precision() {
    let want = expected("examples/data/anomaly/expected.json")["reference_int8_score"]
        .as_f64()
        .unwrap();
    let out = run(&[
        "run",
        "target/plugins/anomaly.wasm",
        "--input",
        "examples/data/anomaly/normal_id_01_00000000_hist_librosa.bin",
    ]);
    let score = out[0]["score"].as_f64().unwrap();
    // The reference mean is a float32 (10.26521015); ours, of the same
    // bit-exact outputs, is summed in f64 (10.26520947, 6.6e-8 apart):
    // within one float32 step.
    assert!(
        (score - want).abs() / want < f32::EPSILON as f64,
        "score {score} vs {want}"
    );
    assert!(
        out[0].get("label").is_none() && out[0].get("scores").is_none(),
        "{}",
        out[0]
    );
}

/// The MLPerf Tiny runner's scoring (`calc_detection_stats`): a detection
/// within [start, stop + 2 s] of a wake-word window is a true positive; other
/// detections are false positives, debounced over 1 s.
fn score_detections(events: &[f64], windows: &[(f64, f64)]) -> (usize, usize, usize) {
    let hit = |t: f64| windows.iter().any(|&(a, b)| t >= a && t <= b + 2.0);
    let tp = windows
        .iter()
        .filter(|&&(a, b)| events.iter().any(|&t| t >= a && t <= b + 2.0))
        .count();
    let mut fp = 0;
    let mut last_fp: Option<f64> = None;
    for &t in events.iter().filter(|&&t| !hit(t)) {
        if last_fp.is_none_or(|l| t - l > 1.0) {
            fp += 1;
        }
        last_fp = Some(t);
    }
    (tp, windows.len() - tp, fp)
}

fn event_times(lines: &[Value]) -> Vec<f64> {
    lines
        .iter()
        .flat_map(|l| l["events"].as_array().cloned().unwrap_or_default())
        .map(|e| e["t_s"].as_f64().unwrap())
        .collect()
}

#[test]
fn the_wake_word_stream_scores_like_the_reference() {
    let exp = expected("examples/data/kws/short_wav_easy10s.expected.json");
    let windows: Vec<(f64, f64)> = exp["truth_windows_s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w[0].as_f64().unwrap(), w[1].as_f64().unwrap()))
        .collect();
    let r = &exp["reference_result"];
    let want = (
        r["true_detections"].as_u64().unwrap() as usize,
        r["false_rejections"].as_u64().unwrap() as usize,
        r["false_detections"].as_u64().unwrap() as usize,
    );
    assert_eq!(want, (2, 1, 0));
    // Every window the reference detects, from its runs of consecutive
    // detecting windows (one per 512-sample hop).
    let hop = 512.0 / 16000.0;
    let detecting: Vec<f64> = exp["reference_detection_runs_t_end_s"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|run| {
            let (a, b) = (run[0].as_f64().unwrap(), run[1].as_f64().unwrap());
            let n = ((b - a) / hop).round() as usize;
            (0..=n).map(move |k| a + k as f64 * hop)
        })
        .collect();
    // With the debounce off the plugin reports exactly those windows.
    let every = event_times(&run(&[
        "run",
        "target/plugins/wakeword.wasm",
        "--set",
        "debounce-ms=0",
        "--input",
        "examples/data/kws/short_wav_easy10s.wav",
    ]));
    assert_eq!(every.len(), detecting.len(), "{every:?}");
    for (g, w) in every.iter().zip(&detecting) {
        assert!((g - w).abs() < 1e-9, "{every:?} vs {detecting:?}");
    }
    // By default each utterance is one event: the evaluation's debounce
    // (1 s from a reported detection) applied to those windows.
    let mut debounced: Vec<f64> = Vec::new();
    for &t in &detecting {
        if debounced.last().is_none_or(|&l| t - l >= 1.0 - 1e-9) {
            debounced.push(t);
        }
    }
    let whole = event_times(&run(&[
        "run",
        "target/plugins/wakeword.wasm",
        "--input",
        "examples/data/kws/short_wav_easy10s.wav",
    ]));
    assert_eq!(whole.len(), debounced.len(), "{whole:?}");
    assert_eq!(whole.len(), 2, "one event per detected marvin: {whole:?}");
    for (g, w) in whole.iter().zip(&debounced) {
        assert!((g - w).abs() < 1e-9, "{whole:?} vs {debounced:?}");
    }
    assert_eq!(score_detections(&whole, &windows), want, "events {whole:?}");
    // Fed in pieces of odd sizes, the plugin keeps its state and finds the same events.
    for chunk in ["1000", "4097", "32768"] {
        let pieces = event_times(&run(&[
            "run",
            "target/plugins/wakeword.wasm",
            "--chunk",
            chunk,
            "--input",
            "examples/data/kws/short_wav_easy10s.wav",
        ]));
        assert_eq!(pieces, whole, "chunks of {chunk}");
    }
}

#[test]
fn inputs_of_the_wrong_kind_are_refused_by_name() {
    for (plugin, input, msg) in [
        (
            "vww",
            "examples/data/kws/synth_yes_en-us.wav",
            "not a PNG or JPEG image",
        ),
        (
            "anomaly",
            "examples/data/images/coffee.png",
            "expected a WAV or 102400 bytes",
        ),
        (
            "wakeword",
            "examples/data/images/coffee.png",
            "not a RIFF/WAVE file",
        ),
    ] {
        let o = gatehouse(&[
            "run",
            &format!("target/plugins/{plugin}.wasm"),
            "--input",
            input,
        ]);
        assert!(!o.status.success());
        let e = stderr(&o);
        assert!(
            e.contains(&format!("plugin {plugin}@0.1.0: rejected the input")) && e.contains(msg),
            "{plugin}: {e}"
        );
    }
}

#[test]
fn anomaly_on_a_wav_scores_like_its_librosa_log_mel() {
    let dir = "tests/fixtures/anomaly_wav";
    let wav = run(&[
        "run",
        "target/plugins/anomaly.wasm",
        "--input",
        &format!("{dir}/machine.wav"),
    ]);
    let bin = run(&[
        "run",
        "target/plugins/anomaly.wasm",
        "--input",
        &format!("{dir}/machine_logmel.bin"),
    ]);
    let (a, b) = (
        wav[0]["score"].as_f64().unwrap(),
        bin[0]["score"].as_f64().unwrap(),
    );
    assert!(a.is_finite() && a > 0.0);
    // Measured 1.9e-9 apart: the plugin's own log-mel of the WAV against
    // librosa's features of the same clip.
    assert!(
        (a - b).abs() / b < 1e-7,
        "WAV path {a} vs librosa features {b}"
    );
    // Too short a clip is refused with the reason.
    let short = crate::common::tmp("short.wav");
    let mut bytes = std::fs::read(root().join(format!("{dir}/machine.wav"))).unwrap();
    bytes.truncate(44 + 2 * 16000);
    std::fs::write(&short, bytes).unwrap();
    let o = gatehouse(&[
        "run",
        "target/plugins/anomaly.wasm",
        "--input",
        short.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("about 8 s"),
        "{}",
        stderr(&o)
    );
}

/// `run --stats` line `key: N [of M]`, as a number.
fn stat(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[test]
fn every_plugin_reports_its_whole_memory() {
    let wav = "examples/data/kws/synth_yes_en-us.wav";
    let png = "examples/data/images/chelsea.png";
    let logmel = "examples/data/anomaly/normal_id_01_00000000_hist_librosa.bin";
    for (plugin, input) in [
        ("kws", wav),
        ("wakeword", wav),
        ("vww", png),
        ("ic", png),
        ("anomaly", logmel),
        ("py-level", wav),
    ] {
        let o = gatehouse(&[
            "run",
            &format!("target/plugins/{plugin}.wasm"),
            "--input",
            input,
            "--stats",
        ]);
        assert!(o.status.success(), "{plugin}: {}", stderr(&o));
        let e = stderr(&o);
        let whole = stat(&e, "instance-bytes").unwrap_or_else(|| panic!("{plugin}: {e}"));
        let tensors = stat(&e, "host-tensor-bytes").unwrap();
        // Guest linear memory (at least one 64 KiB page) plus host
        // tensors, within the default 64 MiB cap on each.
        assert!(
            whole >= tensors + 65536,
            "{plugin}: {whole} < {tensors} + a page"
        );
        assert!(whole < 128 << 20, "{plugin}: {whole}");
        // A model plugin's weights live in host tensors.
        if plugin != "py-level" {
            assert!(tensors > 0, "{plugin}: {e}");
        }
    }
}
