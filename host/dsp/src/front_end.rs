//! A configurable audio front end: clip, normalise, frame, window, |FFT|,
//! mel filterbank, log, DCT, each stage optional past the spectrum.
//!
//! It is what the host serves as `gatehouse:dsp/audio`, and what the SDK's
//! fixed pipelines (such as [`crate::mfcc::KwsMfcc`]) are built on, so a
//! plugin computing its features in the sandbox and one asking the host for
//! them get the same numbers.

use std::fmt;

use crate::{Spectrum, mel, window};

/// The largest FFT a front end takes: 2^14 points, a 64 KiB frame buffer.
pub const MAX_FFT: usize = 1 << 14;
/// The most mel bands.
pub const MAX_MELS: usize = 512;

/// The analysis window of each frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Periodic Hann (TF's `hann_window(periodic=True)`, librosa's default).
    HannPeriodic,
    /// Symmetric Hamming.
    HammingSymmetric,
    /// No window.
    Rectangular,
}

/// What each bin of the spectrum holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Magnitude {
    /// |X|.
    Amplitude,
    /// |X|².
    Power,
}

/// Mel bands: TF's `linear_to_mel_weight_matrix` (HTK scale, peak 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MelBands {
    pub bands: usize,
    pub sample_rate: f64,
    pub low_hz: f64,
    pub high_hz: f64,
}

/// The whole pipeline. Stages after the spectrum are optional.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Zero-pad or cut the input to this many samples first.
    pub clip: Option<usize>,
    /// Divide the clip by its largest sample when that is positive (the
    /// MLPerf Tiny KWS reference does).
    pub peak_normalize: bool,
    pub frame: usize,
    pub hop: usize,
    /// A power of two, at least `frame`.
    pub fft: usize,
    pub window: Window,
    pub magnitude: Magnitude,
    pub mel: Option<MelBands>,
    /// `ln(x + offset)` of each value.
    pub log_offset: Option<f64>,
    /// Keep this many DCT-II coefficients, scaled by `sqrt(2/bands)` (TF's
    /// convention); needs `log_offset`'s stage before it to make MFCCs.
    pub dct: Option<usize>,
}

/// Why a [`Config`] was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks every bound before anything is allocated.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        if self.fft < 2 || self.fft > MAX_FFT || !self.fft.is_power_of_two() {
            return bad(format!(
                "fft {} must be a power of two within 2..={MAX_FFT}",
                self.fft
            ));
        }
        if self.frame == 0 || self.frame > self.fft {
            return bad(format!(
                "frame {} must be within 1..=fft ({})",
                self.frame, self.fft
            ));
        }
        if self.hop == 0 {
            return bad("hop must be at least 1".into());
        }
        if let Some(m) = &self.mel {
            if m.bands == 0 || m.bands > MAX_MELS {
                return bad(format!(
                    "{} mel bands: must be within 1..={MAX_MELS}",
                    m.bands
                ));
            }
            let ok = |x: f64| x.is_finite() && x >= 0.0;
            if !(m.sample_rate.is_finite() && m.sample_rate > 0.0)
                || !ok(m.low_hz)
                || !ok(m.high_hz)
                || m.low_hz >= m.high_hz
                || m.high_hz > m.sample_rate / 2.0
            {
                return bad(format!(
                    "mel bands {}..{} Hz at {} Hz: need 0 <= low < high <= Nyquist",
                    m.low_hz, m.high_hz, m.sample_rate
                ));
            }
        }
        if let Some(o) = self.log_offset
            && !(o.is_finite() && o >= 0.0)
        {
            return bad(format!("log offset {o} must be finite and not negative"));
        }
        if let Some(k) = self.dct {
            let n = self.values_per_frame_before_dct();
            if k == 0 || k > n {
                return bad(format!("{k} DCT coefficients of {n} values per frame"));
            }
        }
        Ok(())
    }

    fn values_per_frame_before_dct(&self) -> usize {
        self.mel.map_or(self.fft / 2 + 1, |m| m.bands)
    }

    /// Values per frame in the output.
    pub fn values_per_frame(&self) -> usize {
        self.dct
            .unwrap_or_else(|| self.values_per_frame_before_dct())
    }

    /// Frames made from `samples` input samples (after `clip`); a clip
    /// shorter than one frame gives none.
    pub fn frames(&self, samples: usize) -> usize {
        let n = self.clip.unwrap_or(samples);
        if n < self.frame || self.hop == 0 {
            0
        } else {
            1 + (n - self.frame) / self.hop
        }
    }

    /// Bytes of tables a front end holds: window, filterbank, DCT, FFT state.
    pub fn table_bytes(&self) -> usize {
        let bins = self.fft / 2 + 1;
        let mel = self.mel.map_or(0, |m| m.bands * bins);
        let dct = self
            .dct
            .map_or(0, |k| k * self.values_per_frame_before_dct());
        8 * (self.frame + mel + dct + bins) + 16 * 3 * self.fft
    }

    /// Floating-point operations for one frame, about: the FFT's
    /// `5·n·log2 n` plus the filterbank and DCT products.
    pub fn flops_per_frame(&self) -> u64 {
        let n = self.fft as u64;
        let bins = n / 2 + 1;
        let fft = 5 * n * u64::from(n.trailing_zeros());
        let mel = self.mel.map_or(0, |m| 2 * bins * m.bands as u64);
        let dct = self
            .dct
            .map_or(0, |k| 2 * (k * self.values_per_frame_before_dct()) as u64);
        fft + mel + dct + 4 * self.frame as u64
    }
}

/// A prepared front end: its FFT plan and tables.
pub struct FrontEnd {
    config: Config,
    spectrum: Spectrum,
    window: Vec<f64>,
    mel: Vec<f64>,
    dct: Vec<f64>,
}

impl FrontEnd {
    pub fn new(config: Config) -> Result<FrontEnd, ConfigError> {
        config.validate()?;
        let spectrum = Spectrum::new(config.fft).map_err(ConfigError)?;
        let window = match config.window {
            Window::HannPeriodic => window::hann_periodic(config.frame),
            Window::HammingSymmetric => window::hamming_symmetric(config.frame),
            Window::Rectangular => vec![1.0; config.frame],
        };
        let mel = config.mel.map_or_else(Vec::new, |m| {
            mel::tf_mel_matrix(m.bands, spectrum.bins(), m.sample_rate, m.low_hz, m.high_hz)
        });
        let n = config.values_per_frame_before_dct();
        let dct = config.dct.map_or_else(Vec::new, |k| {
            let scale = (2.0 / n as f64).sqrt();
            (0..k)
                .flat_map(|k| {
                    (0..n).map(move |i| {
                        scale
                            * libm::cos(
                                std::f64::consts::PI * k as f64 * (2 * i + 1) as f64
                                    / (2 * n) as f64,
                            )
                    })
                })
                .collect()
        });
        Ok(FrontEnd {
            config,
            spectrum,
            window,
            mel,
            dct,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The clip as the frames see it: cut or zero-padded to `clip`, and
    /// peak-normalised if asked.
    pub fn prepare(&self, samples: impl ExactSizeIterator<Item = f64>) -> Vec<f64> {
        let n = self.config.clip.unwrap_or(samples.len());
        let mut clip: Vec<f64> = samples.take(n).collect();
        clip.resize(n, 0.0);
        if self.config.peak_normalize {
            // The reference divides by the signed maximum; a clip with no
            // positive sample would blow up there, so it is left unscaled.
            let max = clip.iter().cloned().fold(f64::MIN, f64::max);
            if max > 0.0 {
                for x in &mut clip {
                    *x /= max;
                }
            }
        }
        clip
    }

    /// The features of one prepared frame, appended to `out`.
    /// `scratch` holds the spectrum and the mel values between stages.
    fn frame(&mut self, frame: &[f64], scratch: &mut Scratch, out: &mut Vec<f64>) {
        let power = match self.config.magnitude {
            Magnitude::Amplitude => 1,
            Magnitude::Power => 2,
        };
        scratch.spectrum.resize(self.spectrum.bins(), 0.0);
        self.spectrum
            .power(frame, &self.window, power, &mut scratch.spectrum);
        let values: &mut Vec<f64> = match self.config.mel {
            Some(m) => {
                scratch.mel.resize(m.bands, 0.0);
                mel::apply(&scratch.spectrum, &self.mel, m.bands, &mut scratch.mel);
                &mut scratch.mel
            }
            None => &mut scratch.spectrum,
        };
        if let Some(offset) = self.config.log_offset {
            for v in values.iter_mut() {
                *v = libm::log(*v + offset);
            }
        }
        match self.config.dct {
            Some(k) => {
                let n = values.len();
                for row in self.dct.chunks_exact(n).take(k) {
                    out.push(row.iter().zip(values.iter()).map(|(a, b)| a * b).sum());
                }
            }
            None => out.extend_from_slice(values),
        }
    }

    /// Every frame's features, time-major: `frames × values_per_frame`.
    pub fn compute(&mut self, samples: impl ExactSizeIterator<Item = f64>) -> Vec<f64> {
        let clip = self.prepare(samples);
        match self.frames_of(&clip, |_| true) {
            Ok(out) | Err((_, out)) => out,
        }
    }

    /// The features of a [`prepare`](Self::prepare)d clip, asking
    /// `go_on(frame)` before each frame: on `false`, the frames done so far
    /// come back as an error with the index of the frame refused.
    pub fn frames_of(
        &mut self,
        clip: &[f64],
        mut go_on: impl FnMut(usize) -> bool,
    ) -> Result<Vec<f64>, (usize, Vec<f64>)> {
        let frames = self.config.frames(clip.len());
        let mut out = Vec::with_capacity(frames * self.config.values_per_frame());
        let mut scratch = Scratch::default();
        for f in 0..frames {
            if !go_on(f) {
                return Err((f, out));
            }
            let start = f * self.config.hop;
            self.frame(
                &clip[start..start + self.config.frame],
                &mut scratch,
                &mut out,
            );
        }
        Ok(out)
    }
}

/// Buffers reused between frames.
#[derive(Default)]
struct Scratch {
    spectrum: Vec<f64>,
    mel: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spectrum_only(fft: usize) -> Config {
        Config {
            clip: None,
            peak_normalize: false,
            frame: fft,
            hop: fft,
            fft,
            window: Window::Rectangular,
            magnitude: Magnitude::Amplitude,
            mel: None,
            log_offset: None,
            dct: None,
        }
    }

    #[test]
    fn every_bound_is_checked_before_allocating() {
        let ok = spectrum_only(512);
        assert!(ok.validate().is_ok());
        for bad in [
            Config {
                fft: 480,
                ..ok.clone()
            },
            Config {
                fft: MAX_FFT * 2,
                ..ok.clone()
            },
            Config {
                frame: 513,
                ..ok.clone()
            },
            Config {
                hop: 0,
                ..ok.clone()
            },
            Config {
                dct: Some(300),
                ..ok.clone()
            },
            Config {
                log_offset: Some(f64::NAN),
                ..ok.clone()
            },
            Config {
                mel: Some(MelBands {
                    bands: 40,
                    sample_rate: 16000.0,
                    low_hz: 20.0,
                    high_hz: 9000.0,
                }),
                ..ok.clone()
            },
            Config {
                mel: Some(MelBands {
                    bands: 0,
                    sample_rate: 16000.0,
                    low_hz: 20.0,
                    high_hz: 4000.0,
                }),
                ..ok.clone()
            },
        ] {
            assert!(FrontEnd::new(bad.clone()).is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn frames_follow_clip_frame_and_hop() {
        let c = Config {
            frame: 480,
            hop: 320,
            fft: 512,
            clip: Some(16000),
            ..spectrum_only(512)
        };
        assert_eq!(c.frames(3), 49);
        let c = Config { clip: None, ..c };
        assert_eq!(c.frames(479), 0);
        assert_eq!(c.frames(480), 1);
        assert_eq!(c.frames(800), 2);
    }

    #[test]
    fn a_tone_lands_in_its_bin_and_short_input_gives_no_frames() {
        let mut fe = FrontEnd::new(spectrum_only(64)).unwrap();
        let tone = (0..128).map(|i| (2.0 * std::f64::consts::PI * 4.0 * i as f64 / 64.0).cos());
        let out = fe.compute(tone);
        assert_eq!(out.len(), 2 * 33);
        assert!((out[4] - 32.0).abs() < 1e-9 && (out[33 + 4] - 32.0).abs() < 1e-9);
        assert!(fe.compute(std::iter::repeat_n(1.0, 10)).is_empty());
    }
}
