//! CONCATENATION: any type, inputs and output quantized alike; under
//! onnxruntime's semantics (QLinearConcat) int8 inputs may be requantized.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::elementwise::Lut;
use gatehouse_kernels::movement;

use super::operand::{act_i8, bytes, qp, same_type};
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::{DType, TensorKey};

/// The inputs joined along `axis`.
#[derive(Clone, Debug)]
pub struct Concatenation {
    pub inputs: Vec<TensorKey>,
    pub output: TensorKey,
    pub axis: usize,
}

impl Operator for Concatenation {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let st = &*cx.st;
        let mut shapes = Vec::with_capacity(self.inputs.len());
        // onnxruntime's QLinearConcat requantizes an int8 input quantized
        // unlike the output through a table; TFLite's needs them alike.
        let mut tables = Vec::with_capacity(self.inputs.len());
        for &i in &self.inputs {
            let (di, dout) = (st.desc(i)?, st.desc(self.output)?);
            let requantize = cx.semantics.is_onnxruntime()
                && di.dtype == DType::I8
                && dout.dtype == DType::I8
                && di.quant != dout.quant;
            tables.push(if requantize {
                let qi = qp(act_i8(st, i, "concatenation input")?);
                let qo = qp(act_i8(st, self.output, "concatenation output")?);
                Some(Lut::requantize_onnxruntime(qi, qo))
            } else {
                same_type(st, i, self.output, "concatenation")?;
                None
            });
            shapes.push(di.shape.clone());
        }
        let dout = st.desc(self.output)?;
        // The kernel refuses more inputs than `MAX_CONCAT_INPUTS`, which is
        // no more than the store lends at once.
        let k = movement::Concat::new(&shapes, self.axis, dout.dtype.size())?;
        let total: usize = (0..self.inputs.len()).map(|i| k.input_len(i)).sum();
        if total != dout.byte_len()? {
            return Err(NnFault::invalid(format!(
                "concatenation of {shapes:?} on axis {} does not make {:?}",
                self.axis, dout.shape
            )));
        }
        let tables = tables.iter().any(Option::is_some).then_some(tables);
        Ok(Built::new(
            "concatenation",
            Kernel(k, tables),
            self.inputs.clone(),
            self.output,
        ))
    }
}

/// The joining, and each input's requantizing table when any has one.
struct Kernel(movement::Concat, Option<Vec<Option<Lut>>>);

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.many(|ins, out| {
            let mut xs: [&[u8]; movement::MAX_CONCAT_INPUTS] = [&[]; movement::MAX_CONCAT_INPUTS];
            for (x, i) in xs.iter_mut().zip(ins) {
                *x = bytes(i);
            }
            let n = ins.len().min(xs.len());
            let out = bytemuck::cast_slice_mut(out);
            match &self.1 {
                None => movement::concat(&self.0, &xs[..n], out),
                Some(tables) => {
                    let mut ts: [Option<&[i8; 256]>; movement::MAX_CONCAT_INPUTS] =
                        [None; movement::MAX_CONCAT_INPUTS];
                    for (t, l) in ts.iter_mut().zip(tables) {
                        *t = l.as_ref().map(Lut::table);
                    }
                    movement::concat_mapped(&self.0, &xs[..n], &ts[..n], out)
                }
            }
        })
    }

    fn held_bytes(&self) -> u64 {
        self.1
            .as_ref()
            .map_or(0, |t| 256 * t.iter().flatten().count() as u64)
    }
}
