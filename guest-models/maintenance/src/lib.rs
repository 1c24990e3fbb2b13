//! `maintenance`: predictive maintenance of a motor from a stream of
//! condition-monitoring rows, one a minute, of 12 channels (vibration RMS on
//! three axes, 1x and 2x amplitudes, bearing-fault envelope bands, kurtosis,
//! bearing and winding temperature, current and its fault sideband; the list
//! and units are in `train/simulate.py`).
//!
//! Input: rows of 12 little-endian float32 values (48 bytes each), any
//! number per message; or the same as JSON, an array of numbers whose length
//! is a multiple of 12 (`[0.9, 1.1, ...]` or `[[...], [...]]`; see
//! `gatehouse_sdk::rows::parse`). The plugin keeps the stream's last 32 rows
//! between calls; once it has 32, every row runs the model over the newest
//! 32 and the result is the last row's:
//! - `label` and `scores`: the health state, `healthy` (no failure within
//!   24 h), `degrading` (within 24 h) or `critical` (within 6 h);
//! - `score`: the hours to failure the model estimates (0 to 48; 48 means
//!   "48 or more");
//! - `events`: `alarm` when p(degrading) + p(critical) has been at least 0.5
//!   for 5 rows in a row, `alarm-cleared` when it has been below 0.3 for 30
//!   rows in a row (each reported once); `t_s` counts the stream's rows as
//!   minutes.
//!
//! Models (setting `model`): `lstm-attention` (default: an LSTM with
//! dot-product self-attention) or `tcn` (dilated causal convolutions); both
//! int8, trained by `train/train.py` on simulated runs, whose README gives
//! their accuracy and alarm lead time.

use std::cell::RefCell;

use gatehouse_sdk::rows::{self, Window};
use gatehouse_sdk::tflite::Model;
use gatehouse_sdk::{
    Config, Descriptor, Event, Inference, InputKind, Plugin, PluginError, Stat, export_plugin, log,
    state,
};

static LSTM_ATTENTION: &[u8] = include_bytes!("../model/lstm_attention.tflite");
static TCN: &[u8] = include_bytes!("../model/tcn.tflite");
/// The training set's mean and deviation per channel: 24 little-endian f32.
static NORM: &[u8] = include_bytes!("../model/norm.bin");

const CHANNELS: usize = 12;
const WINDOW: usize = 32;
const LABELS: [&str; 3] = ["healthy", "degrading", "critical"];
/// The model's fourth output is the hours to failure over this.
const RUL_CAP_H: f32 = 48.0;
const ALARM_ON: f32 = 0.5;
const ALARM_ON_ROWS: u32 = 5;
const ALARM_OFF: f32 = 0.3;
const ALARM_OFF_ROWS: u32 = 30;

struct Stream {
    model: Model,
    window: Window,
    alarm: bool,
    above: u32,
    below: u32,
    alarms: u64,
}

/// One full window's result: the model's four outputs and the alarm event
/// it caused, if any.
struct Step {
    out: Vec<f32>,
    event: Option<Event>,
}

impl Stream {
    fn push_row(&mut self, row: &[f32]) -> Result<Option<Step>, PluginError> {
        if !self.window.push(row) {
            return Ok(None);
        }
        let out = rows::f32s(&gatehouse_sdk::run_model(
            &self.model,
            &self.window.input(),
        )?);
        let p = rows::softmax(&out[..3]);
        let at_risk = p[1] + p[2];
        self.above = if at_risk >= ALARM_ON {
            self.above + 1
        } else {
            0
        };
        self.below = if at_risk < ALARM_OFF {
            self.below + 1
        } else {
            0
        };
        let t_s = self.window.seen() as f64 * 60.0;
        let event = if !self.alarm && self.above >= ALARM_ON_ROWS {
            self.alarm = true;
            self.alarms += 1;
            Some(Event {
                t_s,
                label: "alarm".into(),
                score: at_risk,
            })
        } else if self.alarm && self.below >= ALARM_OFF_ROWS {
            self.alarm = false;
            Some(Event {
                t_s,
                label: "alarm-cleared".into(),
                score: at_risk,
            })
        } else {
            None
        };
        Ok(Some(Step { out, event }))
    }
}

thread_local! {
    static STREAM: RefCell<Option<Stream>> = const { RefCell::new(None) };
}

struct Maintenance;

impl Plugin for Maintenance {
    fn describe() -> Descriptor {
        Descriptor {
            name: "maintenance".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Motor health and hours to failure from 12 condition-monitoring channels a minute (LSTM + attention, or TCN)".into(),
            input_kinds: vec![InputKind::RawTensor],
            labels: LABELS.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn init(config: Config) -> Result<(), PluginError> {
        log::install_panic_hook();
        let bytes = match gatehouse_sdk::setting(&config, "model").unwrap_or("lstm-attention") {
            "lstm-attention" => LSTM_ATTENTION,
            "tcn" => TCN,
            other => {
                return Err(PluginError::InvalidConfig(format!(
                    "model={other:?}: expected lstm-attention or tcn"
                )));
            }
        };
        let model = gatehouse_sdk::load_model(bytes)?;
        if model.input().byte_len != WINDOW * CHANNELS * 4 || model.output().byte_len != 16 {
            return Err(PluginError::InvalidConfig(format!(
                "embedded model has input {:?} and output {:?}",
                model.input().shape,
                model.output().shape
            )));
        }
        let window = Window::new(CHANNELS, WINDOW, NORM)?;
        state::set(
            &STREAM,
            Stream {
                model,
                window,
                alarm: false,
                above: 0,
                below: 0,
                alarms: 0,
            },
        );
        Ok(())
    }

    fn process(input: Vec<u8>) -> Result<Inference, PluginError> {
        let values = rows::parse(&input, CHANNELS)?;
        state::with(&STREAM, |s| {
            let mut last = None;
            let mut events = Vec::new();
            for row in values.chunks_exact(CHANNELS) {
                if let Some(w) = s.push_row(row)? {
                    events.extend(w.event);
                    last = Some(w.out);
                }
            }
            let Some(out) = last else {
                return Ok(Inference::empty());
            };
            let p = rows::softmax(&out[..3]);
            let best = rows::argmax(&p);
            Ok(Inference {
                label: Some(LABELS[best].into()),
                scores: LABELS
                    .iter()
                    .zip(&p)
                    .map(|(l, &v)| gatehouse_sdk::LabelScore {
                        label: l.to_string(),
                        score: v,
                    })
                    .collect(),
                score: Some((out[3].clamp(0.0, 1.0) * RUL_CAP_H) as f64),
                events,
                output: Some(out.iter().flat_map(|v| v.to_le_bytes()).collect()),
            })
        })
    }

    fn stats() -> Vec<Stat> {
        state::peek(&STREAM, |s| {
            let mut v = gatehouse_sdk::arena_stat(&s.model);
            v.push(Stat {
                name: "rows".into(),
                value: s.window.seen(),
            });
            v.push(Stat {
                name: "alarms".into(),
                value: s.alarms,
            });
            v
        })
    }
}

export_plugin!(Maintenance);
