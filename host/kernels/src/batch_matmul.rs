//! BATCH_MATMUL of two int8 tensors: `[..., M, K] x [..., K, N]`, either
//! side optionally transposed (`adj_x`, `adj_y`), the leading dimensions
//! broadcast, int32 accumulation and one requantization. With TFLite's
//! reference semantics (`reference_ops::BatchMatMul`) it rounds twice
//! (measured against LiteRT's reference kernels: single rounding differs);
//! with onnxruntime's (QLinearMatMul) it scales in single precision
//! ([`Rounding::Nearest`]). It is attention's product of activations with
//! activations, so neither side is packed ahead.

use std::sync::Mutex;

use crate::error::{KernelError, check_len, ensure};
use crate::quant::{Requant, Rounding};

const OP: &str = "batch_matmul";

/// What a caller knows about a BATCH_MATMUL before it is prepared.
#[derive(Clone, Debug)]
pub struct BatchMatMulSpec {
    /// Shapes of rank 2 to 5.
    pub lhs_shape: Vec<usize>,
    pub rhs_shape: Vec<usize>,
    /// Transpose the last two dimensions of lhs (`adj_x`) or rhs (`adj_y`).
    pub adj_x: bool,
    pub adj_y: bool,
    /// Scales and zero points of lhs, rhs and the output.
    pub lhs_quant: (f32, i32),
    pub rhs_quant: (f32, i32),
    pub output_quant: (f32, i32),
    pub rounding: Rounding,
}

/// A BATCH_MATMUL ready to run.
#[derive(Debug)]
pub struct BatchMatMul {
    /// Broadcast batch: for each output matrix, its lhs and rhs matrix.
    pairs: Vec<(usize, usize)>,
    lhs_len: usize,
    rhs_len: usize,
    m: usize,
    k: usize,
    n: usize,
    adj_x: bool,
    adj_y: bool,
    lhs_offset: i32,
    rhs_offset: i32,
    output_offset: i32,
    requant: Requant,
    rounding: Rounding,
    output_shape: Vec<usize>,
    /// One lhs matrix as `[M][K]` and one rhs as `[N][K]`, so both are read
    /// along K.
    scratch: Mutex<(Vec<i8>, Vec<i8>)>,
}

impl BatchMatMul {
    pub fn new(spec: BatchMatMulSpec) -> Result<Self, KernelError> {
        let BatchMatMulSpec {
            lhs_shape,
            rhs_shape,
            adj_x,
            adj_y,
            lhs_quant,
            rhs_quant,
            output_quant,
            rounding,
        } = spec;
        for (what, s) in [("lhs", &lhs_shape), ("rhs", &rhs_shape)] {
            ensure!(
                OP,
                (2..=5).contains(&s.len()),
                "{what} has rank {}, expected 2 to 5",
                s.len()
            );
        }
        let last2 = |s: &[usize], adj: bool| {
            let (a, b) = (s[s.len() - 2], s[s.len() - 1]);
            if adj { (b, a) } else { (a, b) }
        };
        let (m, k) = last2(&lhs_shape, adj_x);
        let (k2, n) = last2(&rhs_shape, adj_y);
        ensure!(
            OP,
            k == k2,
            "lhs has depth {k} but rhs {k2} ({lhs_shape:?} x {rhs_shape:?}, adj {adj_x}/{adj_y})"
        );
        ensure!(OP, m > 0 && k > 0 && n > 0, "an empty matrix");
        // Leading dimensions, right-aligned to three, broadcast as numpy does.
        let lead = |s: &[usize]| {
            let mut d = [1usize; 3];
            let l = &s[..s.len() - 2];
            d[3 - l.len()..].copy_from_slice(l);
            d
        };
        let (ld, rd) = (lead(&lhs_shape), lead(&rhs_shape));
        let mut od = [0usize; 3];
        for i in 0..3 {
            ensure!(
                OP,
                ld[i] == rd[i] || ld[i] == 1 || rd[i] == 1,
                "batch dimensions {lhs_shape:?} and {rhs_shape:?} do not broadcast"
            );
            od[i] = ld[i].max(rd[i]);
        }
        let count = |s: &[usize]| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let too_big = || KernelError::new(OP, "shape overflows");
        let lhs_len = count(&lhs_shape).ok_or_else(too_big)?;
        let rhs_len = count(&rhs_shape).ok_or_else(too_big)?;
        let batches = count(&od).ok_or_else(too_big)?;
        count(&[batches, m, n]).ok_or_else(too_big)?;
        let index = |d: &[usize; 3], i: [usize; 3]| {
            let pick = |j: usize| if d[j] == 1 { 0 } else { i[j] };
            (pick(0) * d[1] + pick(1)) * d[2] + pick(2)
        };
        let mut pairs = Vec::with_capacity(batches);
        for a in 0..od[0] {
            for b in 0..od[1] {
                for c in 0..od[2] {
                    pairs.push((index(&ld, [a, b, c]), index(&rd, [a, b, c])));
                }
            }
        }
        for (what, (s, z)) in [
            ("lhs", lhs_quant),
            ("rhs", rhs_quant),
            ("output", output_quant),
        ] {
            ensure!(
                OP,
                s.is_finite() && s > 0.0,
                "{what} scale {s} is not positive"
            );
            ensure!(
                OP,
                (-128..=127).contains(&z),
                "{what} zero point {z} outside int8"
            );
        }
        let requant = if rounding == Rounding::Nearest {
            // QLinearMatMul's `a_scale * b_scale / y_scale`, in single
            // precision left to right (the last bit can differ from double's).
            Requant::nearest(lhs_quant.0 * rhs_quant.0 / output_quant.0)
        } else {
            // `GetQuantizedConvolutionMultipler`: the product in double.
            let real = lhs_quant.0 as f64 * rhs_quant.0 as f64 / output_quant.0 as f64;
            Requant::from_real(real, rounding)
        };
        let rank = lhs_shape.len().max(rhs_shape.len());
        let mut output_shape: Vec<usize> = od[3 - (rank - 2)..].to_vec();
        output_shape.extend([m, n]);
        Ok(BatchMatMul {
            pairs,
            lhs_len,
            rhs_len,
            m,
            k,
            n,
            adj_x,
            adj_y,
            lhs_offset: -lhs_quant.1,
            rhs_offset: -rhs_quant.1,
            output_offset: output_quant.1,
            requant,
            rounding,
            output_shape,
            scratch: Mutex::new((Vec::new(), Vec::new())),
        })
    }

    /// The output's shape: the broadcast batch, then `[M, N]`.
    pub fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    pub fn lhs_len(&self) -> usize {
        self.lhs_len
    }

    pub fn rhs_len(&self) -> usize {
        self.rhs_len
    }

    pub fn output_len(&self) -> usize {
        self.pairs.len() * self.m * self.n
    }

    /// Bytes the scratch grows to.
    pub fn scratch_bytes(&self) -> usize {
        (self.m + self.n) * self.k
    }

    /// Bytes held: the pairing of batch matrices and the scratch.
    pub fn bytes(&self) -> usize {
        self.pairs.len() * std::mem::size_of::<(usize, usize)>() + self.scratch_bytes()
    }

    pub fn macs(&self) -> u64 {
        (self.pairs.len() * self.m * self.n * self.k) as u64
    }
}

/// One `[rows][cols]` matrix as `[rows][cols]`: `src` itself, or, when it
/// is stored transposed (`[cols][rows]`), its transpose written into `out`.
/// `cached` says `out` already holds this matrix's transpose (a broadcast
/// operand seen by the previous pair), so it is not transposed again.
fn rows_of<'a>(
    src: &'a [i8],
    rows: usize,
    cols: usize,
    transposed: bool,
    cached: bool,
    out: &'a mut Vec<i8>,
) -> &'a [i8] {
    if !transposed {
        return src;
    }
    if !cached {
        out.clear();
        for r in 0..rows {
            out.extend((0..cols).map(|c| src[c * rows + r]));
        }
    }
    out
}

/// Scalar reference.
pub fn batch_matmul_scalar(
    kernel: &BatchMatMul,
    lhs: &[i8],
    rhs: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    check_len(OP, "lhs", lhs.len(), kernel.lhs_len)?;
    check_len(OP, "rhs", rhs.len(), kernel.rhs_len)?;
    check_len(OP, "output", output.len(), kernel.output_len())?;
    let (m, k, n) = (kernel.m, kernel.k, kernel.n);
    let mut guard = kernel.scratch.lock().unwrap_or_else(|p| p.into_inner());
    let (sa, sb) = &mut *guard;
    let mut last: Option<(usize, usize)> = None;
    for (o, &(li, ri)) in output.chunks_exact_mut(m * n).zip(&kernel.pairs) {
        // lhs as [M][K]; rhs as [N][K] (its transpose unless adj_y).
        let a = rows_of(
            &lhs[li * m * k..(li + 1) * m * k],
            m,
            k,
            kernel.adj_x,
            last.is_some_and(|(l, _)| l == li),
            sa,
        );
        let b = rows_of(
            &rhs[ri * k * n..(ri + 1) * k * n],
            n,
            k,
            !kernel.adj_y,
            last.is_some_and(|(_, r)| r == ri),
            sb,
        );
        last = Some((li, ri));
        for i in 0..m {
            let row = &a[i * k..(i + 1) * k];
            for j in 0..n {
                let col = &b[j * k..(j + 1) * k];
                let acc = row.iter().zip(col).fold(0i32, |acc, (&x, &y)| {
                    acc.wrapping_add(
                        (x as i32 + kernel.lhs_offset) * (y as i32 + kernel.rhs_offset),
                    )
                });
                let v = kernel.requant.apply(acc, kernel.rounding) + kernel.output_offset;
                o[i * n + j] = v.clamp(-128, 127) as i8;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(lhs: &[usize], rhs: &[usize], adj_x: bool, adj_y: bool) -> BatchMatMulSpec {
        BatchMatMulSpec {
            lhs_shape: lhs.to_vec(),
            rhs_shape: rhs.to_vec(),
            adj_x,
            adj_y,
            lhs_quant: (0.006, 18),
            rhs_quant: (0.005, -13),
            output_quant: (0.0095, -65),
            rounding: Rounding::Double,
        }
    }

    fn transpose(x: &[i8], rows: usize, cols: usize) -> Vec<i8> {
        (0..cols * rows)
            .map(|i| x[(i % rows) * cols + i / rows])
            .collect()
    }

    /// The arithmetic written out once per element, from the formula.
    fn by_formula(
        s: &BatchMatMulSpec,
        lhs: &[i8],
        rhs: &[i8],
        m: usize,
        k: usize,
        n: usize,
    ) -> Vec<i8> {
        let rq = Requant::from_real(
            s.lhs_quant.0 as f64 * s.rhs_quant.0 as f64 / s.output_quant.0 as f64,
            Rounding::Double,
        );
        let mut out = vec![0i8; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0i32;
                for d in 0..k {
                    acc += (lhs[i * k + d] as i32 - s.lhs_quant.1)
                        * (rhs[d * n + j] as i32 - s.rhs_quant.1);
                }
                out[i * n + j] =
                    (rq.apply(acc, Rounding::Double) + s.output_quant.1).clamp(-128, 127) as i8;
            }
        }
        out
    }

    proptest! {
        /// Any transposition flags give the product of the matrices as written.
        #[test]
        fn adjoints_transpose_the_operands(m in 1usize..6, k in 1usize..7, n in 1usize..6, adj_x: bool, adj_y: bool,
                                           xs in proptest::collection::vec(any::<i8>(), 36), ys in proptest::collection::vec(any::<i8>(), 36)) {
            let (lhs, rhs) = (&xs[..m * k], &ys[..k * n]);
            let s = spec(&if adj_x { [k, m] } else { [m, k] }, &if adj_y { [n, k] } else { [k, n] }, adj_x, adj_y);
            let want = by_formula(&s, lhs, rhs, m, k, n);
            let l = if adj_x { transpose(lhs, m, k) } else { lhs.to_vec() };
            let r = if adj_y { transpose(rhs, k, n) } else { rhs.to_vec() };
            let bmm = BatchMatMul::new(s).expect("valid");
            let mut got = vec![0; m * n];
            batch_matmul_scalar(&bmm, &l, &r, &mut got).expect("lengths");
            prop_assert_eq!(got, want);
        }

        /// A batch of one side against a single matrix of the other is each
        /// batch's product with that matrix.
        #[test]
        fn batches_broadcast(b in 1usize..4, m in 1usize..4, k in 1usize..5, n in 1usize..4,
                             xs in proptest::collection::vec(any::<i8>(), 48), ys in proptest::collection::vec(any::<i8>(), 16)) {
            let s = spec(&[b, 1, m, k], &[k, n], false, false);
            let bmm = BatchMatMul::new(s.clone()).expect("valid");
            prop_assert_eq!(bmm.output_shape(), &[b, 1, m, n][..]);
            let (lhs, rhs) = (&xs[..b * m * k], &ys[..k * n]);
            let mut got = vec![0; b * m * n];
            batch_matmul_scalar(&bmm, lhs, rhs, &mut got).expect("lengths");
            for i in 0..b {
                let want = by_formula(&s, &lhs[i * m * k..(i + 1) * m * k], rhs, m, k, n);
                prop_assert_eq!(&got[i * m * n..(i + 1) * m * n], &want[..]);
            }
        }
    }

    /// onnxruntime's requantization: each sum times the single-precision
    /// scale, rounded half to even, then the zero point.
    #[test]
    fn nearest_rounding_is_qlinear_matmuls() {
        let s = BatchMatMulSpec {
            rounding: Rounding::Nearest,
            // 0.5 · 0.25 / 0.25: every odd sum is a tie.
            lhs_quant: (0.5, 3),
            rhs_quant: (0.25, -2),
            output_quant: (0.25, 7),
            ..spec(&[1, 3], &[3, 2], false, false)
        };
        let (lhs, rhs) = ([4i8, 3, 6], [3i8, -2, -1, 0, 2, -2]);
        let bmm = BatchMatMul::new(s).expect("valid");
        let mut got = [0i8; 2];
        batch_matmul_scalar(&bmm, &lhs, &rhs, &mut got).expect("lengths");
        // Sums (x − 3)(y + 2): 1·5 + 0·1 + 3·4 = 17 and 0; 8.5 rounds to 8
        // (TFLite's rounding, away from zero, would give 9).
        assert_eq!(got, [15, 7]);
    }

    #[test]
    fn refuses_shapes_that_do_not_multiply() {
        assert!(BatchMatMul::new(spec(&[2, 3], &[4, 5], false, false)).is_err());
        assert!(BatchMatMul::new(spec(&[2, 2, 3], &[3, 3, 5], false, false)).is_err());
        assert!(BatchMatMul::new(spec(&[3], &[3, 5], false, false)).is_err());
        let ok = BatchMatMul::new(spec(&[2, 3], &[5, 3], false, true)).expect("adj_y");
        assert_eq!(ok.output_shape(), &[2, 5]);
        assert!(batch_matmul_scalar(&ok, &[0; 6], &[0; 14], &mut [0; 10]).is_err());
    }
}

/// Against LiteRT: both BATCH_MATMULs of a converted attention block (one
/// with `adj_y`), run by LiteRT's reference kernels
/// (`tests/fixtures/sequence_ops/make.py` says how).
#[cfg(test)]
mod litert {
    use super::*;
    use crate::litert_fixture::{ints, quant, reference};
    use serde_json::Value;

    #[test]
    fn equals_litert_reference_kernels() {
        let all: Value = reference();
        let ops = all["batch_matmul"].as_array().expect("ops");
        assert_eq!(ops.len(), 2);
        for (j, op) in ops.iter().enumerate() {
            let k = BatchMatMul::new(BatchMatMulSpec {
                lhs_shape: ints(&op["lhs_shape"]),
                rhs_shape: ints(&op["rhs_shape"]),
                adj_x: op["adj_x"].as_bool().expect("flag"),
                adj_y: op["adj_y"].as_bool().expect("flag"),
                lhs_quant: quant(&op["lhs_quant"]),
                rhs_quant: quant(&op["rhs_quant"]),
                output_quant: quant(&op["output_quant"]),
                rounding: Rounding::Double,
            })
            .expect("prepares");
            for (i, c) in op["cases"].as_array().expect("cases").iter().enumerate() {
                let mut out = vec![0i8; k.output_len()];
                batch_matmul_scalar(&k, &ints::<i8>(&c["lhs"]), &ints::<i8>(&c["rhs"]), &mut out)
                    .expect("lengths");
                assert_eq!(out, ints::<i8>(&c["output"]), "op {j}, case {i}");
            }
        }
    }
}
