//! BATCH_MATMUL of two int8 activations, `[..., M, K] x [..., K, N]`, either
//! side transposed on request, the leading dimensions broadcast.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::batch_matmul::{BatchMatMulSpec, batch_matmul_scalar};

use super::operand::act_i8;
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// `output = lhs x rhs` per batch.
#[derive(Clone, Debug)]
pub struct BatchMatMul {
    pub lhs: TensorKey,
    pub rhs: TensorKey,
    pub output: TensorKey,
    /// Transpose lhs's last two dimensions.
    pub adj_x: bool,
    /// Transpose rhs's last two dimensions.
    pub adj_y: bool,
}

impl Operator for BatchMatMul {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        // Under onnxruntime's uint8 semantics the operands hold each byte
        // less 128 and so do their zero points: the differences, and so
        // the sums, are the uint8 ones.
        let (dl, sl, zl) = act_i8(cx.st, self.lhs, "batch_matmul lhs")?;
        let (lhs_shape, lhs_elems) = (dl.shape.clone(), dl.elements());
        let (dr, sr, zr) = act_i8(cx.st, self.rhs, "batch_matmul rhs")?;
        let (rhs_shape, rhs_elems) = (dr.shape.clone(), dr.elements());
        let (dout, so, zo) = act_i8(cx.st, self.output, "batch_matmul output")?;
        let (out_shape, out_elems) = (dout.shape.clone(), dout.elements());
        // Charged before the kernel allocates: its pairing of lhs and rhs
        // matrices (16 bytes for each output matrix, at most one per output
        // element) and its scratch (at most both operands).
        let bound = out_elems
            .checked_mul(16)
            .and_then(|b| b.checked_add(lhs_elems)?.checked_add(rhs_elems))
            .ok_or_else(|| NnFault::invalid("batch_matmul: shape overflows"))?;
        cx.stage(Ok(bound), "batch_matmul pairs and scratch")?;
        let k = gatehouse_kernels::BatchMatMul::new(BatchMatMulSpec {
            lhs_shape,
            rhs_shape,
            adj_x: self.adj_x,
            adj_y: self.adj_y,
            lhs_quant: (sl, zl),
            rhs_quant: (sr, zr),
            output_quant: (so, zo),
            rounding: cx.semantics.batch_matmul(),
        })?;
        if out_elems != k.output_len() {
            return Err(NnFault::invalid(format!(
                "batch_matmul output must be {:?}, is {out_shape:?}",
                k.output_shape(),
            )));
        }
        Ok(Built::new(
            "batch_matmul",
            Kernel(k),
            vec![self.lhs, self.rhs],
            self.output,
        ))
    }
}

struct Kernel(gatehouse_kernels::BatchMatMul);

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        io.two(|l, r, out| batch_matmul_scalar(&self.0, l, r, out))
    }

    fn held_bytes(&self) -> u64 {
        self.0.bytes() as u64
    }

    fn macs(&self) -> u64 {
        self.0.macs()
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_kernels::{Semantics, dispatch};

    use super::*;
    use crate::ops::tests::i8s;
    use crate::ops::{OpDesc, PreparedOp};
    use crate::tensor::TensorStore;

    /// Many 1x1 matrices: the kernel's pairing of them would be 16 times
    /// the output's bytes. That is charged before it is built, so a plugin
    /// cannot make the host hold more than its quota.
    #[test]
    fn the_pairing_of_many_small_matrices_is_charged_first() {
        let ks = dispatch::available().last().expect("a kernel set");
        let b = 1 << 16;
        let mut st = TensorStore::new(4 * b as u64);
        let (lhs, rhs, out) = (
            st.create(i8s(&[b, 1, 1])).expect("fits"),
            st.create(i8s(&[b, 1, 1])).expect("fits"),
            st.create(i8s(&[b, 1, 1])).expect("fits"),
        );
        let used = st.used();
        let op = OpDesc::from(BatchMatMul {
            lhs,
            rhs,
            output: out,
            adj_x: false,
            adj_y: false,
        });
        let e = PreparedOp::prepare(&op, &mut st, Semantics::TfliteReference, ks)
            .err()
            .expect("over the quota");
        assert!(e.to_string().to_lowercase().contains("quota"), "{e}");
        assert_eq!(st.used(), used);
        // With room for it, the same operator prepares and runs, and its
        // charge is given back on release.
        let mut big = TensorStore::new(64 * b as u64);
        let (lhs, rhs, out) = (
            big.create(i8s(&[b, 1, 1])).expect("fits"),
            big.create(i8s(&[b, 1, 1])).expect("fits"),
            big.create(i8s(&[b, 1, 1])).expect("fits"),
        );
        big.write(lhs, 0, &vec![20u8; b]).expect("written");
        big.write(rhs, 0, &vec![10u8; b]).expect("written");
        let used = big.used();
        let op = OpDesc::from(BatchMatMul {
            lhs,
            rhs,
            output: out,
            adj_x: false,
            adj_y: false,
        });
        let p = PreparedOp::prepare(&op, &mut big, Semantics::TfliteReference, ks).expect("fits");
        assert!(big.used() >= used + 16 * b as u64);
        p.run(&mut big, ks).expect("runs");
        // (20 · 0.1) · (10 · 0.1) / 0.1 = 20.
        assert!(big.bytes(out).expect("output").iter().all(|&v| v == 20));
        p.release(&mut big);
        assert_eq!(big.used(), used);
    }
}
