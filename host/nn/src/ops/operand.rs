//! Reading and checking the tensors an operator names: what every
//! operator's `prepare` shares.

use gatehouse_kernels::elementwise::Qp;
use gatehouse_kernels::{Padding, Requant, Rounding, Shape4, WindowSpec};

use crate::NnFault;
use crate::tensor::{DType, Desc, Quant, TensorKey, TensorStore};

/// Stride, dilation and padding as the plugin gave them.
#[derive(Clone, Copy, Debug)]
pub struct WindowArgs {
    pub padding: Padding,
    pub stride_h: u32,
    pub stride_w: u32,
    pub dilation_h: u32,
    pub dilation_w: u32,
}

/// A quantized int8 tensor: its description and quantization.
fn quantized_i8<'a>(
    st: &'a TensorStore,
    key: TensorKey,
    what: &str,
) -> Result<(&'a Desc, &'a Quant), NnFault> {
    let d = st.desc(key)?;
    if d.dtype != DType::I8 {
        return Err(NnFault::invalid(format!(
            "{what} must be int8, is {:?}",
            d.dtype
        )));
    }
    let q = d
        .quant
        .as_ref()
        .ok_or_else(|| NnFault::invalid(format!("{what} has no quantization")))?;
    Ok((d, q))
}

/// An int8 activation with per-tensor quantization: its description,
/// scale and zero point.
pub(super) fn act_i8<'a>(
    st: &'a TensorStore,
    key: TensorKey,
    what: &str,
) -> Result<(&'a Desc, f32, i32), NnFault> {
    let (d, q) = quantized_i8(st, key, what)?;
    let (s, z) = q.per_tensor(what)?;
    if !(s > 0.0) {
        return Err(NnFault::invalid(format!("{what} has scale {s}")));
    }
    if !(-128..=127).contains(&z) {
        return Err(NnFault::invalid(format!(
            "{what} has zero point {z} outside int8"
        )));
    }
    Ok((d, s, z))
}

pub(super) fn bytes(x: &[i8]) -> &[u8] {
    bytemuck::cast_slice(x)
}

pub(super) fn qp((_, scale, zero_point): (&Desc, f32, i32)) -> Qp {
    Qp { scale, zero_point }
}

pub(super) fn check_out_len(
    st: &TensorStore,
    output: TensorKey,
    elements: usize,
) -> Result<(), NnFault> {
    let d = st.desc(output)?;
    if d.elements() != elements {
        return Err(NnFault::invalid(format!(
            "output {:?} should hold {elements} elements",
            d.shape
        )));
    }
    Ok(())
}

/// Data-movement operators copy bytes: type and quantization must agree.
pub(super) fn same_type(
    st: &TensorStore,
    a: TensorKey,
    b: TensorKey,
    what: &str,
) -> Result<(), NnFault> {
    let (da, db) = (st.desc(a)?, st.desc(b)?);
    if da.dtype != db.dtype || da.quant != db.quant {
        return Err(NnFault::invalid(format!(
            "{what} needs the same type and quantization in and out"
        )));
    }
    Ok(())
}

/// What padding fills with: the zero point for quantized int8/uint8, else zero bytes.
pub(super) fn pad_value(d: &Desc) -> Vec<u8> {
    let zp = d.quant.as_ref().map(|q| q.zero_points[0]).unwrap_or(0);
    match d.dtype {
        DType::I8 => vec![zp as i8 as u8],
        DType::U8 => vec![zp as u8],
        other => vec![0; other.size()],
    }
}

/// A rank-4 shape, or a rank-3 one read as `[n, h, 1, c]` as TFLite extends it.
pub(super) fn nhwc(d: &Desc, what: &str) -> Result<[usize; 4], NnFault> {
    match d.shape.as_slice() {
        &[n, h, w, c] => Ok([n, h, w, c]),
        &[n, h, c] => Ok([n, h, 1, c]),
        s => Err(NnFault::invalid(format!(
            "{what} needs a rank 3 or 4 tensor, got {s:?}"
        ))),
    }
}

pub(super) fn shape4(d: &Desc, what: &str) -> Result<Shape4, NnFault> {
    match d.shape.as_slice() {
        &[n, h, w, c] => Ok(Shape4::new(n, h, w, c)),
        s => Err(NnFault::invalid(format!(
            "{what} must be rank 4 (NHWC), has shape {s:?}"
        ))),
    }
}

/// Constant int8 weights with symmetric-or-not zero points and per-channel scales on `axis`.
pub(super) fn weights_i8(
    st: &TensorStore,
    key: TensorKey,
    what: &str,
    channels: usize,
    axis: usize,
) -> Result<(Vec<i8>, Vec<f32>, Vec<i32>), NnFault> {
    let (_, q) = quantized_i8(st, key, what)?;
    if q.scales.len() != 1 && (q.scales.len() != channels || q.axis != axis) {
        return Err(NnFault::invalid(format!(
            "{what} has {} scales on axis {}; expected 1 or {channels} on axis {axis}",
            q.scales.len(),
            q.axis
        )));
    }
    let data = st.bytes(key)?.iter().map(|&b| b as i8).collect();
    Ok((data, q.scales.clone(), q.zero_points.clone()))
}

pub(super) fn bias_i32(
    st: &TensorStore,
    key: Option<TensorKey>,
    channels: usize,
) -> Result<Option<Vec<i32>>, NnFault> {
    let Some(key) = key else { return Ok(None) };
    let d = st.desc(key)?;
    if d.dtype != DType::I32 || d.elements() != channels {
        return Err(NnFault::invalid(format!(
            "bias must be int32 with {channels} values, is {:?} {:?}",
            d.dtype, d.shape
        )));
    }
    let bytes = st.bytes(key)?;
    Ok(Some(
        bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    ))
}

pub(super) fn window_spec(w: WindowArgs, kh: usize, kw: usize) -> WindowSpec {
    WindowSpec {
        kernel_h: kh,
        kernel_w: kw,
        stride_h: w.stride_h as usize,
        stride_w: w.stride_w as usize,
        dilation_h: w.dilation_h as usize,
        dilation_w: w.dilation_w as usize,
        padding: w.padding,
    }
}

/// `input_scale · filter_scale[c] / output_scale` per channel: in double
/// as TFLite does, or in single precision, left to right, as onnxruntime's
/// QLinearConv and QGemm do (the last bit of the scale can differ).
pub(super) fn channel_requant(
    s_in: f32,
    filter_scales: &[f32],
    s_out: f32,
    rounding: Rounding,
) -> Vec<Requant> {
    filter_scales
        .iter()
        .map(|&fs| match rounding {
            Rounding::Nearest => Requant::nearest(s_in * fs / s_out),
            _ => Requant::from_real(s_in as f64 * fs as f64 / s_out as f64, rounding),
        })
        .collect()
}

pub(super) fn symmetric(zero_points: &[i32], what: &str) -> Result<(), NnFault> {
    if zero_points.iter().any(|&z| z != 0) {
        return Err(NnFault::invalid(format!(
            "int8 {what} must be symmetric (zero point 0)"
        )));
    }
    Ok(())
}
