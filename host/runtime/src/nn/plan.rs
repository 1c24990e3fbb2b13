//! A recorded plan: prepared operators replayed in order.

use gatehouse_kernels::{KernelSet, Semantics};

use crate::nn::NnFault;
use crate::nn::ops::{OpDesc, PreparedOp};
use crate::nn::tensor::TensorStore;

/// Longest plan accepted; far beyond any MLPerf Tiny model, short enough
/// that a hostile plugin cannot grow host state without bound.
pub const MAX_OPS: usize = 4096;

pub struct Plan {
    semantics: Semantics,
    ops: Vec<PreparedOp>,
}

impl Plan {
    pub fn new(semantics: Semantics) -> Self {
        Plan {
            semantics,
            ops: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn push(
        &mut self,
        op: &OpDesc,
        st: &mut TensorStore,
        ks: &KernelSet,
    ) -> Result<u32, NnFault> {
        if self.ops.len() >= MAX_OPS {
            return Err(NnFault::invalid(format!(
                "a plan holds at most {MAX_OPS} operators"
            )));
        }
        let index = self.ops.len();
        let prepared = PreparedOp::prepare(op, st, self.semantics, ks).map_err(|e| match e {
            NnFault::Invalid(m) => NnFault::Invalid(format!("operator {index}: {m}")),
            other => other,
        })?;
        self.ops.push(prepared);
        Ok(index as u32)
    }

    pub fn run(&self, st: &mut TensorStore, ks: &KernelSet) -> Result<(), NnFault> {
        for (i, op) in self.ops.iter().enumerate() {
            op.run(st, ks).map_err(|e| match e {
                NnFault::Invalid(m) => {
                    NnFault::Invalid(format!("operator {i} ({}): {m}", op.name()))
                }
                other => other,
            })?;
        }
        Ok(())
    }

    pub fn release(self, st: &mut TensorStore) {
        for op in self.ops {
            op.release(st);
        }
    }
}
