//! MUL: int8 with broadcasting; under onnxruntime's semantics its
//! QLinearMul, in float (`elementwise::Mul`).

use gatehouse_kernels::elementwise::{Qp, mul_scalar};
use gatehouse_kernels::{Activation, KernelSet, activation_range};

use super::operand::act_i8;
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// `output = a · b`, broadcast as TFLite does.
#[derive(Clone, Debug)]
pub struct Mul {
    pub a: TensorKey,
    pub b: TensorKey,
    pub output: TensorKey,
    pub activation: Activation,
}

impl Operator for Mul {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        let (da, sa, za) = act_i8(cx.st, self.a, "mul input a")?;
        let (db, sb, zb) = act_i8(cx.st, self.b, "mul input b")?;
        let (dout, so, zo) = act_i8(cx.st, self.output, "mul output")?;
        let act = activation_range(self.activation, so, zo);
        let q = |scale, zero_point| Qp { scale, zero_point };
        let k = gatehouse_kernels::elementwise::Mul::new(
            &da.shape,
            &db.shape,
            &dout.shape,
            q(sa, za),
            q(sb, zb),
            q(so, zo),
            act,
            cx.semantics.conv(),
            cx.semantics.uint8(),
        )?;
        Ok(Built::new(
            "mul",
            Kernel(k),
            vec![self.a, self.b],
            self.output,
        ))
    }
}

struct Kernel(gatehouse_kernels::elementwise::Mul);

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.two(|x, y, out| mul_scalar(&self.0, x, y, out))
    }
}
