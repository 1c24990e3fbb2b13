//! onnxruntime's DynamicQuantizeLinear: float32 to uint8 at a scale and
//! zero point taken from the data itself, at run time.
//!
//! onnxruntime 1.32 (`DynamicQuantizeLinear<uint8_t>::Compute`) takes the
//! range `[min(x, 0), max(x, 0)]`, the scale `(max − min) / 255` and the
//! zero point `RoundHalfToEven(std::max(0, std::min(255, 0 − min /
//! scale)))` in single precision, then quantizes as its QuantizeLinear
//! does. An all-zero input (`max == min`) gets scale 1 and zero point 0,
//! as onnxruntime 1.32 gives (measured; older sources divide by the zero
//! range). A range too small for single precision is reproduced as
//! written: `(1e−45 − 0) / 255` underflows to a zero scale, `0 / 0` is
//! NaN, `std::min(255, NaN)` is 255 (the comparison is false), so the zero
//! point is 255, and each `x / 0` clamps to one end of the range;
//! onnxruntime 1.32 gives those bytes too.

use crate::elementwise::{Qp, quantize_linear};
use crate::error::{KernelError, check_len, ensure};
use crate::quant::UINT8_SHIFT;

/// The scale and the uint8 zero point DynamicQuantizeLinear takes from
/// `x`, or an error when a value is not finite: onnxruntime's range then
/// depends on where the NaN sits in its SIMD reduction, which no plan can
/// reproduce.
pub fn range(x: impl Iterator<Item = f32>) -> Result<(f32, u8), KernelError> {
    let (mut lo, mut hi) = (0f32, 0f32);
    for v in x {
        ensure!(
            "dynamic_quantize",
            v.is_finite(),
            "the input holds {v}; only finite values have a range"
        );
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi == lo {
        return Ok((1.0, 0));
    }
    let scale = (hi - lo) / 255.0;
    let initial = 0.0 - lo / scale;
    // std::min(255, v) is `v < 255 ? v : 255`, std::max(0, v) `0 < v ? v : 0`.
    let upper = if initial < 255.0 { initial } else { 255.0 };
    let clamped = if 0.0 < upper { upper } else { 0.0 };
    Ok((scale, clamped.round_ties_even() as u8))
}

/// DynamicQuantizeLinear of `input` (float32, little-endian bytes) into
/// `output`, uint8 held as int8 (each byte less [`UINT8_SHIFT`]). Returns
/// the scale and the zero point (uint8, as the model sees it).
pub fn dynamic_quantize_linear(input: &[u8], output: &mut [i8]) -> Result<(f32, u8), KernelError> {
    check_len(
        "dynamic_quantize",
        "input bytes",
        input.len(),
        output.len() * 4,
    )?;
    let values = || {
        input
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    };
    let (scale, zp) = range(values())?;
    let q = Qp {
        scale,
        zero_point: zp as i32 - UINT8_SHIFT,
    };
    for (o, x) in output.iter_mut().zip(values()) {
        *o = quantize_linear(q, x);
    }
    Ok((scale, zp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(x: &[f32]) -> (Vec<u8>, f32, u8) {
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut out = vec![0i8; x.len()];
        let (s, z) = dynamic_quantize_linear(&bytes, &mut out).expect("finite");
        (out.iter().map(|&b| (b as u8) ^ 0x80).collect(), s, z)
    }

    /// ONNX's own example (the operator's documentation): [0, 2, −3, −2.5,
    /// 1.34, 0.5] gives scale 5/255, zero point 153.
    #[test]
    fn the_operators_documented_example() {
        let (y, s, z) = run(&[0.0, 2.0, -3.0, -2.5, 1.34, 0.5]);
        assert_eq!(s, 5.0 / 255.0);
        assert_eq!(z, 153);
        assert_eq!(y, [153, 255, 0, 26, 221, 179]);
    }

    #[test]
    fn the_range_always_holds_zero() {
        // All positive: min is 0, so the zero point is 0.
        let (y, s, z) = run(&[1.0, 2.55, 0.5]);
        assert_eq!((s, z), (0.01, 0));
        assert_eq!(y, [100, 255, 50]);
        // All negative: max is 0, the zero point 255.
        let (y, s, z) = run(&[-2.55, -1.0]);
        assert_eq!((s, z), (0.01, 255));
        assert_eq!(y, [0, 155]);
    }

    /// As onnxruntime 1.32 gives them (module docs).
    #[test]
    fn degenerate_ranges() {
        let (y, s, z) = run(&[0.0, -0.0, 0.0]);
        assert_eq!((s, z), (1.0, 0));
        assert_eq!(y, [0, 0, 0]);
        let (y, s, z) = run(&[1e-45, 0.0, 0.0]);
        assert_eq!((s, z), (0.0, 255));
        assert_eq!(y, [255, 0, 0]);
    }

    #[test]
    fn non_finite_values_and_wrong_lengths_are_errors() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let bytes: Vec<u8> = [1.0, bad]
                .iter()
                .flat_map(|v: &f32| v.to_le_bytes())
                .collect();
            assert!(dynamic_quantize_linear(&bytes, &mut [0; 2]).is_err());
        }
        assert!(dynamic_quantize_linear(&[0; 8], &mut [0; 3]).is_err());
    }
}
