//! MatMul and QLinearMatMul whose right side is not one weight matrix: an
//! activation (attention's products) or a batch of constant matrices.
//! onnxruntime runs both as QLinearMatMul (the exact sums, then its
//! single-precision requantization), which the host's BATCH_MATMUL does
//! under onnxruntime's semantics. A weight matrix goes to
//! [`Lower::gemm`] instead, whose fully connected layer is prepacked.

use super::{Act, Lower, Val, host, qdesc};
use crate::model::LoadError;
use crate::nn::{self, AnyOp, Quantization, SequenceOp};
use crate::onnx::graph::{Data, Node};

impl Lower {
    /// The right operand's input index: QLinearMatMul's B is input 3.
    fn right(node: &Node) -> usize {
        if node.op_type == "QLinearMatMul" {
            3
        } else {
            1
        }
    }

    /// A MatMul or QLinearMatMul by one constant matrix (a fully connected
    /// layer), rather than by an activation or a batch of matrices.
    pub(super) fn by_weight_matrix(&self, node: &Node) -> bool {
        let Some(b) = node.input(Self::right(node)) else {
            return false;
        };
        match (self.consts.get(b), self.vals.get(b)) {
            (Some(c), _) => c.dims.len() == 2,
            (None, Some(Val::DeqConst(q))) => q.c.dims.len() == 2,
            _ => false,
        }
    }

    /// `a` times the right operand, quantized as `out`: one BATCH_MATMUL.
    pub(super) fn batch_matmul(&mut self, node: &Node, a: Act, out: Act) -> Result<Act, LoadError> {
        if node.op_type == "QLinearMatMul" {
            let (s, z, _) = self.qparams(node, 1, 2)?;
            if (s, z) != (a.scale, a.zp) {
                return Err(node.unsupported("an input quantized otherwise than its producer says"));
            }
        }
        let b = self.right_operand(node)?;
        for (side, x) in [("A", &a), ("B", &b)] {
            if !(2..=3).contains(&x.dims.len()) || x.flat.is_some() {
                return Err(node.unsupported(format!(
                    "{side} of shape {:?}: products of 2-D or 3-D operands only (the host holds \
                     4-D activations as NHWC)",
                    x.dims
                )));
            }
        }
        let dims = product_dims(&a.dims, &b.dims)
            .ok_or_else(|| node.malformed(format!("{:?} by {:?}", a.dims, b.dims)))?;
        let y = Act { dims, ..out };
        let yt = self.place(&y, "an output")?;
        let op = AnyOp::Sequence(SequenceOp::BatchMatmul(nn::BatchMatmul {
            lhs: &self.tensors[a.t],
            rhs: &self.tensors[b.t],
            output: &self.tensors[yt],
            adj_x: false,
            adj_y: false,
        }));
        op.push(&self.plan)
            .map_err(host(format!("node {} ({})", node.index, node.label())))?;
        self.ops.push("batch_matmul".into());
        Ok(Act { t: yt, ..y })
    }

    /// B as a host tensor: an activation, whose quantization QLinearMatMul
    /// restates, or a constant quantized per tensor, placed with its data.
    fn right_operand(&mut self, node: &Node) -> Result<Act, LoadError> {
        let i = Self::right(node);
        let name = node.required(i)?;
        let operator = node.op_type == "QLinearMatMul";
        let (c, scale, zp) = match (self.consts.get(name), self.vals.get(name)) {
            (Some(c), _) if operator => {
                let (s, z, _) = self.qparams(node, 4, 5)?;
                let z = if node.input(5).is_none() && !c.unsigned {
                    0
                } else {
                    z
                };
                (c.clone(), s, z)
            }
            (None, Some(Val::DeqConst(q))) => {
                let (&[s], &[z]) = (q.scales.as_slice(), q.zps.as_slice()) else {
                    return Err(
                        node.unsupported("a batch of constant matrices quantized per channel")
                    );
                };
                (q.c.clone(), s, z)
            }
            _ => {
                let b = self.act(node, i)?;
                if operator {
                    let (s, z, _) = self.qparams(node, 4, 5)?;
                    if (s, z) != (b.scale, b.zp) {
                        return Err(
                            node.unsupported("B quantized otherwise than its producer says")
                        );
                    }
                }
                return Ok(b);
            }
        };
        let Data::I8(v) = &c.data else {
            return Err(node.unsupported("a constant B that is not int8 or uint8"));
        };
        let bytes: Vec<u8> = v.iter().map(|&x| x as u8).collect();
        let dims: Vec<u32> = c.dims.iter().map(|&d| d as u32).collect();
        let t = self.tensor(
            qdesc(&dims, Quantization::per_tensor(scale, zp)),
            &bytes,
            "a batch of constant matrices",
        )?;
        Ok(Act {
            t,
            dims: c.dims.clone(),
            scale,
            zp,
            unsigned: c.unsigned,
            flat: None,
        })
    }
}

/// numpy's matmul shape: the leading dimensions broadcast, then `[M, N]`;
/// None when the depths differ or the batches do not broadcast.
fn product_dims(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let (&[m, k], &[k2, n]) = (
        a.get(a.len().checked_sub(2)?..)?,
        b.get(b.len().checked_sub(2)?..)?,
    ) else {
        return None;
    };
    if k != k2 {
        return None;
    }
    let (la, lb) = (&a[..a.len() - 2], &b[..b.len() - 2]);
    let rank = la.len().max(lb.len());
    let at = |l: &[usize], i: usize| (i + l.len()).checked_sub(rank).map_or(1, |j| l[j]);
    let mut dims = Vec::with_capacity(rank + 2);
    for i in 0..rank {
        dims.push(match (at(la, i), at(lb, i)) {
            (p, q) if p == q => p,
            (1, q) => q,
            (p, 1) => p,
            _ => return None,
        });
    }
    dims.extend([m, n]);
    Some(dims)
}

#[cfg(test)]
mod tests {
    use super::product_dims;

    #[test]
    fn shapes_broadcast_as_numpys_matmul() {
        assert_eq!(product_dims(&[2, 3, 4], &[2, 4, 5]), Some(vec![2, 3, 5]));
        assert_eq!(product_dims(&[3, 4], &[2, 4, 5]), Some(vec![2, 3, 5]));
        assert_eq!(product_dims(&[1, 3, 4], &[6, 4, 5]), Some(vec![6, 3, 5]));
        assert_eq!(product_dims(&[2, 3, 4], &[4, 5]), Some(vec![2, 3, 5]));
        assert_eq!(product_dims(&[2, 3, 4], &[3, 4, 5]), None);
        assert_eq!(product_dims(&[3, 4], &[5, 5]), None);
        assert_eq!(product_dims(&[4], &[4, 5]), None);
    }
}
