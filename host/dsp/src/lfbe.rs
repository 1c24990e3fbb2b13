//! Streaming log filterbank energies for the MLPerf Tiny streaming wake-word
//! model: pre-emphasis 0.96875 over the continuous stream, 1024-sample frames
//! every 512 samples with a symmetric Hamming window, power |X|²/1024
//! clamped at 1e-30, 40 HTK mel bands over 0-8 kHz, then
//! (10·log10(mel) + 52)/64 clipped to [0, 1].

use crate::{Spectrum, mel, window};

pub const FRAME: usize = 1024;
pub const HOP: usize = 512;
pub const MELS: usize = 40;

/// Feeds samples in, gets feature frames out, across calls.
pub struct Lfbe {
    spectrum: Spectrum,
    window: Vec<f64>,
    mel: Vec<f64>,
    /// The last `FRAME` pre-emphasised samples.
    ring: Vec<f64>,
    /// Samples pushed so far.
    pushed: u64,
    prev: f64,
}

impl Default for Lfbe {
    fn default() -> Self {
        Self::new()
    }
}

impl Lfbe {
    pub fn new() -> Self {
        let spectrum = Spectrum::new(FRAME).unwrap_or_else(|e| unreachable!("{e}"));
        let mel = mel::tf_mel_matrix(MELS, spectrum.bins(), 16000.0, 0.0, 8000.0);
        Lfbe {
            spectrum,
            window: window::hamming_symmetric(FRAME),
            mel,
            ring: Vec::with_capacity(FRAME),
            pushed: 0,
            prev: 0.0,
        }
    }

    /// Frames completed so far.
    pub fn frames_done(&self) -> u64 {
        if self.pushed < FRAME as u64 {
            0
        } else {
            1 + (self.pushed - FRAME as u64) / HOP as u64
        }
    }

    /// Push int16 samples; call `on_frame` with each finished 40-value frame.
    pub fn push(&mut self, samples: &[i16], mut on_frame: impl FnMut(&[f64])) {
        let mut power = vec![0.0; self.spectrum.bins()];
        let mut mels = vec![0.0; MELS];
        for &s in samples {
            let x = s as f64 / 32768.0;
            let y = x - 0.96875 * self.prev;
            self.prev = x;
            if self.ring.len() == FRAME {
                self.ring.drain(..HOP);
            }
            self.ring.push(y);
            self.pushed += 1;
            if self.ring.len() == FRAME && (self.pushed - FRAME as u64) % HOP as u64 == 0 {
                self.spectrum.power(&self.ring, &self.window, 2, &mut power);
                for p in &mut power {
                    *p = (*p / FRAME as f64).max(1e-30);
                }
                mel::apply(&power, &self.mel, MELS, &mut mels);
                for m in &mut mels {
                    *m = ((10.0 * libm::log10(*m) + 52.0) / 64.0).clamp(0.0, 1.0);
                }
                on_frame(&mels);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_arrive_every_hop_after_the_first_full_frame() {
        let mut l = Lfbe::new();
        let mut n = 0;
        l.push(&vec![0i16; 1023], |_| n += 1);
        assert_eq!(n, 0);
        l.push(&[0], |_| n += 1);
        assert_eq!(n, 1);
        l.push(&vec![0i16; 1024], |f| {
            n += 1;
            assert!(f.iter().all(|&v| v == 0.0), "silence clips to 0");
        });
        assert_eq!((n, l.frames_done()), (3, 3));
    }

    #[test]
    fn chunking_does_not_change_the_features() {
        let sig: Vec<i16> = (0..5000)
            .map(|i| ((i as f64 * 0.05).sin() * 8000.0) as i16)
            .collect();
        let mut whole = Vec::new();
        Lfbe::new().push(&sig, |f| whole.extend_from_slice(f));
        let mut parts = Vec::new();
        let mut l = Lfbe::new();
        for c in sig.chunks(333) {
            l.push(c, |f| parts.extend_from_slice(f));
        }
        assert_eq!(whole, parts);
    }
}
