//! `wakeword`: the MLPerf Tiny streaming wake word ("marvin"). Takes a WAV of
//! any length, whole or in pieces of any size: the plugin keeps the stream's
//! pre-emphasis sample, feature frames and 30-frame FIFO between calls. At
//! every 512-sample hop it runs the model over the newest 30 frames and
//! detects "marvin" when p(marvin) > 0.95 (int8 > 115). One utterance lights
//! up many consecutive windows, so detections are debounced as the MLPerf Tiny
//! streaming evaluation does (`debounce_detections` in its `str_ww_util.py`):
//! a detection is reported as an event, and detections within the next
//! `debounce-ms` (setting, default 1000) belong to it and are not reported. A
//! piece starting a new RIFF header after the previous file ended starts a new
//! stream.

use std::cell::RefCell;
use std::collections::VecDeque;

use gatehouse_sdk::dsp::lfbe::{self, Lfbe};
use gatehouse_sdk::tflite::Model;
use gatehouse_sdk::wav::WavStream;
use gatehouse_sdk::{
    Config, Descriptor, Event, Inference, InputKind, Plugin, PluginError, Stat, export_plugin, log,
    state,
};

static MODEL_BYTES: &[u8] = include_bytes!("../../../models/mlperf-tiny/str_ww_ref_model.tflite");
const LABELS: [&str; 3] = ["marvin", "silence", "unknown"];
const WINDOW: usize = 30;
/// int8 output above which "marvin" is detected: p > 0.95.
const THRESHOLD: i8 = 115;
const RATE: u64 = 16000;
/// The MLPerf Tiny evaluation's debounce time.
const DEBOUNCE_MS: u64 = 1000;

struct Stream {
    model: Model,
    wav: WavStream,
    features: Lfbe,
    fifo: VecDeque<Vec<u8>>,
    /// Feature frames produced in this stream.
    frames: u64,
    saturated: u64,
    /// Detections inside this many samples after a reported one are part of it.
    debounce: u64,
    /// The sample at which the last reported event's window ended.
    last_event: Option<u64>,
    /// Detections, reported or debounced.
    detections: u64,
}

impl Stream {
    fn new(model: Model, debounce: u64) -> Self {
        Stream {
            model,
            wav: WavStream::default(),
            features: Lfbe::new(),
            fifo: VecDeque::with_capacity(WINDOW),
            frames: 0,
            saturated: 0,
            debounce,
            last_event: None,
            detections: 0,
        }
    }

    fn reset(&mut self) {
        self.wav = WavStream::default();
        self.features = Lfbe::new();
        self.fifo.clear();
        self.frames = 0;
        self.last_event = None;
    }

    fn push(&mut self, piece: &[u8]) -> Result<Vec<Event>, PluginError> {
        if self.wav.finished() && piece.starts_with(b"RIFF") {
            self.reset();
        }
        let samples = self
            .wav
            .push(piece)
            .map_err(|e| PluginError::InvalidInput(e.to_string()))?;
        if let Some(f) = self.wav.format() {
            if f.sample_rate as u64 != RATE {
                return Err(PluginError::InvalidInput(format!(
                    "sample rate {} Hz; this model needs 16000 Hz",
                    f.sample_rate
                )));
            }
        }
        let (scale, zero_point) = (
            self.model.input().scale as f64,
            self.model.input().zero_point,
        );
        // Windows completed by this piece, batched into one model call.
        let mut batch = Vec::new();
        let mut ends = Vec::new();
        let (fifo, frames, saturated) = (&mut self.fifo, &mut self.frames, &mut self.saturated);
        self.features.push(&samples, |frame| {
            // The reference truncates toward zero and does not saturate; we
            // saturate and count it (a value above 127 would wrap there).
            let q: Vec<u8> = frame
                .iter()
                .map(|&f| {
                    let v = (f / scale + zero_point as f64).trunc();
                    if !(-128.0..=127.0).contains(&v) {
                        *saturated += 1;
                    }
                    v.clamp(-128.0, 127.0) as i8 as u8
                })
                .collect();
            if fifo.len() == WINDOW {
                fifo.pop_front();
            }
            fifo.push_back(q);
            *frames += 1;
            if fifo.len() == WINDOW {
                fifo.iter().for_each(|f| batch.extend_from_slice(f));
                // Window i covers frames i..i+29 and ends at sample (i+29)·512 + 1024.
                let i = *frames - WINDOW as u64;
                ends.push((i + WINDOW as u64 - 1) * lfbe::HOP as u64 + lfbe::FRAME as u64);
            }
        });
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let out = gatehouse_sdk::run_model(&self.model, &batch)?;
        let mut events = Vec::new();
        for (o, end) in out.chunks_exact(LABELS.len()).zip(ends) {
            if o[0] as i8 <= THRESHOLD {
                continue;
            }
            self.detections += 1;
            // The evaluation zeroes the debounce span's samples starting at
            // the reported one, so a detection exactly `debounce` later is new.
            if self.last_event.is_some_and(|l| end - l < self.debounce) {
                continue;
            }
            self.last_event = Some(end);
            events.push(Event {
                t_s: end as f64 / RATE as f64,
                label: LABELS[0].into(),
                score: (o[0] as i8 as f32 + 128.0) / 256.0,
            });
        }
        Ok(events)
    }
}

thread_local! {
    static STREAM: RefCell<Option<Stream>> = const { RefCell::new(None) };
}

struct Wakeword;

impl Plugin for Wakeword {
    fn describe() -> Descriptor {
        Descriptor {
            name: "wakeword".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary:
                "Streaming wake word \"marvin\" (MLPerf Tiny) over a 16 kHz WAV, whole or in pieces"
                    .into(),
            input_kinds: vec![InputKind::Wav],
            labels: LABELS.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn init(config: Config) -> Result<(), PluginError> {
        log::install_panic_hook();
        let model = gatehouse_sdk::load_model(MODEL_BYTES)?;
        if model.input().byte_len != WINDOW * lfbe::MELS || model.output().byte_len != LABELS.len()
        {
            return Err(PluginError::InvalidConfig(format!(
                "embedded model has input {:?}",
                model.input().shape
            )));
        }
        let debounce_ms = match gatehouse_sdk::setting(&config, "debounce-ms") {
            None => DEBOUNCE_MS,
            Some(v) => v.parse::<u32>().map(u64::from).map_err(|_| {
                PluginError::InvalidConfig(format!(
                    "debounce-ms={v:?} is not a whole number of milliseconds"
                ))
            })?,
        };
        state::set(&STREAM, Stream::new(model, debounce_ms * RATE / 1000));
        Ok(())
    }

    fn process(input: Vec<u8>) -> Result<Inference, PluginError> {
        let events = state::with(&STREAM, |s| s.push(&input))?;
        Ok(Inference {
            events,
            ..Inference::empty()
        })
    }

    fn stats() -> Vec<Stat> {
        state::peek(&STREAM, |s| {
            let mut v = gatehouse_sdk::arena_stat(&s.model);
            v.push(Stat {
                name: "frames".into(),
                value: s.frames,
            });
            v.push(Stat {
                name: "saturated-features".into(),
                value: s.saturated,
            });
            v.push(Stat {
                name: "detections".into(),
                value: s.detections,
            });
            v
        })
    }
}

export_plugin!(Wakeword);
