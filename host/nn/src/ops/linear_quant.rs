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

/// Which way a [`LinearQuant`] goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// QuantizeLinear: `output = saturate(round(input / scale) +
    /// zero_point)`, float32 to int8.
    Quantize,
    /// DequantizeLinear: `output = (input − zero_point) · scale`, int8 to
    /// float32.
    Dequantize,
}

/// Either direction, each element at the parameters of its slice or block.
#[derive(Clone, Debug)]
pub struct LinearQuant {
    pub direction: Direction,
    pub input: TensorKey,
    pub output: TensorKey,
    /// float32, the parameters' shape (see [`ParamLayout::new`]).
    pub scale: TensorKey,
    /// int8, the scale's shape.
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

impl Operator for LinearQuant {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let (name, sides) = match self.direction {
            Direction::Quantize => ("quantize_linear", (self.input, self.output)),
            Direction::Dequantize => ("dequantize_linear", (self.output, self.input)),
        };
        let p = Params::read(
            cx,
            name,
            sides,
            (self.scale, self.zero_point),
            (self.axis, self.block),
        )?;
        check(&p)?;
        let kernel = Kernel {
            direction: self.direction,
            p,
        };
        Ok(Built::new(name, kernel, vec![self.input], self.output))
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

struct Kernel {
    direction: Direction,
    p: Params,
}

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        let p = &self.p;
        let (layout, s, z) = (&p.layout, &p.scales[..], &p.zero_points[..]);
        match self.direction {
            Direction::Quantize => io.one(|x, y| quantize(layout, s, z, bytes(x), y)),
            Direction::Dequantize => {
                io.one(|x, y| dequantize(layout, s, z, x, bytemuck::cast_slice_mut(y)))
            }
        }
    }

    fn held_bytes(&self) -> u64 {
        self.p.layout.params() as u64 * 8
    }
}
