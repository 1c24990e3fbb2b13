//! ADD: int8 with broadcasting, each operand rescaled to a common scale;
//! under onnxruntime's semantics, QLinearAdd's single-precision sum, taken
//! in operand order.

use gatehouse_kernels::{Activation, AddSpec, KernelSet, activation_range};

use super::operand::act_i8;
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// `output = a + b`, broadcast as TFLite does.
#[derive(Clone, Debug)]
pub struct Add {
    pub a: TensorKey,
    pub b: TensorKey,
    pub output: TensorKey,
    pub activation: Activation,
}

impl Operator for Add {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let rounding = cx.semantics.add();
        let (da, sa, za) = act_i8(cx.st, self.a, "add input a")?;
        let (db, sb, zb) = act_i8(cx.st, self.b, "add input b")?;
        let (dout, so, zo) = act_i8(cx.st, self.output, "add output")?;
        let (act_min, act_max) = activation_range(self.activation, so, zo);
        let k = gatehouse_kernels::Add::new(AddSpec {
            shape1: da.shape.clone(),
            shape2: db.shape.clone(),
            out_shape: dout.shape.clone(),
            scale1: sa,
            zero_point1: za,
            scale2: sb,
            zero_point2: zb,
            out_scale: so,
            out_zero_point: zo,
            act_min,
            act_max,
            rounding,
            table_from: cx
                .ks
                .add_table
                .then_some(gatehouse_kernels::add::TABLE_FROM),
            uint8: cx.semantics.uint8(),
        })?;
        Ok(Built::new(
            "add",
            Kernel(k),
            vec![self.a, self.b],
            self.output,
        ))
    }
}

struct Kernel(gatehouse_kernels::Add);

impl Eval for Kernel {
    fn eval(&self, ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.two(|x, y, out| (ks.add)(&self.0, x, y, out))
    }

    fn held_bytes(&self) -> u64 {
        self.0.bytes() as u64
    }
}
