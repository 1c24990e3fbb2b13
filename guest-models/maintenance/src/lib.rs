//! `maintenance`: predictive maintenance of a motor from a stream of
//! condition-monitoring rows, one a minute, of 12 channels (vibration RMS on
//! three axes, 1x and 2x amplitudes, bearing-fault envelope bands, kurtosis,
//! bearing and winding temperature, current and its fault sideband; the list
//! and units are in `train/simulate.py`).
//!
//! Input: rows of 12 little-endian float32 values (48 bytes each), any
//! number per message; or the same as JSON, an array of numbers whose length
//! is a multiple of 12 (`[0.9, 1.1, ...]` or `[[...], [...]]`), told apart
//! by being printable ASCII that starts with `[`. The plugin
//! keeps the stream's last 32 rows between calls; once it has 32, every row
//! runs the model over the newest 32 and the result is the last row's:
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
use std::collections::VecDeque;

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
    mean: [f32; CHANNELS],
    std: [f32; CHANNELS],
    /// The newest rows, normalized, as the model's float32 input bytes.
    rows: VecDeque<[u8; CHANNELS * 4]>,
    /// Rows seen in this stream.
    seen: u64,
    alarm: bool,
    above: u32,
    below: u32,
    alarms: u64,
}

/// One full window's result: the model's four outputs and the alarm event
/// it caused, if any.
struct Window {
    out: Vec<f32>,
    event: Option<Event>,
}

impl Stream {
    fn push_row(&mut self, row: &[f32]) -> Result<Option<Window>, PluginError> {
        if let Some(bad) = row.iter().position(|v| !v.is_finite()) {
            return Err(PluginError::InvalidInput(format!(
                "row {}: channel {bad} is not a finite number",
                self.seen
            )));
        }
        let mut bytes = [0u8; CHANNELS * 4];
        for (c, (b, &v)) in bytes.chunks_exact_mut(4).zip(row).enumerate() {
            b.copy_from_slice(&((v - self.mean[c]) / self.std[c]).to_le_bytes());
        }
        if self.rows.len() == WINDOW {
            self.rows.pop_front();
        }
        self.rows.push_back(bytes);
        self.seen += 1;
        if self.rows.len() < WINDOW {
            return Ok(None);
        }
        let input: Vec<u8> = self.rows.iter().flatten().copied().collect();
        let out = gatehouse_sdk::run_model(&self.model, &input)?;
        let out: Vec<f32> = out
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let p = softmax(&out[..3]);
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
        let t_s = self.seen as f64 * 60.0;
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
        Ok(Some(Window { out, event }))
    }
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// The message's values: a JSON array of numbers when the message is
/// printable ASCII starting with `[`, else raw little-endian float32. (A raw
/// row is never all printable: that needs every value positive and between
/// about 1e-19 and 3e38, and the current sideband is in negative dB.)
fn values(input: &[u8]) -> Result<Vec<f32>, PluginError> {
    let text = input.trim_ascii();
    let json = text.first() == Some(&b'[')
        && text
            .iter()
            .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if json {
        let s = std::str::from_utf8(text)
            .map_err(|_| PluginError::InvalidInput("JSON input is not UTF-8".into()))?;
        let flat: String = s.chars().filter(|c| !matches!(c, '[' | ']')).collect();
        return flat
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                t.parse::<f32>()
                    .map_err(|_| PluginError::InvalidInput(format!("{t:?} is not a number")))
            })
            .collect();
    }
    if !input.len().is_multiple_of(4) {
        return Err(PluginError::InvalidInput(format!(
            "{} bytes are not whole float32 values (rows of {CHANNELS} little-endian f32)",
            input.len()
        )));
    }
    Ok(input
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
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
        let norm: Vec<f32> = NORM
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let (mut mean, mut std) = ([0f32; CHANNELS], [0f32; CHANNELS]);
        if norm.len() != 2 * CHANNELS || norm[CHANNELS..].iter().any(|&s| s <= 0.0) {
            return Err(PluginError::InvalidConfig(
                "embedded normalization is not 12 means and 12 positive deviations".into(),
            ));
        }
        mean.copy_from_slice(&norm[..CHANNELS]);
        std.copy_from_slice(&norm[CHANNELS..]);
        state::set(
            &STREAM,
            Stream {
                model,
                mean,
                std,
                rows: VecDeque::with_capacity(WINDOW),
                seen: 0,
                alarm: false,
                above: 0,
                below: 0,
                alarms: 0,
            },
        );
        Ok(())
    }

    fn process(input: Vec<u8>) -> Result<Inference, PluginError> {
        let values = values(&input)?;
        if values.is_empty() || !values.len().is_multiple_of(CHANNELS) {
            return Err(PluginError::InvalidInput(format!(
                "{} values are not whole rows of {CHANNELS} channels",
                values.len()
            )));
        }
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
            let p = softmax(&out[..3]);
            let best = (0..3).fold(0, |b, i| if p[i] > p[b] { i } else { b });
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
                value: s.seen,
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
