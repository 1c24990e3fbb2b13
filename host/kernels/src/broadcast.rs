//! Numpy-style broadcasting of two operands to an output shape, up to rank 6
//! (TFLite's `BroadcastBinaryFunction6DSlow`).

use crate::error::{KernelError, ensure};

pub const MAX_RANK: usize = 6;

/// How two inputs map onto an output: same shape (a flat walk), or
/// per-dimension strides where a size-1 dimension repeats.
#[derive(Clone, Debug)]
pub struct Broadcast {
    pub len1: usize,
    pub len2: usize,
    pub out_len: usize,
    strided: Option<([usize; MAX_RANK], [usize; MAX_RANK], [usize; MAX_RANK])>,
}

fn pad(shape: &[usize]) -> [usize; MAX_RANK] {
    let mut d = [1usize; MAX_RANK];
    d[MAX_RANK - shape.len()..].copy_from_slice(shape);
    d
}

impl Broadcast {
    pub fn new(
        op: &'static str,
        shape1: &[usize],
        shape2: &[usize],
        out: &[usize],
    ) -> Result<Self, KernelError> {
        let rank = out.len();
        ensure!(
            op,
            rank <= MAX_RANK && shape1.len() <= rank && shape2.len() <= rank,
            "ranks above {MAX_RANK} or inputs of higher rank than the output"
        );
        let (d1, d2, dout) = (pad(shape1), pad(shape2), pad(out));
        for i in 0..MAX_RANK {
            ensure!(
                op,
                (d1[i] == dout[i] || d1[i] == 1)
                    && (d2[i] == dout[i] || d2[i] == 1)
                    && dout[i] == d1[i].max(d2[i]),
                "shapes {shape1:?} and {shape2:?} do not broadcast to {out:?}"
            );
        }
        let len = |d: &[usize; MAX_RANK]| d.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        let (Some(len1), Some(len2), Some(out_len)) = (len(&d1), len(&d2), len(&dout)) else {
            return Err(KernelError::new(op, "shape overflows"));
        };
        let strides = |d: &[usize; MAX_RANK]| {
            let mut st = [0usize; MAX_RANK];
            let mut acc = 1;
            for i in (0..MAX_RANK).rev() {
                st[i] = if d[i] == 1 { 0 } else { acc };
                acc *= d[i];
            }
            st
        };
        let strided = if d1 == dout && d2 == dout {
            None
        } else {
            Some((dout, strides(&d1), strides(&d2)))
        };
        Ok(Broadcast {
            len1,
            len2,
            out_len,
            strided,
        })
    }

    /// Both inputs have the output's shape: element i meets element i.
    pub fn is_elementwise(&self) -> bool {
        self.strided.is_none()
    }

    /// Call `f(out_index, index1, index2)` for every output element in order.
    #[inline(always)]
    pub fn for_each(&self, mut f: impl FnMut(usize, usize, usize)) {
        match &self.strided {
            None => (0..self.out_len).for_each(|i| f(i, i, i)),
            Some((dims, s1, s2)) => {
                // The offsets of the outer dimensions once per run of the
                // innermost one, which then steps by its two strides.
                const LAST: usize = MAX_RANK - 1;
                let (inner, i1, i2) = (dims[LAST], s1[LAST], s2[LAST]);
                let mut idx = [0usize; MAX_RANK];
                let mut o = 0;
                while o < self.out_len {
                    let (mut a, mut b) = (0, 0);
                    for i in 0..LAST {
                        a += idx[i] * s1[i];
                        b += idx[i] * s2[i];
                    }
                    for j in 0..inner {
                        f(o + j, a + j * i1, b + j * i2);
                    }
                    o += inner;
                    for i in (0..LAST).rev() {
                        idx[i] += 1;
                        if idx[i] < dims[i] {
                            break;
                        }
                        idx[i] = 0;
                    }
                }
            }
        }
    }
}
