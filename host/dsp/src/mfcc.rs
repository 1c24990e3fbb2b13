//! MFCC features of the MLPerf Tiny keyword-spotting model.
//!
//! As the reference (TF) pipeline computes them: a 1 s clip at 16 kHz,
//! divided by its largest sample value; 49 frames of 480 samples every 320;
//! periodic Hann; |FFT| over 512 points; 40 HTK mel bands from 20 Hz to
//! 4 kHz; ln(mel + 1e-6); DCT-II scaled by sqrt(2/40) (TF's convention);
//! the first 10 coefficients, time-major.

use crate::front_end::{Config, FrontEnd, Magnitude, MelBands, Window};

pub const SAMPLE_RATE: u32 = 16000;
pub const CLIP: usize = 16000;
pub const FRAME: usize = 480;
pub const HOP: usize = 320;
pub const FFT: usize = 512;
pub const MELS: usize = 40;
pub const COEFFS: usize = 10;
pub const FRAMES: usize = 1 + (CLIP - FRAME) / HOP;

/// The pipeline above as a front-end configuration: what a plugin asks the
/// host's `gatehouse:dsp/audio` for to get the same features.
pub fn config() -> Config {
    Config {
        clip: Some(CLIP),
        peak_normalize: true,
        frame: FRAME,
        hop: HOP,
        fft: FFT,
        window: Window::HannPeriodic,
        magnitude: Magnitude::Amplitude,
        mel: Some(MelBands {
            bands: MELS,
            sample_rate: SAMPLE_RATE as f64,
            low_hz: 20.0,
            high_hz: 4000.0,
        }),
        log_offset: Some(1e-6),
        dct: Some(COEFFS),
    }
}

/// Reusable MFCC state: FFT plan, window, filterbank and DCT table.
pub struct KwsMfcc(FrontEnd);

impl Default for KwsMfcc {
    fn default() -> Self {
        Self::new()
    }
}

impl KwsMfcc {
    pub fn new() -> Self {
        // The configuration is fixed and valid, so this cannot fail.
        KwsMfcc(FrontEnd::new(config()).unwrap_or_else(|e| unreachable!("{e}")))
    }

    /// `FRAMES × COEFFS` MFCCs of the first second of `samples` (zero-padded
    /// if shorter).
    pub fn compute(&mut self, samples: &[i16]) -> Vec<f64> {
        self.0.compute(samples.iter().map(|&s| s as f64 / 32768.0))
    }
}

/// The reference's int8 cast: truncation toward zero of `x/scale + zero_point`.
/// The reference does not saturate; we do, rather than wrap.
pub fn quantize_truncating(features: &[f64], scale: f64, zero_point: i32) -> Vec<i8> {
    features
        .iter()
        .map(|&x| ((x / scale + zero_point as f64).trunc()).clamp(-128.0, 127.0) as i8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_gives_the_floor_in_c0_and_zeros_elsewhere() {
        let mut m = KwsMfcc::new();
        let f = m.compute(&[]);
        assert_eq!(f.len(), 490);
        // ln(1e-6) * 40 * sqrt(2/40) = -13.8155 * 8.944 = -123.57
        assert!((f[0] + 123.57).abs() < 0.01, "{}", f[0]);
        assert!(f[1..10].iter().all(|c| c.abs() < 1e-9));
        let q = quantize_truncating(&f, 0.5847029089927673, 83);
        assert_eq!(q[0], -128);
        assert!(q[1..10].iter().all(|&c| (82..=83).contains(&c)));
    }

    #[test]
    fn gain_does_not_matter() {
        let tone: Vec<i16> = (0..16000)
            .map(|i| (3000.0 * (i as f64 * 0.3).sin()) as i16)
            .collect();
        let loud: Vec<i16> = tone.iter().map(|&s| s * 4).collect();
        let (a, b) = (KwsMfcc::new().compute(&tone), KwsMfcc::new().compute(&loud));
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-3));
    }
}
