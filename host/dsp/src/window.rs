//! Analysis windows.

use std::f64::consts::PI;

/// Periodic Hann: `0.5 - 0.5·cos(2πn/N)` (TF's `hann_window(periodic=True)`, librosa's default).
pub fn hann_periodic(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.5 - 0.5 * libm::cos(2.0 * PI * i as f64 / n as f64))
        .collect()
}

/// Symmetric Hamming: `0.54 - 0.46·cos(2πn/(N-1))`.
pub fn hamming_symmetric(n: usize) -> Vec<f64> {
    let d = (n.max(2) - 1) as f64;
    (0..n)
        .map(|i| 0.54 - 0.46 * libm::cos(2.0 * PI * i as f64 / d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let h = hann_periodic(480);
        assert_eq!(h[0], 0.0);
        assert!((h[240] - 1.0).abs() < 1e-12);
        assert!((h[1] - h[479]).abs() < 1e-12);
        let m = hamming_symmetric(1024);
        assert!((m[0] - 0.08).abs() < 1e-12 && (m[1023] - 0.08).abs() < 1e-12);
    }
}
