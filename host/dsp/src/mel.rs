//! Mel filterbanks.

/// HTK mel scale, as TF uses: `1127·ln(1 + f/700)`.
pub fn hz_to_mel_htk(f: f64) -> f64 {
    1127.0 * libm::log(1.0 + f / 700.0)
}

/// TF's `linear_to_mel_weight_matrix`: `num_spectrogram_bins` rows (0 Hz to
/// Nyquist), `num_mel_bins` columns; triangles in the mel domain with peak 1,
/// no area normalisation, and the DC row all zero. Row-major `[bin][mel]`.
pub fn tf_mel_matrix(
    num_mel_bins: usize,
    num_spectrogram_bins: usize,
    sample_rate: f64,
    lower_hz: f64,
    upper_hz: f64,
) -> Vec<f64> {
    let nyquist = sample_rate / 2.0;
    let lo = hz_to_mel_htk(lower_hz);
    let hi = hz_to_mel_htk(upper_hz);
    let edges: Vec<f64> = (0..num_mel_bins + 2)
        .map(|i| lo + (hi - lo) * i as f64 / (num_mel_bins + 1) as f64)
        .collect();
    let mut w = vec![0.0; num_spectrogram_bins * num_mel_bins];
    for bin in 1..num_spectrogram_bins {
        let hz = nyquist * bin as f64 / (num_spectrogram_bins - 1) as f64;
        let mel = hz_to_mel_htk(hz);
        for m in 0..num_mel_bins {
            let (l, c, u) = (edges[m], edges[m + 1], edges[m + 2]);
            let lower = (mel - l) / (c - l);
            let upper = (u - mel) / (u - c);
            w[bin * num_mel_bins + m] = lower.min(upper).max(0.0);
        }
    }
    w
}

/// `spectrum · matrix` for one frame.
pub fn apply(spectrum: &[f64], matrix: &[f64], num_mel_bins: usize, out: &mut [f64]) {
    out.fill(0.0);
    for (bin, &s) in spectrum.iter().enumerate() {
        if s == 0.0 {
            continue;
        }
        let row = &matrix[bin * num_mel_bins..(bin + 1) * num_mel_bins];
        for (o, &w) in out.iter_mut().zip(row) {
            *o += s * w;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triangles_peak_at_one_and_dc_is_zero() {
        let w = tf_mel_matrix(40, 257, 16000.0, 20.0, 4000.0);
        assert!(w[..40].iter().all(|&x| x == 0.0));
        for m in 0..40 {
            let col: Vec<f64> = (0..257).map(|b| w[b * 40 + m]).collect();
            let peak = col.iter().cloned().fold(0.0, f64::max);
            assert!(peak > 0.3 && peak <= 1.0, "band {m} peaks at {peak}");
        }
        // Nothing above 4 kHz (bin 128) is weighted.
        assert!((129..257).all(|b| (0..40).all(|m| w[b * 40 + m] == 0.0)));
    }
}
