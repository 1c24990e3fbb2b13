//! What several operators read alike: fused activations, paddings, axes,
//! window arithmetic and broadcasting.

use super::super::LoadError;
use super::super::schema::tflite as fb;
use super::At;
use crate::nn::{Activation, Padding, Window};

pub(super) fn activation(
    index: usize,
    a: fb::ActivationFunctionType,
) -> Result<Activation, LoadError> {
    Ok(match a {
        fb::ActivationFunctionType::None => Activation::None,
        fb::ActivationFunctionType::Relu => Activation::Relu,
        fb::ActivationFunctionType::ReluN1To1 => Activation::ReluN1To1,
        fb::ActivationFunctionType::Relu6 => Activation::Relu6,
        other => {
            return Err(LoadError::Unsupported(format!(
                "operator {index} fuses activation {other:?}"
            )));
        }
    })
}

pub(super) fn positive(index: usize, what: &str, v: i32) -> Result<u32, LoadError> {
    if v >= 1 {
        Ok(v as u32)
    } else {
        Err(LoadError::Malformed(format!(
            "operator {index} has {what} {v}"
        )))
    }
}

pub(super) fn padding(p: fb::Padding) -> Padding {
    match p {
        fb::Padding::Same => Padding::Same,
        fb::Padding::Valid => Padding::Valid,
    }
}

/// Normalize a possibly negative axis against `rank`.
pub(super) fn axis(index: usize, a: i32, rank: usize) -> Result<u32, LoadError> {
    let r = rank as i32;
    let v = if a < 0 { a + r } else { a };
    if (0..r).contains(&v) {
        Ok(v as u32)
    } else {
        Err(LoadError::Malformed(format!(
            "operator {index}: axis {a} out of range for rank {rank}"
        )))
    }
}

/// The NHWC output shape of a `kh`×`kw` window over input 0, with `c`
/// channels out: convolutions and pooling.
pub(super) fn windowed(
    at: &At<'_>,
    (kh, kw, c): (u32, u32, u32),
    w: &Window,
) -> Result<Vec<u32>, LoadError> {
    let [n, h, width, _] = nhwc(at.shape(0)).map_err(|e| at.malformed(e))?;
    Ok(vec![
        n,
        window_out(h, kh, w, true),
        window_out(width, kw, w, false),
        c,
    ])
}

/// The output size of a window of `k` over `size` along one axis.
fn window_out(size: u32, k: u32, w: &Window, vertical: bool) -> u32 {
    let (stride, dil) = if vertical {
        (w.stride_h, w.dilation_h)
    } else {
        (w.stride_w, w.dilation_w)
    };
    let eff = (k.max(1) - 1) * dil + 1;
    match w.padding {
        Padding::Same => size.div_ceil(stride),
        Padding::Valid => (size + stride).saturating_sub(eff) / stride,
    }
}

/// A shape as NHWC, or why not.
pub(super) fn nhwc(s: &[u32]) -> Result<[u32; 4], String> {
    match s {
        &[n, h, w, c] => Ok([n, h, w, c]),
        other => Err(format!("input {other:?} is not NHWC")),
    }
}

pub(super) fn elements(s: &[u32]) -> u64 {
    s.iter().map(|&d| d as u64).product()
}

/// The shape two operands broadcast to, as TFLite's binary operators do.
pub(super) fn broadcast(a: &[u32], b: &[u32]) -> Result<Vec<u32>, String> {
    let r = a.len().max(b.len());
    let at = |v: &[u32], i: usize| {
        if i + v.len() >= r {
            v[i + v.len() - r]
        } else {
            1
        }
    };
    (0..r)
        .map(|i| {
            let (x, y) = (at(a, i), at(b, i));
            if x == y || y == 1 {
                Ok(x)
            } else if x == 1 {
                Ok(y)
            } else {
                Err(format!("{a:?} and {b:?} do not broadcast"))
            }
        })
        .collect()
}
