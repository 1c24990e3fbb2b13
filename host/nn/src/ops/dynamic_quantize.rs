//! DYNAMIC_QUANTIZE: onnxruntime's DynamicQuantizeLinear, float32 to uint8
//! at a scale and zero point taken from the data at run time. Its three
//! outputs are the quantized tensor, the scale and the zero point; the
//! two 8-bit ones may be uint8, or int8 holding each byte less 128 as
//! `onnxruntime-uint8` plans hold uint8.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::dynamic_quantize::dynamic_quantize_linear;

use super::operand::bytes;
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::{DType, TensorKey};

/// `output = saturate(round(input / scale) + zero_point)` with `scale` and
/// `zero_point` from the input's range, written to their own tensors.
#[derive(Clone, Debug)]
pub struct DynamicQuantize {
    pub input: TensorKey,
    pub output: TensorKey,
    pub scale: TensorKey,
    pub zero_point: TensorKey,
}

impl Operator for DynamicQuantize {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        if !cx.semantics.is_onnxruntime() {
            return Err(NnFault::Unsupported(
                "dynamic_quantize under TFLite semantics (onnxruntime's only)".into(),
            ));
        }
        let st = &*cx.st;
        let (x, y) = (st.desc(self.input)?, st.desc(self.output)?);
        let (s, z) = (st.desc(self.scale)?, st.desc(self.zero_point)?);
        let eight = |d: DType| matches!(d, DType::I8 | DType::U8);
        if x.dtype != DType::F32 || !eight(y.dtype) || x.elements() != y.elements() {
            return Err(NnFault::invalid(format!(
                "dynamic_quantize takes float32 to 8 bits of the same size, not {:?} {:?} to {:?} {:?}",
                x.dtype, x.shape, y.dtype, y.shape
            )));
        }
        if s.dtype != DType::F32 || s.elements() != 1 || !eight(z.dtype) || z.elements() != 1 {
            return Err(NnFault::invalid(
                "dynamic_quantize writes its scale to one float32 and its zero point to one 8-bit element",
            ));
        }
        let kernel = Kernel {
            output_u8: y.dtype == DType::U8,
            zero_point_u8: z.dtype == DType::U8,
        };
        Ok(
            Built::new("dynamic_quantize", kernel, vec![self.input], self.output)
                .with_extra(vec![self.scale, self.zero_point]),
        )
    }
}

struct Kernel {
    output_u8: bool,
    zero_point_u8: bool,
}

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.one_into_three(|x, [y, scale, zp]| {
            let (s, z) = dynamic_quantize_linear(bytes(x), y)?;
            if self.output_u8 {
                y.iter_mut().for_each(|b| *b ^= i8::MIN);
            }
            // The lengths were checked at prepare and the spans are whole tensors.
            if let Some(out) = bytemuck::cast_slice_mut::<i8, u8>(scale).get_mut(..4) {
                out.copy_from_slice(&s.to_le_bytes());
            }
            if let Some(out) = zp.first_mut() {
                *out = if self.zero_point_u8 {
                    z as i8
                } else {
                    (z ^ 0x80) as i8
                };
            }
            Ok(())
        })
    }
}
