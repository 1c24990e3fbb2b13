//! A recorded plan: prepared operators replayed in order.

use gatehouse_kernels::{KernelSet, Semantics};

use crate::NnFault;
use crate::budget::Budget;
use crate::lanes;
use crate::ops::{OpDesc, PreparedOp};
use crate::tensor::{TensorKey, TensorStore};
use crate::threads::Threads;

/// Longest plan accepted; far beyond any MLPerf Tiny model, short enough
/// that a hostile plugin cannot grow host state without bound.
pub const MAX_OPS: usize = 4096;

pub struct Plan {
    semantics: Semantics,
    ops: Vec<PreparedOp>,
    /// What its layers are split over.
    threads: Threads,
}

impl Plan {
    /// A plan whose layers run on the caller's thread.
    pub fn new(semantics: Semantics) -> Self {
        Self::on(semantics, Threads::one())
    }

    /// A plan whose big layers are split over `threads`.
    pub fn on(semantics: Semantics, threads: Threads) -> Self {
        Plan {
            semantics,
            ops: Vec::new(),
            threads,
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
        let prepared = PreparedOp::prepare_on(op, st, self.semantics, ks, &self.threads).map_err(
            |e| match e {
                NnFault::Invalid(m) => NnFault::Invalid(format!("operator {index}: {m}")),
                other => other,
            },
        )?;
        self.ops.push(prepared);
        Ok(index as u32)
    }

    /// Runs every operator in order, each admitted by `budget` first.
    pub fn run(
        &self,
        st: &mut TensorStore,
        ks: &KernelSet,
        budget: &mut Budget,
    ) -> Result<(), NnFault> {
        for (i, op) in self.ops.iter().enumerate() {
            budget.admit(op.work(), || format!("operator {i} ({})", op.name()))?;
            op.run(st, ks).map_err(|e| name_error(i, op, e))?;
        }
        Ok(())
    }

    /// Runs the plan once per whole `in_len`-byte input in `data`, each
    /// written to `input`, and returns the `output` bytes of every run back
    /// to back. `plan.invoke` and the native baseline of `gatehouse bench`
    /// share this, so the two measure the same work. Where it pays and
    /// gives the same bytes, the runs go side by side in lanes
    /// ([`lanes`](crate::lanes)). Every operator of every input is
    /// admitted by `budget` before it runs. The result is charged to the
    /// quota before it is allocated: the caller uncharges its length once
    /// the bytes have gone where they go.
    pub fn run_batch(
        &self,
        st: &mut TensorStore,
        ks: &KernelSet,
        budget: &mut Budget,
        input: TensorKey,
        output: TensorKey,
        data: &[u8],
    ) -> Result<Vec<u8>, NnFault> {
        let in_len = st.span(input)?.len();
        let out_len = st.span(output)?.len();
        if in_len == 0 || data.is_empty() || data.len() % in_len != 0 {
            return Err(NnFault::invalid(format!(
                "{} input bytes are not a whole number of {in_len} byte inputs",
                data.len()
            )));
        }
        let count = data.len() / in_len;
        let result_len = count
            .checked_mul(out_len)
            .ok_or_else(|| NnFault::QuotaExceeded("the result would not fit in memory".into()))?;
        st.charge_with(result_len as u64, || {
            format!("the result of {count} inputs of {out_len} output bytes each")
        })?;
        let mut result = Vec::new();
        let run = (|| {
            result.try_reserve_exact(result_len).map_err(|_| {
                NnFault::QuotaExceeded("the host could not allocate the result".into())
            })?;
            let (in_span, out_span) = (st.span(input)?, st.span(output)?);
            if let Some(layout) = lanes::layout(&self.ops, st, in_span, out_span, count) {
                for group in data.chunks(layout.lanes * in_len) {
                    lanes::run(
                        &self.ops,
                        st,
                        ks,
                        budget,
                        &layout,
                        in_span,
                        out_span,
                        group,
                        &mut result,
                        name_error,
                    )?;
                }
                return Ok(());
            }
            for chunk in data.chunks_exact(in_len) {
                st.write(input, 0, chunk)?;
                self.run(st, ks, budget)?;
                result.extend_from_slice(st.bytes(output)?);
            }
            Ok(())
        })();
        // The result is the caller's from here on (the guest's, once it is
        // copied into its memory, which follows at once).
        st.uncharge(result_len as u64);
        run.map(|()| result)
    }

    pub fn release(self, st: &mut TensorStore) {
        for op in self.ops {
            op.release(st);
        }
    }
}

/// Says which operator an argument error came from.
fn name_error(i: usize, op: &PreparedOp, e: NnFault) -> NnFault {
    match e {
        NnFault::Invalid(m) => NnFault::Invalid(format!("operator {i} ({}): {m}", op.name())),
        other => other,
    }
}
