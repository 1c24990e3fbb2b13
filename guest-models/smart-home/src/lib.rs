//! `smart-home`: occupancy and a comfort action for a room's air
//! conditioner, fused from six home sensors sampled once a minute:
//! temperature (degC), relative humidity (%), PIR motion (triggers in the
//! minute), light (lux), CO2 (ppm) and sound level (dBA), in that order.
//!
//! Input: rows of 6 little-endian float32 values (24 bytes each), any
//! number per message, or the same as a JSON array of numbers
//! (`gatehouse_sdk::rows::parse`). The plugin keeps the stream's last 16
//! rows between calls; once it has 16, every row runs the model and the
//! result is the last row's:
//! - `label` and `scores`: the comfort action, `off`, `cool`, `heat` or
//!   `ventilate`;
//! - `score`: the probability that the room is occupied;
//! - `events`: `occupied` or `empty` when the occupancy the model sees has
//!   changed and held for 3 rows, and `action:<name>` when the action has
//!   changed and held for 5 (so the air conditioner is not toggled every
//!   minute); `t_s` counts the stream's rows as minutes.
//!
//! The model (int8, 16 KB) is trained by `train/train.py` on simulated
//! rooms; its README gives the data, the split and the accuracy.

use std::cell::RefCell;

use gatehouse_sdk::rows::{self, Window};
use gatehouse_sdk::tflite::Model;
use gatehouse_sdk::{
    Config, Descriptor, Event, Inference, InputKind, LabelScore, Plugin, PluginError, Stat,
    export_plugin, log, state,
};

static MODEL: &[u8] = include_bytes!("../model/comfort.tflite");
/// The training set's mean and deviation per channel: 12 little-endian f32.
static NORM: &[u8] = include_bytes!("../model/norm.bin");

const CHANNELS: usize = 6;
const WINDOW: usize = 16;
const ACTIONS: [&str; 4] = ["off", "cool", "heat", "ventilate"];
const OCCUPANCY_HOLD: u32 = 3;
const ACTION_HOLD: u32 = 5;

/// A reported state that changes only when a new value has held for
/// `hold` rows in a row.
struct Debounced {
    reported: Option<usize>,
    candidate: usize,
    run: u32,
    hold: u32,
}

impl Debounced {
    fn new(hold: u32) -> Self {
        Debounced {
            reported: None,
            candidate: usize::MAX,
            run: 0,
            hold,
        }
    }

    /// Feed this row's value; the new state when it changes.
    fn feed(&mut self, v: usize) -> Option<usize> {
        if Some(v) == self.reported {
            self.run = 0;
            return None;
        }
        self.run = if v == self.candidate { self.run + 1 } else { 1 };
        self.candidate = v;
        if self.run >= self.hold {
            self.reported = Some(v);
            self.run = 0;
            return Some(v);
        }
        None
    }
}

struct Stream {
    model: Model,
    window: Window,
    occupancy: Debounced,
    action: Debounced,
}

impl Stream {
    /// One row; the model's six outputs once the window is full, and the
    /// events the row caused.
    fn push_row(
        &mut self,
        row: &[f32],
        events: &mut Vec<Event>,
    ) -> Result<Option<Vec<f32>>, PluginError> {
        if !self.window.push(row) {
            return Ok(None);
        }
        let out = rows::f32s(&gatehouse_sdk::run_model(
            &self.model,
            &self.window.input(),
        )?);
        let t_s = self.window.seen() as f64 * 60.0;
        let occupied = rows::softmax(&out[..2]);
        if let Some(o) = self.occupancy.feed(rows::argmax(&occupied)) {
            events.push(Event {
                t_s,
                label: if o == 1 { "occupied" } else { "empty" }.into(),
                score: occupied[o],
            });
        }
        let actions = rows::softmax(&out[2..]);
        if let Some(a) = self.action.feed(rows::argmax(&actions)) {
            events.push(Event {
                t_s,
                label: format!("action:{}", ACTIONS[a]),
                score: actions[a],
            });
        }
        Ok(Some(out))
    }
}

thread_local! {
    static STREAM: RefCell<Option<Stream>> = const { RefCell::new(None) };
}

struct SmartHome;

impl Plugin for SmartHome {
    fn describe() -> Descriptor {
        Descriptor {
            name: "smart-home".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Room occupancy and an air-conditioner action from temperature, humidity, motion, light, CO2 and sound, a row a minute".into(),
            input_kinds: vec![InputKind::RawTensor],
            labels: ACTIONS.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn init(_config: Config) -> Result<(), PluginError> {
        log::install_panic_hook();
        let model = gatehouse_sdk::load_model(MODEL)?;
        if model.input().byte_len != WINDOW * CHANNELS * 4 || model.output().byte_len != 6 * 4 {
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
                occupancy: Debounced::new(OCCUPANCY_HOLD),
                action: Debounced::new(ACTION_HOLD),
            },
        );
        Ok(())
    }

    fn process(input: Vec<u8>) -> Result<Inference, PluginError> {
        let values = rows::parse(&input, CHANNELS)?;
        state::with(&STREAM, |s| {
            let mut events = Vec::new();
            let mut last = None;
            for row in values.chunks_exact(CHANNELS) {
                if let Some(out) = s.push_row(row, &mut events)? {
                    last = Some(out);
                }
            }
            let Some(out) = last else {
                return Ok(Inference::empty());
            };
            let actions = rows::softmax(&out[2..]);
            Ok(Inference {
                label: Some(ACTIONS[rows::argmax(&actions)].into()),
                scores: ACTIONS
                    .iter()
                    .zip(&actions)
                    .map(|(l, &v)| LabelScore {
                        label: l.to_string(),
                        score: v,
                    })
                    .collect(),
                score: Some(rows::softmax(&out[..2])[1] as f64),
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
            v
        })
    }
}

export_plugin!(SmartHome);
