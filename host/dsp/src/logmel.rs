//! Log-mel spectrograms as librosa computes them for the DCASE ToyCar
//! anomaly detector: centred frames (n_fft/2 of reflect padding at each
//! end), periodic Hann, power 2, Slaney mel scale with Slaney area
//! normalisation, then 10·log10(mel + ε) with ε the float64 machine epsilon.

use crate::{Spectrum, window};

/// Slaney's mel scale (librosa's default, `htk=False`).
pub fn hz_to_mel_slaney(f: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = libm::log(6.4) / 27.0;
    if f >= min_log_hz {
        min_log_mel + libm::log(f / min_log_hz) / logstep
    } else {
        f / f_sp
    }
}

pub fn mel_to_hz_slaney(m: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = libm::log(6.4) / 27.0;
    if m >= min_log_mel {
        min_log_hz * libm::exp(logstep * (m - min_log_mel))
    } else {
        f_sp * m
    }
}

/// librosa's `filters.mel(sr, n_fft, n_mels, fmin, fmax, norm="slaney")`,
/// row-major `[bin][mel]` like [`super::mel::tf_mel_matrix`].
pub fn slaney_mel_matrix(
    sample_rate: f64,
    n_fft: usize,
    n_mels: usize,
    fmin: f64,
    fmax: f64,
) -> Vec<f64> {
    let bins = n_fft / 2 + 1;
    let (lo, hi) = (hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax));
    let hz: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz_slaney(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut w = vec![0.0; bins * n_mels];
    for b in 0..bins {
        let f = sample_rate / 2.0 * b as f64 / (bins - 1) as f64;
        for m in 0..n_mels {
            let lower = (f - hz[m]) / (hz[m + 1] - hz[m]);
            let upper = (hz[m + 2] - f) / (hz[m + 2] - hz[m + 1]);
            let enorm = 2.0 / (hz[m + 2] - hz[m]);
            w[b * n_mels + m] = lower.min(upper).max(0.0) * enorm;
        }
    }
    w
}

/// The ToyCar front end: 16 kHz, n_fft 1024, hop 512, 128 mels.
pub struct ToyCarLogMel {
    spectrum: Spectrum,
    window: Vec<f64>,
    mel: Vec<f64>,
}

pub const N_FFT: usize = 1024;
pub const HOP: usize = 512;
pub const MELS: usize = 128;

impl ToyCarLogMel {
    pub fn new() -> Self {
        // N_FFT is a power of two, so this cannot fail.
        let spectrum = Spectrum::new(N_FFT).unwrap_or_else(|e| unreachable!("{e}"));
        ToyCarLogMel {
            spectrum,
            window: window::hann_periodic(N_FFT),
            mel: slaney_mel_matrix(16000.0, N_FFT, MELS, 0.0, 8000.0),
        }
    }

    /// Frames `first..first + count` of the centred log-mel spectrogram of
    /// `samples` (floats in [-1, 1)), time-major `[frame][mel]`.
    pub fn frames(&mut self, samples: &[f64], first: usize, count: usize) -> Vec<f64> {
        let pad = N_FFT / 2;
        let n = samples.len() as isize;
        // Reflect padding (librosa 0.6); a clip shorter than the pad is zero-padded instead.
        let at = |i: isize| -> f64 {
            let j = i - pad as isize;
            let k = if j < 0 {
                -j
            } else if j >= n {
                2 * (n - 1) - j
            } else {
                j
            };
            if (0..n).contains(&k) {
                samples[k as usize]
            } else {
                0.0
            }
        };
        let mut frame = vec![0.0; N_FFT];
        let mut power = vec![0.0; self.spectrum.bins()];
        let mut mels = vec![0.0; MELS];
        let mut out = Vec::with_capacity(count * MELS);
        for t in first..first + count {
            for (i, v) in frame.iter_mut().enumerate() {
                *v = at((t * HOP + i) as isize);
            }
            self.spectrum.power(&frame, &self.window, 2, &mut power);
            super::mel::apply(&power, &self.mel, MELS, &mut mels);
            out.extend(mels.iter().map(|m| 10.0 * libm::log10(m + f64::EPSILON)));
        }
        out
    }

    /// Frames the clip has once centred: 1 + len / hop.
    pub fn frame_count(samples: usize) -> usize {
        1 + samples / HOP
    }
}

impl Default for ToyCarLogMel {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_scale_round_trips_and_is_linear_below_1khz() {
        for f in [0.0, 440.0, 999.0, 1000.0, 4321.0, 8000.0] {
            assert!((mel_to_hz_slaney(hz_to_mel_slaney(f)) - f).abs() < 1e-9);
        }
        assert!((hz_to_mel_slaney(500.0) - 7.5).abs() < 1e-12);
    }

    #[test]
    fn filters_are_area_normalised() {
        let w = slaney_mel_matrix(16000.0, 1024, 128, 0.0, 8000.0);
        // Each triangle's peak is 2/(f_hi - f_lo); widths grow with frequency.
        let peak = |m: usize| (0..513).map(|b| w[b * 128 + m]).fold(0.0, f64::max);
        assert!(peak(0) > peak(127));
        assert!((0..128).all(|m| peak(m) > 0.0));
    }

    #[test]
    fn silence_sits_at_the_epsilon_floor() {
        let mut lm = ToyCarLogMel::new();
        let f = lm.frames(&vec![0.0; 16000], 0, 2);
        assert!(
            f.iter()
                .all(|&v| (v - 10.0 * f64::EPSILON.log10()).abs() < 1e-9)
        );
    }
}
