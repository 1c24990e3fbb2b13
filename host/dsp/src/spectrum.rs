//! Spectra of real frames.

/// Power or magnitude spectra of real frames, zero-padded to a power-of-two
/// FFT length.
///
/// Uses rustfft's radix-4 algorithm directly: its planner keeps a `HashMap`
/// with a randomly seeded hasher, and a plugin has no randomness to seed it.
pub struct Spectrum {
    fft: rustfft::algorithm::Radix4<f64>,
    buffer: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
}

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftDirection};

impl Spectrum {
    /// `fft_len` must be a power of two.
    pub fn new(fft_len: usize) -> Result<Self, String> {
        if !fft_len.is_power_of_two() || fft_len < 2 {
            return Err(format!("FFT length {fft_len} is not a power of two"));
        }
        let fft = rustfft::algorithm::Radix4::new(fft_len, FftDirection::Forward);
        let scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
        Ok(Spectrum {
            fft,
            buffer: vec![Complex::default(); fft_len],
            scratch,
        })
    }

    /// Bins from DC to Nyquist.
    pub fn bins(&self) -> usize {
        self.buffer.len() / 2 + 1
    }

    /// |FFT(frame · window)|^power for each bin (power 1 or 2); `frame` and
    /// `window` have equal length, at most the FFT length.
    pub fn power(&mut self, frame: &[f64], window: &[f64], power: i32, out: &mut [f64]) {
        self.buffer.fill(Complex::default());
        for ((d, &x), &w) in self.buffer.iter_mut().zip(frame).zip(window) {
            d.re = x * w;
        }
        self.fft
            .process_with_scratch(&mut self.buffer, &mut self.scratch);
        let bins = self.bins();
        for (o, c) in out.iter_mut().zip(&self.buffer[..bins]) {
            let m2 = c.re * c.re + c.im * c.im;
            *o = if power == 2 { m2 } else { m2.sqrt() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pure_tone_lands_in_its_bin() {
        let n = 512;
        let mut s = Spectrum::new(n).unwrap();
        assert!(Spectrum::new(480).is_err());
        let frame: Vec<f64> = (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * 8.0 * i as f64 / n as f64).cos())
            .collect();
        let ones = vec![1.0; n];
        let mut out = vec![0.0; s.bins()];
        s.power(&frame, &ones, 1, &mut out);
        assert!((out[8] - n as f64 / 2.0).abs() < 1e-9);
        assert!(out.iter().enumerate().all(|(i, &v)| i == 8 || v < 1e-9));
    }
}
