//! QUANTIZE_LINEAR and DEQUANTIZE_LINEAR: onnxruntime's QuantizeLinear and
//! DequantizeLinear with a scale and zero point per slice along an axis,
//! or per block of slices (ONNX's blocked quantization), given as two
//! tensors of the parameters' shape. The 8-bit side carries no
//! quantization of its own: an activation quantized per axis is something
//! no other host operator takes, so it is only a model's input or output.
//! uint8 is held as int8 less 128, zero points too, as `onnxruntime-uint8`
//! plans hold it; the arithmetic gives the same bytes on either.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::linear_quant::{ParamLayout, dequantize, quantize};

use super::operand::bytes;
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::{DType, TensorKey, TensorStore};

/// `output = saturate(round(input / scale) + zero_point)`, float32 to
/// int8, each element at the parameters of its slice or block.
#[derive(Clone, Debug)]
pub struct QuantizeLinear {
    pub input: TensorKey,
    pub output: TensorKey,
    /// float32, the parameters' shape (see [`ParamLayout::new`]).
    pub scale: TensorKey,
    /// int8, the scale's shape.
    pub zero_point: TensorKey,
    pub axis: usize,
    pub block: usize,
}

/// `output = (input − zero_point) · scale`, int8 to float32, as
/// [`QuantizeLinear`] takes its parameters.
#[derive(Clone, Debug)]
pub struct DequantizeLinear {
    pub input: TensorKey,
    pub output: TensorKey,
    pub scale: TensorKey,
    pub zero_point: TensorKey,
    pub axis: usize,
    pub block: usize,
}

/// What both prepare: the layout and the parameters, read from their
/// tensors now (a plan holds them as it holds weights).
struct Params {
    layout: ParamLayout,
    scales: Vec<f32>,
    zero_points: Vec<i32>,
}

impl Params {
    fn read(
        cx: &mut Prep<'_>,
        what: &'static str,
        (float, eight): (TensorKey, TensorKey),
        (scale, zero_point): (TensorKey, TensorKey),
        (axis, block): (usize, usize),
    ) -> Result<Params, NnFault> {
        if !cx.semantics.is_onnxruntime() {
            return Err(NnFault::Unsupported(format!(
                "{what} under TFLite semantics (onnxruntime's only)"
            )));
        }
        let st: &TensorStore = cx.st;
        let (f, q) = (st.desc(float)?, st.desc(eight)?);
        if f.dtype != DType::F32 || q.dtype != DType::I8 || f.shape != q.shape {
            return Err(NnFault::invalid(format!(
                "{what} is between float32 and int8 of one shape, not {:?} {:?} and {:?} {:?}",
                f.dtype, f.shape, q.dtype, q.shape
            )));
        }
        let (s, z) = (st.desc(scale)?, st.desc(zero_point)?);
        if s.dtype != DType::F32 || z.dtype != DType::I8 || s.shape != z.shape {
            return Err(NnFault::invalid(format!(
                "{what}'s scale is float32 and its zero point int8 of the same shape, not \
                 {:?} {:?} and {:?} {:?}",
                s.dtype, s.shape, z.dtype, z.shape
            )));
        }
        let layout = ParamLayout::new(&f.shape, &s.shape, axis, block)?;
        cx.stage(Ok(layout.params() * 8), "quantization parameters")?;
        let st: &TensorStore = cx.st;
        let scales = st
            .bytes(scale)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let zero_points = st
            .bytes(zero_point)?
            .iter()
            .map(|&b| b as i8 as i32)
            .collect();
        Ok(Params {
            layout,
            scales,
            zero_points,
        })
    }
}

impl Operator for QuantizeLinear {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let p = Params::read(
            cx,
            "quantize_linear",
            (self.input, self.output),
            (self.scale, self.zero_point),
            (self.axis, self.block),
        )?;
        check(&p)?;
        Ok(Built::new(
            "quantize_linear",
            Quantize(p),
            vec![self.input],
            self.output,
        ))
    }
}

impl Operator for DequantizeLinear {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let p = Params::read(
            cx,
            "dequantize_linear",
            (self.output, self.input),
            (self.scale, self.zero_point),
            (self.axis, self.block),
        )?;
        check(&p)?;
        Ok(Built::new(
            "dequantize_linear",
            Dequantize(p),
            vec![self.input],
            self.output,
        ))
    }
}

/// Refuses now, so a plan never holds them, scales the kernels would
/// refuse at every run (zero points are int8 by their tensor's type).
fn check(p: &Params) -> Result<(), NnFault> {
    if let Some(s) = p.scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(NnFault::invalid(format!("scale {s} is not positive")));
    }
    Ok(())
}

struct Quantize(Params);
struct Dequantize(Params);

impl Eval for Quantize {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        let p = &self.0;
        io.one(|x, y| quantize(&p.layout, &p.scales, &p.zero_points, bytes(x), y))
    }

    fn held_bytes(&self) -> u64 {
        self.0.layout.params() as u64 * 8
    }
}

impl Eval for Dequantize {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        let p = &self.0;
        io.one(|x, y| {
            dequantize(
                &p.layout,
                &p.scales,
                &p.zero_points,
                x,
                bytemuck::cast_slice_mut(y),
            )
        })
    }

    fn held_bytes(&self) -> u64 {
        self.0.layout.params() as u64 * 8
    }
}
