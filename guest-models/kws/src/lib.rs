//! `kws`: keyword spotting with the MLPerf Tiny DS-CNN. Takes a 16 kHz mono
//! WAV, computes the reference MFCCs in the plugin, and runs the int8 model
//! on the host's kernels.

use std::cell::RefCell;

use gatehouse_sdk::dsp::mfcc::{self, KwsMfcc};
use gatehouse_sdk::tflite::{LoadOptions, Model};
use gatehouse_sdk::{
    Config, Descriptor, Inference, InputKind, Plugin, PluginError, Stat, export_plugin, log, wav,
};

/// The model, embedded: a plugin is one self-contained artifact.
static MODEL_BYTES: &[u8] = include_bytes!("../../../models/mlperf-tiny/kws_ref_model.tflite");

const LABELS: [&str; 12] = [
    "down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "silence", "unknown",
];

/// The `second-build` feature makes the same plugin a different build and
/// version (0.1.1), so that swap tests swap between two real builds.
const VERSION: &str = if cfg!(feature = "second-build") {
    "0.1.1"
} else {
    env!("CARGO_PKG_VERSION")
};

struct Kws;

struct State {
    model: Model,
    mfcc: KwsMfcc,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

impl Plugin for Kws {
    fn describe() -> Descriptor {
        Descriptor {
            name: "kws".into(),
            version: VERSION.into(),
            summary: "Keyword spotting (MLPerf Tiny DS-CNN) on 1 s of 16 kHz mono audio".into(),
            input_kinds: vec![InputKind::Wav],
            labels: LABELS.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn init(_config: Config) -> Result<(), PluginError> {
        log::install_panic_hook();
        let model = Model::load(MODEL_BYTES, LoadOptions::default())
            .map_err(|e| PluginError::InvalidConfig(e.to_string()))?;
        let (i, o) = (model.input(), model.output());
        if i.byte_len != mfcc::FRAMES * mfcc::COEFFS || o.byte_len != LABELS.len() {
            return Err(PluginError::InvalidConfig(format!(
                "embedded model has input {:?} and output {:?}",
                i.shape, o.shape
            )));
        }
        STATE.with(|s| {
            *s.borrow_mut() = Some(State {
                model,
                mfcc: KwsMfcc::new(),
            })
        });
        Ok(())
    }

    fn process(input: Vec<u8>) -> Result<Inference, PluginError> {
        let wav = wav::parse(&input).map_err(|e| PluginError::InvalidInput(e.to_string()))?;
        if wav.sample_rate != mfcc::SAMPLE_RATE {
            return Err(PluginError::InvalidInput(format!(
                "sample rate {} Hz; this model needs {} Hz",
                wav.sample_rate,
                mfcc::SAMPLE_RATE
            )));
        }
        if wav.samples.len() > mfcc::CLIP {
            log::debug(&format!(
                "clip of {} samples; using the first {}",
                wav.samples.len(),
                mfcc::CLIP
            ));
        }
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            let st = s.as_mut().ok_or(PluginError::NotInitialized)?;
            let features = st.mfcc.compute(&wav.samples);
            let q = mfcc::quantize_truncating(
                &features,
                st.model.input().scale as f64,
                st.model.input().zero_point,
            );
            let bytes: Vec<u8> = q.iter().map(|&v| v as u8).collect();
            let out = st
                .model
                .invoke(&bytes)
                .map_err(|e| PluginError::Kernel(e.message()))?;
            let probs: Vec<i8> = out.iter().map(|&b| b as i8).collect();
            Ok(Inference::classification(&LABELS, &probs))
        })
    }

    fn stats() -> Vec<Stat> {
        STATE.with(|s| match s.borrow().as_ref() {
            Some(st) => vec![Stat {
                name: "arena-peak-bytes".into(),
                value: st.model.arena_bytes() as u64,
            }],
            None => vec![],
        })
    }
}

export_plugin!(Kws);
