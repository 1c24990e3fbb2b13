//! Batched invocations run layer by layer: every tensor base the plan writes
//! gets one lane per invocation, and each fully connected layer runs once
//! over the rows of all lanes, a GEMM where one invocation is a GEMV.
//!
//! A batch is only laid out in lanes when the result equals running the
//! invocations one after another: every byte an operator reads must have
//! been written earlier in the same invocation. A plan that carries state
//! from one invocation to the next (reads before it writes) keeps running
//! invocation by invocation.

use gatehouse_kernels::KernelSet;

use crate::NnFault;
use crate::budget::Budget;
use crate::ops::PreparedOp;
use crate::tensor::{Span, TensorStore};

/// The most bytes a batch's extra lanes take; beyond it lanes run in groups.
/// Small enough that the lanes of a fully connected model stay in L2.
const LANE_BYTES: usize = 1 << 20;
/// The most invocations run side by side.
const MAX_LANES: usize = 64;

/// How a batch runs in lanes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Base slots the plan writes: each gets a lane per invocation.
    bases: Vec<u32>,
    /// Invocations run side by side.
    pub lanes: usize,
}

/// The layout for `count` invocations, or `None` when they must run one
/// after another: a single one, a plan whose work is not mostly fully
/// connected layers (conv layers already make a GEMM of their pixels, and
/// lanes would only grow the working set), state carried between
/// invocations, or no room in the quota.
pub fn layout(
    ops: &[PreparedOp],
    st: &TensorStore,
    input: Span,
    output: Span,
    count: usize,
) -> Option<Layout> {
    // Lanes move each operator's first output only.
    if count < 2
        || input.is_empty()
        || output.is_empty()
        || ops.iter().any(|op| !op.extra_outputs().is_empty())
    {
        return None;
    }
    let (mut fc, mut all) = (0u64, 0u64);
    for op in ops {
        all = all.saturating_add(op.macs());
        if op.fully_connected().is_some() {
            fc = fc.saturating_add(op.macs());
        }
    }
    if fc == 0 || fc < all - fc {
        return None;
    }
    let mut bases = vec![input.base(), output.base()];
    bases.extend(ops.iter().map(|op| op.output().base()));
    bases.sort_unstable();
    bases.dedup();
    let mut written = vec![input];
    for op in ops {
        let unwritten = |s: &Span| {
            bases.binary_search(&s.base()).is_ok() && !written.iter().any(|w| w.contains(s))
        };
        if op.inputs().iter().any(unwritten) {
            return None;
        }
        written.push(op.output());
    }
    if !written.iter().any(|w| w.contains(&output)) {
        return None;
    }
    // Each lane's bases, and the rows of the widest fully connected layer
    // gathered in and out of the lanes for one kernel call.
    let (rows_in, rows_out) = gathered(ops);
    let per_lane: usize = bases.iter().map(|&b| st.base_len(b)).sum::<usize>() + rows_in + rows_out;
    let headroom = st.quota().saturating_sub(st.used());
    let room = LANE_BYTES.min(usize::try_from(headroom).unwrap_or(usize::MAX));
    // The first lane's bases exist already; its gathered rows do not.
    let room = room.saturating_sub(rows_in + rows_out);
    let lanes = count.min(MAX_LANES).min(1 + room / per_lane.max(1));
    (lanes >= 2).then_some(Layout { bases, lanes })
}

/// Bytes of one lane's rows that fully connected layers gather into one
/// kernel call: the widest input and the widest output.
fn gathered(ops: &[PreparedOp]) -> (usize, usize) {
    let fc = || ops.iter().filter(|op| op.fully_connected().is_some());
    (
        fc().map(|op| op.inputs()[0].len()).max().unwrap_or(0),
        fc().map(|op| op.output().len()).max().unwrap_or(0),
    )
}

/// Where each widened base's lanes are.
struct Strides(Vec<(u32, usize)>);

impl Strides {
    /// Moves a span into lane `lane`; spans of bases without lanes (weights)
    /// are shared by every lane.
    fn at(&self, lane: usize) -> impl Fn(Span) -> Span + '_ {
        move |s| match self.0.iter().find(|(b, _)| *b == s.base()) {
            Some(&(_, stride)) => s.shifted(lane * stride),
            None => s,
        }
    }
}

/// Run the whole inputs in `data` (at most `layout.lanes` of them) side by
/// side and append their outputs to `result`. Each operator is admitted by
/// `budget` for all its lanes before it runs. `name_error` says which
/// operator failed.
#[allow(clippy::too_many_arguments)]
pub fn run(
    ops: &[PreparedOp],
    st: &mut TensorStore,
    ks: &KernelSet,
    budget: &mut Budget,
    layout: &Layout,
    input: Span,
    output: Span,
    data: &[u8],
    result: &mut Vec<u8>,
    name_error: impl Fn(usize, &PreparedOp, NnFault) -> NnFault,
) -> Result<(), NnFault> {
    let n = data.len() / input.len().max(1);
    let mut strides = Strides(Vec::with_capacity(layout.bases.len()));
    // The gathered rows are charged for as long as they are held.
    let (max_in, max_out) = gathered(ops);
    let rows_bytes = (n * (max_in + max_out)) as u64;
    st.charge(rows_bytes, "a batch's gathered rows")?;
    let outcome = (|| {
        for &b in &layout.bases {
            strides.0.push((b, st.widen(b, n)?));
        }
        for (lane, chunk) in data.chunks_exact(input.len()).enumerate() {
            st.write_span(strides.at(lane)(input), chunk)?;
        }
        // Rows of all lanes, gathered for one call of the fully connected
        // kernel, in buffers sized (and charged) once for the widest layer.
        let (mut rows_in, mut rows_out) = (
            Vec::with_capacity(n * max_in),
            Vec::with_capacity(n * max_out),
        );
        for (i, op) in ops.iter().enumerate() {
            budget.admit(op.work().times(n), || {
                format!("operator {i} ({}) for {n} inputs", op.name())
            })?;
            let r = match op.fully_connected() {
                Some(k) => {
                    let (a, o) = (op.inputs()[0], op.output());
                    if o.is_empty() {
                        continue;
                    }
                    rows_in.clear();
                    for lane in 0..n {
                        rows_in.extend_from_slice(st.span_bytes(strides.at(lane)(a))?);
                    }
                    rows_out.clear();
                    rows_out.resize(n * o.len(), 0u8);
                    (ks.fully_connected)(
                        k,
                        bytemuck::cast_slice(&rows_in),
                        bytemuck::cast_slice_mut(&mut rows_out),
                    )
                    .map_err(NnFault::from)
                    .and_then(|()| {
                        rows_out
                            .chunks_exact(o.len())
                            .enumerate()
                            .try_for_each(|(lane, row)| st.write_span(strides.at(lane)(o), row))
                    })
                }
                None => (0..n).try_for_each(|lane| op.run_at(st, ks, strides.at(lane))),
            };
            r.map_err(|e| name_error(i, op, e))?;
        }
        for lane in 0..n {
            result.extend_from_slice(st.span_bytes(strides.at(lane)(output))?);
        }
        Ok(())
    })();
    // The store must be whole again before the guest runs, error or not.
    for &(b, stride) in &strides.0 {
        st.narrow(b, stride, n.saturating_sub(1));
    }
    st.uncharge(rows_bytes);
    outcome
}

#[cfg(test)]
mod tests {
    use gatehouse_kernels::{Activation, Semantics, dispatch};

    use super::*;
    use crate::ops::{FullyConnected, OpDesc};
    use crate::tensor::{DType, Desc, Quant, TensorKey};

    fn desc(dtype: DType, shape: &[usize], scale: f32, zero_point: i32) -> Desc {
        Desc {
            dtype,
            shape: shape.to_vec(),
            quant: Some(Quant {
                scales: vec![scale],
                zero_points: vec![zero_point],
                axis: 0,
            }),
        }
    }

    /// Bytes that differ between seeds.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// An arena holding `x` (8), `h` (20) and `y` (4), and the operators
    /// `x -> h -> y` of two fully connected layers; `h_from` feeds the second
    /// layer (`h` itself, or bytes no operator writes).
    struct Net {
        st: TensorStore,
        ops: Vec<PreparedOp>,
        arena: TensorKey,
        x: TensorKey,
        y: TensorKey,
    }

    fn net(quota: u64, ks: &KernelSet, h_from: usize) -> Net {
        let mut st = TensorStore::new(quota);
        let arena = st.create(desc(DType::I8, &[96], 1.0, 0)).unwrap();
        let x = st
            .view(arena, 0, desc(DType::I8, &[1, 8], 0.05, -3))
            .unwrap();
        let h = st
            .view(arena, 16, desc(DType::I8, &[1, 20], 0.1, -128))
            .unwrap();
        let h_in = st
            .view(arena, h_from as u64, desc(DType::I8, &[1, 20], 0.1, -128))
            .unwrap();
        let y = st
            .view(arena, 48, desc(DType::I8, &[1, 4], 0.2, 5))
            .unwrap();
        let layer = |st: &mut TensorStore, input, output, depth: usize, units: usize, seed| {
            let w = st
                .create(desc(DType::I8, &[units, depth], 0.02, 0))
                .unwrap();
            st.write(w, 0, &noise(units * depth, seed)).unwrap();
            let b = st.create(desc(DType::I32, &[units], 0.001, 0)).unwrap();
            let bias: Vec<u8> = (0..units as i32)
                .flat_map(|u| (u * 37 - 300).to_le_bytes())
                .collect();
            st.write(b, 0, &bias).unwrap();
            let op = OpDesc::from(FullyConnected {
                input,
                weights: w,
                bias: Some(b),
                output,
                activation: Activation::Relu,
            });
            PreparedOp::prepare(&op, st, Semantics::TfliteReference, ks).unwrap()
        };
        let ops = vec![
            layer(&mut st, x, h, 8, 20, 1),
            layer(&mut st, h_in, y, 20, 4, 2),
        ];
        Net {
            st,
            ops,
            arena,
            x,
            y,
        }
    }

    fn one_by_one(n: &mut Net, ks: &KernelSet, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in data.chunks_exact(8) {
            n.st.write(n.x, 0, chunk).unwrap();
            for op in &n.ops {
                op.run(&mut n.st, ks).unwrap();
            }
            out.extend_from_slice(n.st.bytes(n.y).unwrap());
        }
        out
    }

    fn side_by_side(n: &mut Net, ks: &KernelSet, data: &[u8], layout: &Layout) -> Vec<u8> {
        let (i, o) = (n.st.span(n.x).unwrap(), n.st.span(n.y).unwrap());
        let mut out = Vec::new();
        for group in data.chunks(layout.lanes * 8) {
            run(
                &n.ops,
                &mut n.st,
                ks,
                &mut Budget::unlimited(),
                layout,
                i,
                o,
                group,
                &mut out,
                |_, _, e| e,
            )
            .unwrap();
        }
        out
    }

    #[test]
    fn lanes_give_the_bytes_of_one_invocation_after_another() {
        for ks in dispatch::available() {
            for count in [2, 5, 13] {
                let data = noise(8 * count, count as u64);
                let mut seq = net(1 << 20, ks, 16);
                let want = one_by_one(&mut seq, ks, &data);
                let mut lanes = net(1 << 20, ks, 16);
                let (i, o) = (
                    lanes.st.span(lanes.x).unwrap(),
                    lanes.st.span(lanes.y).unwrap(),
                );
                let used = lanes.st.used();
                let layout = layout(&lanes.ops, &lanes.st, i, o, count).expect("a layout");
                assert_eq!(layout.lanes, count);
                assert_eq!(
                    side_by_side(&mut lanes, ks, &data, &layout),
                    want,
                    "{}",
                    ks.name
                );
                // The store is as a sequential run leaves it, quota included.
                assert_eq!(lanes.st.used(), used);
                assert_eq!(
                    lanes.st.bytes(lanes.arena).unwrap(),
                    seq.st.bytes(seq.arena).unwrap()
                );
            }
        }
    }

    #[test]
    fn a_small_quota_runs_fewer_lanes_in_groups() {
        let ks = dispatch::available().last().unwrap();
        let mut n = net(1 << 20, ks, 16);
        let (i, o) = (n.st.span(n.x).unwrap(), n.st.span(n.y).unwrap());
        // Room for two more lanes (an arena of 96 bytes and 20 + 20 bytes
        // of gathered rows each) and the first lane's rows, not three.
        let quota = n.st.used() + 40 + 2 * 136 + 50;
        let mut small = net(quota, ks, 16);
        let layout = layout(&small.ops, &small.st, i, o, 10).expect("a layout");
        assert_eq!(layout.lanes, 3);
        let data = noise(80, 7);
        let want = one_by_one(&mut n, ks, &data);
        assert_eq!(side_by_side(&mut small, ks, &data, &layout), want);
    }

    #[test]
    fn state_carried_between_invocations_keeps_them_in_order() {
        let ks = dispatch::available().last().unwrap();
        // The second layer reads bytes 60..80, which nothing in the plan
        // writes: what is there comes from before the invocation.
        let n = net(1 << 20, ks, 60);
        let (i, o) = (n.st.span(n.x).unwrap(), n.st.span(n.y).unwrap());
        assert_eq!(layout(&n.ops, &n.st, i, o, 8), None);
        // A single invocation has nothing to batch.
        let n = net(1 << 20, ks, 16);
        assert_eq!(layout(&n.ops, &n.st, i, o, 1), None);
    }
}
