//! `vww`: visual wake words (person detection) with the MLPerf Tiny
//! MobileNetV1. Takes a PNG or JPEG of any size: centre-square crop, bilinear
//! resize to 96×96, int8 = pixel − 128.

use std::cell::RefCell;

use gatehouse_sdk::tflite::Model;
use gatehouse_sdk::{
    Config, Descriptor, Inference, InputKind, Plugin, PluginError, Stat, export_plugin, log, state,
    vision,
};

static MODEL_BYTES: &[u8] = include_bytes!("../../../models/mlperf-tiny/vww_96_int8.tflite");
const LABELS: [&str; 2] = ["notperson", "person"];

thread_local! {
    static MODEL: RefCell<Option<Model>> = const { RefCell::new(None) };
}

struct Vww;

impl Plugin for Vww {
    fn describe() -> Descriptor {
        Descriptor {
            name: "vww".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Person detection (MLPerf Tiny visual wake words) on a PNG or JPEG".into(),
            input_kinds: vec![InputKind::Image],
            labels: LABELS.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn init(_config: Config) -> Result<(), PluginError> {
        log::install_panic_hook();
        state::set(&MODEL, gatehouse_sdk::load_model(MODEL_BYTES)?);
        Ok(())
    }

    fn process(input: Vec<u8>) -> Result<Inference, PluginError> {
        state::with(&MODEL, |m| vision::classify(m, &LABELS, &input))
    }

    fn stats() -> Vec<Stat> {
        state::peek(&MODEL, gatehouse_sdk::arena_stat)
    }
}

export_plugin!(Vww);
