//! `ic`: CIFAR-10 image classification with the MLPerf Tiny ResNet-8. Takes a
//! PNG or JPEG of any size: centre-square crop, bilinear resize to 32×32,
//! int8 = pixel − 128 (the model takes raw pixel values).

use std::cell::RefCell;

use gatehouse_sdk::tflite::Model;
use gatehouse_sdk::{
    Config, Descriptor, Inference, InputKind, Plugin, PluginError, Stat, export_plugin, log, state,
    vision,
};

static MODEL_BYTES: &[u8] =
    include_bytes!("../../../models/mlperf-tiny/pretrainedResnet_quant.tflite");
const LABELS: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

thread_local! {
    static MODEL: RefCell<Option<Model>> = const { RefCell::new(None) };
}

struct Ic;

impl Plugin for Ic {
    fn describe() -> Descriptor {
        Descriptor {
            name: "ic".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "CIFAR-10 classification (MLPerf Tiny ResNet-8) of a PNG or JPEG".into(),
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

export_plugin!(Ic);
