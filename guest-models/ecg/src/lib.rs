//! `ecg`: beat-by-beat arrhythmia classification of one ECG lead (MLII),
//! sampled at 360 Hz, in millivolts.
//!
//! Input: samples as little-endian float32 (4 bytes each), any number per
//! message, or the same as a JSON array of numbers
//! (`gatehouse_sdk::rows::parse`). The plugin does the signal work itself
//! and keeps it per stream across messages (`pipeline.rs`): band-pass
//! filtering, QRS detection and a 256-sample window around each R peak.
//! Each beat whose window completed in a message is classified, and the
//! message's result holds them all:
//! - `events`: one per beat, `N` (normal) or `A` (atrial premature), at its
//!   R peak's time (`t_s`, from the stream's first sample) with the class's
//!   probability;
//! - `label`, `scores`, `score`: the last beat's class, both classes'
//!   probabilities, and p(A);
//! - `output`: the model's two float32 logits per beat, in order.
//!
//! A message that completes no beat has no result. The detector learns the
//! signal level in the first 2 s; a beat is reported at most 220 ms after
//! its R peak. The model (int8, 37 KB) is trained by
//! `train/train.py` on MIT-BIH record 100; its README gives the split and
//! the per-class precision and recall.

mod pipeline;

use std::cell::RefCell;
use std::collections::VecDeque;

use gatehouse_sdk::rows;
use gatehouse_sdk::tflite::Model;
use gatehouse_sdk::{
    Config, Descriptor, Event, Inference, InputKind, LabelScore, Plugin, PluginError, Stat,
    export_plugin, log, state,
};
use pipeline::{Beat, Pipeline, WINDOW};

static MODEL: &[u8] = include_bytes!("../model/beats.tflite");

const FS: f64 = 360.0;
const CLASSES: [&str; 2] = ["N", "A"];
/// Beats the heart rate is averaged over.
const RATE_BEATS: usize = 8;

struct Stream {
    model: Model,
    pipeline: Pipeline,
    beats: u64,
    per_class: [u64; 2],
    /// The latest R peaks, for the heart rate.
    recent: VecDeque<u64>,
}

impl Stream {
    /// The beat's logits, the probabilities and its class.
    fn classify(&mut self, beat: &Beat) -> Result<(Vec<f32>, Vec<f32>, usize), PluginError> {
        let input: Vec<u8> = beat.window.iter().flat_map(|v| v.to_le_bytes()).collect();
        let out = rows::f32s(&gatehouse_sdk::run_model(&self.model, &input)?);
        let p = rows::softmax(&out);
        let class = rows::argmax(&p);
        self.beats += 1;
        self.per_class[class] += 1;
        if self.recent.len() == RATE_BEATS {
            self.recent.pop_front();
        }
        self.recent.push_back(beat.r);
        Ok((out, p, class))
    }

    /// Beats a minute over the last few RR intervals.
    fn heart_rate(&self) -> u64 {
        match (self.recent.front(), self.recent.back()) {
            (Some(&first), Some(&last)) if last > first => {
                let intervals = (self.recent.len() - 1) as f64;
                (60.0 * FS * intervals / (last - first) as f64).round() as u64
            }
            _ => 0,
        }
    }
}

thread_local! {
    static STREAM: RefCell<Option<Stream>> = const { RefCell::new(None) };
}

struct Ecg;

impl Plugin for Ecg {
    fn describe() -> Descriptor {
        Descriptor {
            name: "ecg".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Beat-by-beat arrhythmia classification (normal, atrial premature) of an ECG lead at 360 Hz, with its own band-pass and QRS detection".into(),
            input_kinds: vec![InputKind::RawTensor],
            labels: CLASSES.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn init(_config: Config) -> Result<(), PluginError> {
        log::install_panic_hook();
        let model = gatehouse_sdk::load_model(MODEL)?;
        if model.input().byte_len != WINDOW * 4 || model.output().byte_len != CLASSES.len() * 4 {
            return Err(PluginError::InvalidConfig(format!(
                "embedded model has input {:?} and output {:?}",
                model.input().shape,
                model.output().shape
            )));
        }
        state::set(
            &STREAM,
            Stream {
                model,
                pipeline: Pipeline::default(),
                beats: 0,
                per_class: [0; 2],
                recent: VecDeque::with_capacity(RATE_BEATS),
            },
        );
        Ok(())
    }

    fn process(input: Vec<u8>) -> Result<Inference, PluginError> {
        let samples = rows::parse(&input, 1)?;
        state::with(&STREAM, |s| {
            let mut beats = Vec::new();
            for &x in &samples {
                s.pipeline.push(x as f64, &mut beats);
            }
            let mut events = Vec::with_capacity(beats.len());
            let mut output = Vec::with_capacity(beats.len() * CLASSES.len() * 4);
            let mut last = None;
            for beat in &beats {
                let (out, p, class) = s.classify(beat)?;
                events.push(Event {
                    t_s: beat.r as f64 / FS,
                    label: CLASSES[class].into(),
                    score: p[class],
                });
                output.extend(out.iter().flat_map(|v| v.to_le_bytes()));
                last = Some(p);
            }
            let Some(p) = last else {
                return Ok(Inference::empty());
            };
            Ok(Inference {
                label: Some(CLASSES[rows::argmax(&p)].into()),
                scores: CLASSES
                    .iter()
                    .zip(&p)
                    .map(|(l, &v)| LabelScore {
                        label: l.to_string(),
                        score: v,
                    })
                    .collect(),
                score: Some(p[1] as f64),
                events,
                output: Some(output),
            })
        })
    }

    fn stats() -> Vec<Stat> {
        state::peek(&STREAM, |s| {
            let mut v = gatehouse_sdk::arena_stat(&s.model);
            v.extend([
                Stat {
                    name: "samples".into(),
                    value: s.pipeline.samples(),
                },
                Stat {
                    name: "beats".into(),
                    value: s.beats,
                },
                Stat {
                    name: "beats-atrial-premature".into(),
                    value: s.per_class[1],
                },
                Stat {
                    name: "heart-rate-bpm".into(),
                    value: s.heart_rate(),
                },
            ]);
            v
        })
    }
}

export_plugin!(Ecg);
