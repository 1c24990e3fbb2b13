//! `anomaly`: machine-condition monitoring with the MLPerf Tiny ToyCar
//! autoencoder. Input: the 200×128 float32 log-mel `.bin` layout, or a
//! 16 kHz WAV whose log-mel is computed here (librosa's recipe, frames
//! 50-249). Output `score`: the mean over the 196 five-frame vectors of the
//! per-vector mean squared reconstruction error. Higher is more anomalous.
//!
//! With the `state` capability it also learns what normal scores like on
//! site and labels each clip `normal` or `anomalous` (see [`baseline`]).

mod baseline;

use std::cell::RefCell;

use gatehouse_sdk::dsp::logmel::{MELS, ToyCarLogMel};
use gatehouse_sdk::tflite::Model;
use gatehouse_sdk::{
    Config, Descriptor, Inference, InputKind, Plugin, PluginError, Stat, export_plugin, log, state,
    wav,
};

static MODEL_BYTES: &[u8] = include_bytes!("../../../models/mlperf-tiny/ad01_int8.tflite");
/// Frames kept from a clip's log-mel, as the reference crops them.
const FIRST_FRAME: usize = 50;
const FRAMES: usize = 200;
/// Frames per model input vector.
const CONTEXT: usize = 5;
const VECTORS: usize = FRAMES - CONTEXT + 1;

thread_local! {
    static MODEL: RefCell<Option<Model>> = const { RefCell::new(None) };
    static BASELINE: RefCell<Option<baseline::Baseline>> = const { RefCell::new(None) };
}

fn number<T: std::str::FromStr>(config: &Config, key: &str, default: T) -> Result<T, PluginError> {
    match gatehouse_sdk::setting(config, key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| PluginError::InvalidConfig(format!("{key}={v:?} is not a number"))),
    }
}

struct Anomaly;

/// The 200×128 log-mel frames of either input kind.
fn log_mel(input: &[u8]) -> Result<Vec<f32>, PluginError> {
    if input.starts_with(b"RIFF") {
        let w = wav::parse(input).map_err(|e| PluginError::InvalidInput(e.to_string()))?;
        if w.sample_rate != 16000 {
            return Err(PluginError::InvalidInput(format!(
                "sample rate {} Hz; this model needs 16000 Hz",
                w.sample_rate
            )));
        }
        let samples: Vec<f64> = w.samples.iter().map(|&s| s as f64 / 32768.0).collect();
        let available = ToyCarLogMel::frame_count(samples.len());
        if available < FIRST_FRAME + FRAMES {
            return Err(PluginError::InvalidInput(format!(
                "{:.2} s of audio gives {available} frames; the model needs frames {FIRST_FRAME}..{} (about 8 s)",
                samples.len() as f64 / 16000.0,
                FIRST_FRAME + FRAMES - 1
            )));
        }
        return Ok(ToyCarLogMel::new()
            .frames(&samples, FIRST_FRAME, FRAMES)
            .into_iter()
            .map(|v| v as f32)
            .collect());
    }
    if input.len() != FRAMES * MELS * 4 {
        return Err(PluginError::InvalidInput(format!(
            "{} bytes: expected a WAV or {} bytes of 200x128 float32 log-mel",
            input.len(),
            FRAMES * MELS * 4
        )));
    }
    let frames: Vec<f32> = input
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if frames.iter().any(|v| !v.is_finite()) {
        return Err(PluginError::InvalidInput(
            "the log-mel holds NaN or infinity".into(),
        ));
    }
    Ok(frames)
}

fn score(model: &Model, frames: &[f32]) -> Result<f64, PluginError> {
    let (qi, qo) = (model.input(), model.output());
    let width = CONTEXT * MELS;
    if qi.byte_len != width || qo.byte_len != width {
        return Err(PluginError::InvalidConfig(format!(
            "embedded model has input {:?}",
            qi.shape
        )));
    }
    // Vector t is frames t..t+4, so it starts at float t·128.
    let mut batch = Vec::with_capacity(VECTORS * width);
    for t in 0..VECTORS {
        for &x in &frames[t * MELS..t * MELS + width] {
            // TFLite Micro's QuantizeFloatToInt8: round half away from zero, saturate.
            let q = (x / qi.scale).round() as i32 + qi.zero_point;
            batch.push(q.clamp(-128, 127) as i8 as u8);
        }
    }
    let out = gatehouse_sdk::run_model(model, &batch)?;
    let mut total = 0.0f64;
    for t in 0..VECTORS {
        let mut se = 0.0f64;
        for (j, &q) in out[t * width..(t + 1) * width].iter().enumerate() {
            let y = (q as i8 as i32 - qo.zero_point) as f32 * qo.scale;
            let d = (y - frames[t * MELS + j]) as f64;
            se += d * d;
        }
        total += se / width as f64;
    }
    Ok(total / VECTORS as f64)
}

impl Plugin for Anomaly {
    fn describe() -> Descriptor {
        Descriptor {
            name: "anomaly".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary:
                "ToyCar anomaly score (MLPerf Tiny autoencoder) of a log-mel .bin or a 16 kHz WAV"
                    .into(),
            input_kinds: vec![InputKind::LogMel, InputKind::Wav],
            labels: vec![],
        }
    }

    fn init(config: Config) -> Result<(), PluginError> {
        log::install_panic_hook();
        state::set(&MODEL, gatehouse_sdk::load_model(MODEL_BYTES)?);
        let learn = number(&config, "baseline-clips", 32u32)?;
        let sigmas = number(&config, "threshold-sigmas", 3.0f64)?;
        let b = baseline::Baseline::open(learn, sigmas);
        if let Some(b) = &b {
            log::info(&format!("baseline: {} of {learn} clips learned", b.clips));
        }
        BASELINE.with(|s| *s.borrow_mut() = b);
        Ok(())
    }

    fn process(input: Vec<u8>) -> Result<Inference, PluginError> {
        let frames = log_mel(&input)?;
        let s = state::with(&MODEL, |m| score(m, &frames))?;
        let verdict = BASELINE.with(|b| b.borrow_mut().as_mut().map(|b| b.observe(s)));
        let (label, scores) = match verdict.transpose().map_err(PluginError::Kernel)? {
            None => (None, vec![]),
            Some(baseline::Verdict::Learning { clips }) => (
                Some("learning".to_string()),
                vec![("baseline-clips".to_string(), clips as f32)],
            ),
            Some(baseline::Verdict::Judged { z, anomalous }) => (
                Some(if anomalous { "anomalous" } else { "normal" }.to_string()),
                vec![("z".to_string(), z as f32)],
            ),
        };
        Ok(Inference {
            score: Some(s),
            label,
            scores: scores
                .into_iter()
                .map(|(label, score)| gatehouse_sdk::LabelScore { label, score })
                .collect(),
            ..Inference::empty()
        })
    }

    fn stats() -> Vec<Stat> {
        state::peek(&MODEL, gatehouse_sdk::arena_stat)
    }
}

export_plugin!(Anomaly);
