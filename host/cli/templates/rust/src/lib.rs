//! `{{name}}`: a Gatehouse plugin. It scores how bright its input bytes
//! are (their mean, 0-255) and says `dark` or `bright`: replace this with
//! your model (see `gatehouse_sdk::tflite::Model`) and preprocessing.

use gatehouse_sdk::{
    Config, Descriptor, Inference, InputKind, Plugin, PluginError, Stat, export_plugin, log,
    setting,
};

struct Component;

impl Plugin for Component {
    fn describe() -> Descriptor {
        Descriptor {
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Mean of the input bytes (template)".into(),
            input_kinds: vec![InputKind::RawTensor],
            labels: vec!["dark".into(), "bright".into()],
        }
    }

    fn init(config: Config) -> Result<(), PluginError> {
        log::install_panic_hook();
        if let Some(t) = setting(&config, "threshold") {
            t.parse::<f64>()
                .map_err(|_| PluginError::InvalidConfig(format!("threshold={t:?} is not a number")))?;
        }
        log::info("ready");
        Ok(())
    }

    fn process(input: Vec<u8>) -> Result<Inference, PluginError> {
        if input.is_empty() {
            return Err(PluginError::InvalidInput("empty input".into()));
        }
        let mean = input.iter().map(|&b| f64::from(b)).sum::<f64>() / input.len() as f64;
        Ok(Inference {
            label: Some(if mean >= 128.0 { "bright" } else { "dark" }.into()),
            score: Some(mean),
            ..Inference::empty()
        })
    }

    fn stats() -> Vec<Stat> {
        vec![]
    }
}

export_plugin!(Component);
