//! Data-movement operators: PAD, CONCATENATION (and PACK), STRIDED_SLICE,
//! SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND. They copy bytes, so they work for
//! any element size; nothing is rescaled.

use crate::error::{KernelError, check_len, ensure};

pub const MAX_RANK: usize = 6;
/// Most inputs a CONCATENATION may have.
pub const MAX_CONCAT_INPUTS: usize = 32;

fn product(op: &'static str, d: &[usize]) -> Result<usize, KernelError> {
    d.iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or_else(|| KernelError::new(op, "shape overflows"))
}

fn strides(d: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; d.len()];
    for i in (0..d.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * d[i + 1];
    }
    s
}

/// Walk a multi-index over `dims` in row-major order.
fn odometer(idx: &mut [usize], dims: &[usize]) {
    for k in (0..dims.len()).rev() {
        idx[k] += 1;
        if idx[k] < dims[k] {
            return;
        }
        idx[k] = 0;
    }
}

/// PAD: `before[i]` and `after[i]` elements of `value` around dimension `i`.
#[derive(Clone, Debug)]
pub struct Pad {
    in_dims: Vec<usize>,
    out_dims: Vec<usize>,
    before: Vec<usize>,
    elem: usize,
    value: Vec<u8>,
}

impl Pad {
    pub fn new(
        in_dims: &[usize],
        paddings: &[(usize, usize)],
        value: Vec<u8>,
    ) -> Result<Self, KernelError> {
        ensure!(
            "pad",
            in_dims.len() == paddings.len() && in_dims.len() <= MAX_RANK,
            "{} paddings for rank {}",
            paddings.len(),
            in_dims.len()
        );
        ensure!("pad", !value.is_empty(), "no pad value");
        let out_dims: Vec<usize> = in_dims
            .iter()
            .zip(paddings)
            .map(|(&d, &(b, a))| d.saturating_add(b).saturating_add(a))
            .collect();
        product("pad", &out_dims)?
            .checked_mul(value.len())
            .ok_or_else(|| KernelError::new("pad", "shape overflows"))?;
        Ok(Pad {
            in_dims: in_dims.to_vec(),
            out_dims,
            before: paddings.iter().map(|p| p.0).collect(),
            elem: value.len(),
            value,
        })
    }

    pub fn out_dims(&self) -> &[usize] {
        &self.out_dims
    }
}

/// PAD by rows: the trailing dimensions without padding fold into one
/// contiguous row, so each inside row is one copy, where an element at a
/// time (a `memmove` per element) made PAD most of a small TCN's time.
pub fn pad(k: &Pad, input: &[u8], output: &mut [u8]) -> Result<(), KernelError> {
    let e = k.elem;
    check_len(
        "pad",
        "input",
        input.len(),
        k.in_dims.iter().product::<usize>() * e,
    )?;
    check_len(
        "pad",
        "output",
        output.len(),
        k.out_dims.iter().product::<usize>() * e,
    )?;
    for (o, &v) in output.iter_mut().zip(k.value.iter().cycle()) {
        *o = v;
    }
    // `r` is the innermost padded dimension; rows of it, `inner` bytes an
    // element, go between its fills.
    let mut inner = e;
    let mut r = k.out_dims.len();
    while r > 0 && k.in_dims[r - 1] == k.out_dims[r - 1] && k.before[r - 1] == 0 {
        r -= 1;
        inner *= k.in_dims[r];
    }
    if r == 0 {
        output.copy_from_slice(input);
        return Ok(());
    }
    let r = r - 1;
    let (in_row, out_row) = (k.in_dims[r] * inner, k.out_dims[r] * inner);
    let skip = k.before[r] * inner;
    let outer = &k.out_dims[..r];
    let in_strides = strides(&k.in_dims[..r]);
    let mut idx = [0usize; MAX_RANK];
    let rows: usize = outer.iter().product();
    for row in 0..rows {
        let inside = idx[..r]
            .iter()
            .enumerate()
            .all(|(d, &i)| i >= k.before[d] && i < k.before[d] + k.in_dims[d]);
        if inside && in_row > 0 {
            let off: usize = (0..r).map(|d| (idx[d] - k.before[d]) * in_strides[d]).sum();
            let at = row * out_row + skip;
            output[at..at + in_row].copy_from_slice(&input[off * in_row..(off + 1) * in_row]);
        }
        odometer(&mut idx[..r], outer);
    }
    Ok(())
}

/// CONCATENATION along `axis` of inputs that agree on every other dimension.
#[derive(Clone, Debug)]
pub struct Concat {
    outer: usize,
    /// Bytes each input contributes per outer step.
    chunks: Vec<usize>,
}

impl Concat {
    pub fn new(shapes: &[Vec<usize>], axis: usize, elem: usize) -> Result<Self, KernelError> {
        ensure!(
            "concatenation",
            !shapes.is_empty() && shapes.len() <= MAX_CONCAT_INPUTS,
            "{} inputs (1 to {MAX_CONCAT_INPUTS} supported)",
            shapes.len()
        );
        let rank = shapes[0].len();
        ensure!(
            "concatenation",
            axis < rank,
            "axis {axis} out of range for rank {rank}"
        );
        for s in shapes {
            ensure!(
                "concatenation",
                s.len() == rank
                    && s.iter()
                        .zip(&shapes[0])
                        .enumerate()
                        .all(|(i, (a, b))| i == axis || a == b),
                "shapes {shapes:?} disagree off axis {axis}"
            );
        }
        let outer = product("concatenation", &shapes[0][..axis])?;
        let inner = product("concatenation", &shapes[0][axis + 1..])?;
        let overflow = || KernelError::new("concatenation", "shape overflows");
        let chunks: Vec<usize> = shapes
            .iter()
            .map(|s| s[axis].checked_mul(inner)?.checked_mul(elem))
            .collect::<Option<_>>()
            .ok_or_else(overflow)?;
        // The output's size, which bounds every input's.
        chunks
            .iter()
            .try_fold(0usize, |a, &c| a.checked_add(c))
            .and_then(|total| total.checked_mul(outer))
            .ok_or_else(overflow)?;
        Ok(Concat { outer, chunks })
    }

    pub fn input_len(&self, i: usize) -> usize {
        self.outer * self.chunks[i]
    }
}

pub fn concat(k: &Concat, inputs: &[&[u8]], output: &mut [u8]) -> Result<(), KernelError> {
    concat_with(k, inputs, output, |_, out, x| out.copy_from_slice(x))
}

/// [`concat`] of int8 inputs where each input with a table has its bytes
/// mapped through it (onnxruntime's QLinearConcat requantizes an input
/// quantized unlike the output so, with a 256-entry table).
pub fn concat_mapped(
    k: &Concat,
    inputs: &[&[u8]],
    tables: &[Option<&[i8; 256]>],
    output: &mut [u8],
) -> Result<(), KernelError> {
    ensure!(
        "concatenation",
        tables.len() == inputs.len(),
        "{} tables for {} inputs",
        tables.len(),
        inputs.len()
    );
    concat_with(k, inputs, output, |i, out, x| match tables[i] {
        Some(t) => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = t[v as usize] as u8;
            }
        }
        None => out.copy_from_slice(x),
    })
}

fn concat_with(
    k: &Concat,
    inputs: &[&[u8]],
    output: &mut [u8],
    mut put: impl FnMut(usize, &mut [u8], &[u8]),
) -> Result<(), KernelError> {
    ensure!(
        "concatenation",
        inputs.len() == k.chunks.len(),
        "{} inputs, expected {}",
        inputs.len(),
        k.chunks.len()
    );
    for (i, x) in inputs.iter().enumerate() {
        check_len("concatenation", "input", x.len(), k.input_len(i))?;
    }
    check_len(
        "concatenation",
        "output",
        output.len(),
        k.outer * k.chunks.iter().sum::<usize>(),
    )?;
    let mut at = 0;
    for o in 0..k.outer {
        for (i, (x, &c)) in inputs.iter().zip(&k.chunks).enumerate() {
            put(i, &mut output[at..at + c], &x[o * c..(o + 1) * c]);
            at += c;
        }
    }
    Ok(())
}

/// STRIDED_SLICE, already resolved: for each input dimension the first
/// index, the step and how many elements to take.
#[derive(Clone, Debug)]
pub struct StridedSlice {
    in_dims: Vec<usize>,
    start: Vec<i64>,
    step: Vec<i64>,
    count: Vec<usize>,
    elem: usize,
}

impl StridedSlice {
    pub fn new(
        in_dims: &[usize],
        start: &[i64],
        step: &[i64],
        count: &[usize],
        elem: usize,
    ) -> Result<Self, KernelError> {
        let r = in_dims.len();
        ensure!(
            "strided_slice",
            r <= MAX_RANK && start.len() == r && step.len() == r && count.len() == r,
            "slice spec does not match rank {r}"
        );
        for d in 0..r {
            if count[d] == 0 {
                continue;
            }
            let first = start[d];
            let last = start[d] + step[d] * (count[d] as i64 - 1);
            ensure!(
                "strided_slice",
                step[d] != 0
                    && (0..in_dims[d] as i64).contains(&first)
                    && (0..in_dims[d] as i64).contains(&last),
                "dimension {d}: {} elements from {first} by {} leave 0..{}",
                count[d],
                step[d],
                in_dims[d]
            );
        }
        product("strided_slice", count)?;
        Ok(StridedSlice {
            in_dims: in_dims.to_vec(),
            start: start.to_vec(),
            step: step.to_vec(),
            count: count.to_vec(),
            elem,
        })
    }
}

pub fn strided_slice(k: &StridedSlice, input: &[u8], output: &mut [u8]) -> Result<(), KernelError> {
    let e = k.elem;
    check_len(
        "strided_slice",
        "input",
        input.len(),
        k.in_dims.iter().product::<usize>() * e,
    )?;
    check_len(
        "strided_slice",
        "output",
        output.len(),
        k.count.iter().product::<usize>() * e,
    )?;
    let st = strides(&k.in_dims);
    let mut idx = vec![0usize; k.count.len()];
    for chunk in output.chunks_exact_mut(e) {
        let off: usize = idx
            .iter()
            .enumerate()
            .map(|(d, &i)| (k.start[d] + k.step[d] * i as i64) as usize * st[d])
            .sum();
        chunk.copy_from_slice(&input[off * e..off * e + e]);
        odometer(&mut idx, &k.count);
    }
    Ok(())
}

/// TRANSPOSE: output dimension `i` is input dimension `perm[i]`.
#[derive(Clone, Debug)]
pub struct Transpose {
    in_dims: Vec<usize>,
    out_dims: Vec<usize>,
    /// For each output dimension, the input's stride along it, in elements.
    in_strides: Vec<usize>,
    elem: usize,
}

impl Transpose {
    /// `perm` must name each of the input's dimensions once.
    pub fn new(in_dims: &[usize], perm: &[usize], elem: usize) -> Result<Self, KernelError> {
        let r = in_dims.len();
        let mut seen = [false; MAX_RANK];
        let is_perm = r <= MAX_RANK
            && perm.len() == r
            && perm
                .iter()
                .all(|&p| p < r && !std::mem::replace(&mut seen[p], true));
        ensure!(
            "transpose",
            is_perm && elem > 0,
            "{perm:?} is not a permutation of {r} dimensions (at most {MAX_RANK})"
        );
        product("transpose", in_dims)?;
        let st = strides(in_dims);
        Ok(Transpose {
            in_dims: in_dims.to_vec(),
            out_dims: perm.iter().map(|&p| in_dims[p]).collect(),
            in_strides: perm.iter().map(|&p| st[p]).collect(),
            elem,
        })
    }

    pub fn out_dims(&self) -> &[usize] {
        &self.out_dims
    }
}

/// Walks the output in order, a run of its innermost dimension at a time,
/// reading each element where the permuted strides put it.
pub fn transpose(k: &Transpose, input: &[u8], output: &mut [u8]) -> Result<(), KernelError> {
    let e = k.elem;
    let n: usize = k.in_dims.iter().product();
    check_len("transpose", "input", input.len(), n * e)?;
    check_len("transpose", "output", output.len(), n * e)?;
    let Some(last) = k.out_dims.len().checked_sub(1) else {
        output.copy_from_slice(input);
        return Ok(());
    };
    let (inner, step) = (k.out_dims[last], k.in_strides[last]);
    let (outer_dims, outer_strides) = (&k.out_dims[..last], &k.in_strides[..last]);
    let mut idx = [0usize; MAX_RANK];
    let mut o = 0;
    while o < n {
        let base: usize = idx.iter().zip(outer_strides).map(|(i, s)| i * s).sum();
        if e == 1 {
            for (j, out) in output[o..o + inner].iter_mut().enumerate() {
                *out = input[base + j * step];
            }
        } else {
            for j in 0..inner {
                let (src, dst) = ((base + j * step) * e, (o + j) * e);
                output[dst..dst + e].copy_from_slice(&input[src..src + e]);
            }
        }
        o += inner;
        odometer(&mut idx[..last], outer_dims);
    }
    Ok(())
}

/// SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND on NHWC tensors.
#[derive(Clone, Debug)]
pub struct SpaceBatch {
    /// Input and output as [n, h, w, c·elem bytes].
    input: [usize; 4],
    output: [usize; 4],
    block: [usize; 2],
    /// Top/left padding (space to batch) or crops (batch to space).
    offset: [usize; 2],
    pad_value: Vec<u8>,
}

impl SpaceBatch {
    /// `input`/`output` are `[n, h, w, c]` in elements of `pad_value.len()` bytes.
    pub fn space_to_batch(
        input: [usize; 4],
        output: [usize; 4],
        block: [usize; 2],
        pad_before: [usize; 2],
        pad_value: Vec<u8>,
    ) -> Result<Self, KernelError> {
        let e = pad_value.len();
        ensure!(
            "space_to_batch_nd",
            block[0] > 0 && block[1] > 0 && e > 0,
            "block must be positive"
        );
        ensure!(
            "space_to_batch_nd",
            output[0] == input[0] * block[0] * block[1]
                && output[3] == input[3]
                && output[1] * block[0] >= input[1] + pad_before[0]
                && output[2] * block[1] >= input[2] + pad_before[1],
            "shapes {input:?} -> {output:?} do not fit block {block:?}"
        );
        Ok(SpaceBatch {
            input: [input[0], input[1], input[2], input[3] * e],
            output: [output[0], output[1], output[2], output[3] * e],
            block,
            offset: pad_before,
            pad_value,
        })
    }

    pub fn batch_to_space(
        input: [usize; 4],
        output: [usize; 4],
        block: [usize; 2],
        crop_before: [usize; 2],
        elem: usize,
    ) -> Result<Self, KernelError> {
        ensure!(
            "batch_to_space_nd",
            block[0] > 0 && block[1] > 0 && elem > 0,
            "block must be positive"
        );
        ensure!(
            "batch_to_space_nd",
            input[0] == output[0] * block[0] * block[1]
                && output[3] == input[3]
                && input[1] * block[0] >= output[1] + crop_before[0]
                && input[2] * block[1] >= output[2] + crop_before[1],
            "shapes {input:?} -> {output:?} do not fit block {block:?}"
        );
        Ok(SpaceBatch {
            input: [input[0], input[1], input[2], input[3] * elem],
            output: [output[0], output[1], output[2], output[3] * elem],
            block,
            offset: crop_before,
            pad_value: vec![],
        })
    }
}

fn at(d: &[usize; 4], n: usize, h: usize, w: usize) -> usize {
    ((n * d[1] + h) * d[2] + w) * d[3]
}

pub fn space_to_batch(k: &SpaceBatch, input: &[u8], output: &mut [u8]) -> Result<(), KernelError> {
    let (i, o) = (k.input, k.output);
    check_len(
        "space_to_batch_nd",
        "input",
        input.len(),
        i.iter().product(),
    )?;
    check_len(
        "space_to_batch_nd",
        "output",
        output.len(),
        o.iter().product(),
    )?;
    let e = k.pad_value.len();
    for ob in 0..o[0] {
        let ib = ob % i[0];
        let shift_w = (ob / i[0]) % k.block[1];
        let shift_h = (ob / i[0]) / k.block[1];
        for oh in 0..o[1] {
            for ow in 0..o[2] {
                let dst = &mut output[at(&o, ob, oh, ow)..at(&o, ob, oh, ow) + o[3]];
                let h = oh * k.block[0] + shift_h;
                let w = ow * k.block[1] + shift_w;
                if h < k.offset[0]
                    || h >= k.offset[0] + i[1]
                    || w < k.offset[1]
                    || w >= k.offset[1] + i[2]
                {
                    for c in dst.chunks_exact_mut(e) {
                        c.copy_from_slice(&k.pad_value);
                    }
                } else {
                    let s = at(&i, ib, h - k.offset[0], w - k.offset[1]);
                    dst.copy_from_slice(&input[s..s + i[3]]);
                }
            }
        }
    }
    Ok(())
}

pub fn batch_to_space(k: &SpaceBatch, input: &[u8], output: &mut [u8]) -> Result<(), KernelError> {
    let (i, o) = (k.input, k.output);
    check_len(
        "batch_to_space_nd",
        "input",
        input.len(),
        i.iter().product(),
    )?;
    check_len(
        "batch_to_space_nd",
        "output",
        output.len(),
        o.iter().product(),
    )?;
    for ib in 0..i[0] {
        let ob = ib % o[0];
        let spatial = ib / o[0];
        for ih in 0..i[1] {
            let Some(oh) = (ih * k.block[0] + spatial / k.block[1])
                .checked_sub(k.offset[0])
                .filter(|&h| h < o[1])
            else {
                continue;
            };
            for iw in 0..i[2] {
                let Some(ow) = (iw * k.block[1] + spatial % k.block[1])
                    .checked_sub(k.offset[1])
                    .filter(|&w| w < o[2])
                else {
                    continue;
                };
                let (d, s) = (at(&o, ob, oh, ow), at(&i, ib, ih, iw));
                output[d..d + o[3]].copy_from_slice(&input[s..s + i[3]]);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn transpose_by_hand() {
        // [2, 3] -> [3, 2]
        let k = Transpose::new(&[2, 3], &[1, 0], 1).unwrap();
        assert_eq!(k.out_dims(), [3, 2]);
        let mut out = [0u8; 6];
        transpose(&k, &[1, 2, 3, 4, 5, 6], &mut out).unwrap();
        assert_eq!(out, [1, 4, 2, 5, 3, 6]);
        // NCHW [1, 2, 1, 2] -> NHWC, two-byte elements.
        let k = Transpose::new(&[1, 2, 1, 2], &[0, 2, 3, 1], 2).unwrap();
        let mut out = [0u8; 8];
        transpose(&k, &[1, 1, 2, 2, 3, 3, 4, 4], &mut out).unwrap();
        assert_eq!(out, [1, 1, 3, 3, 2, 2, 4, 4]);
        for bad in [&[0, 0][..], &[0, 2], &[0]] {
            assert!(Transpose::new(&[2, 3], bad, 1).is_err(), "{bad:?}");
        }
        assert!(transpose(&k, &[0; 7], &mut out).is_err());
    }

    proptest! {
        /// A transpose then its inverse gives the input back, and each
        /// output element is the input's at the permuted index.
        #[test]
        fn transpose_and_its_inverse(
            dims in proptest::collection::vec(1usize..5, 1..=MAX_RANK),
            seed in any::<u64>(),
        ) {
            let r = dims.len();
            let mut perm: Vec<usize> = (0..r).collect();
            let mut x = seed;
            for i in (1..r).rev() {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                perm.swap(i, (x >> 33) as usize % (i + 1));
            }
            let mut inverse = vec![0; r];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            let n: usize = dims.iter().product();
            let input: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let k = Transpose::new(&dims, &perm, 1).unwrap();
            let mut out = vec![0u8; n];
            transpose(&k, &input, &mut out).unwrap();
            let (ist, ost) = (strides(&dims), strides(k.out_dims()));
            let mut idx = vec![0usize; r];
            for _ in 0..n {
                let o: usize = idx.iter().zip(&ost).map(|(i, s)| i * s).sum();
                let i: usize = (0..r).map(|d| idx[d] * ist[perm[d]]).sum();
                prop_assert_eq!(out[o], input[i]);
                odometer(&mut idx, k.out_dims());
            }
            let back = Transpose::new(k.out_dims(), &inverse, 1).unwrap();
            let mut again = vec![0u8; n];
            transpose(&back, &out, &mut again).unwrap();
            prop_assert_eq!(again, input);
        }
    }

    /// PAD an element at a time: the oracle for the row-wise [`pad`].
    fn pad_by_element(k: &Pad, input: &[u8], output: &mut [u8]) {
        let e = k.elem;
        let in_strides = strides(&k.in_dims);
        let mut idx = vec![0usize; k.out_dims.len()];
        for chunk in output.chunks_exact_mut(e) {
            let mut off = 0;
            let mut inside = true;
            for (d, &i) in idx.iter().enumerate() {
                let b = k.before[d];
                if i < b || i >= b + k.in_dims[d] {
                    inside = false;
                    break;
                }
                off += (i - b) * in_strides[d];
            }
            if inside {
                chunk.copy_from_slice(&input[off * e..off * e + e]);
            } else {
                chunk.copy_from_slice(&k.value);
            }
            odometer(&mut idx, &k.out_dims);
        }
    }

    proptest! {
        /// Any rank, element size and padding (none, some dimensions,
        /// empty dimensions) pads as the element-wise oracle does.
        #[test]
        fn pad_by_rows_matches_by_element(
            dims in proptest::collection::vec((0usize..4, 0usize..3, 0usize..3), 0..=4),
            e in 1usize..=4,
            seed in any::<u8>(),
        ) {
            let in_dims: Vec<usize> = dims.iter().map(|d| d.0).collect();
            let paddings: Vec<(usize, usize)> = dims.iter().map(|d| (d.1, d.2)).collect();
            let value: Vec<u8> = (0..e as u8).map(|i| 200 + i).collect();
            let k = Pad::new(&in_dims, &paddings, value).unwrap();
            let n: usize = in_dims.iter().product::<usize>() * e;
            let input: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect();
            let out_len = k.out_dims().iter().product::<usize>() * e;
            let (mut got, mut want) = (vec![0u8; out_len], vec![1u8; out_len]);
            pad(&k, &input, &mut got).unwrap();
            pad_by_element(&k, &input, &mut want);
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn pad_surrounds_with_the_value() {
        let k = Pad::new(&[2, 2], &[(1, 0), (0, 1)], vec![9]).unwrap();
        let mut out = [0u8; 9];
        pad(&k, &[1, 2, 3, 4], &mut out).unwrap();
        assert_eq!(out, [9, 9, 9, 1, 2, 9, 3, 4, 9]);
    }

    #[test]
    fn concat_interleaves_by_outer_step() {
        let k = Concat::new(&[vec![2, 1], vec![2, 2]], 1, 1).unwrap();
        let mut out = [0u8; 6];
        concat(&k, &[&[1, 2], &[3, 4, 5, 6]], &mut out).unwrap();
        assert_eq!(out, [1, 3, 4, 2, 5, 6]);
        assert!(Concat::new(&[vec![2, 1], vec![3, 2]], 1, 1).is_err());
    }

    #[test]
    fn slice_steps_backwards() {
        // [3,4] take rows 0..3 by 2, columns 3 down to 0 by -2.
        let k = StridedSlice::new(&[3, 4], &[0, 3], &[2, -2], &[2, 2], 1).unwrap();
        let mut out = [0u8; 4];
        strided_slice(&k, &(0..12).collect::<Vec<u8>>(), &mut out).unwrap();
        assert_eq!(out, [3, 1, 11, 9]);
        assert!(StridedSlice::new(&[3, 4], &[0, 3], &[2, 2], &[2, 2], 1).is_err());
    }

    #[test]
    fn space_to_batch_and_back_round_trip() {
        let x: Vec<u8> = (0..16).collect();
        let s = SpaceBatch::space_to_batch([1, 4, 4, 1], [4, 2, 2, 1], [2, 2], [0, 0], vec![0])
            .unwrap();
        let mut mid = vec![0u8; 16];
        space_to_batch(&s, &x, &mut mid).unwrap();
        assert_eq!(&mid[..4], &[0, 2, 8, 10]);
        let b = SpaceBatch::batch_to_space([4, 2, 2, 1], [1, 4, 4, 1], [2, 2], [0, 0], 1).unwrap();
        let mut back = vec![0u8; 16];
        batch_to_space(&b, &mid, &mut back).unwrap();
        assert_eq!(back, x);
    }
}
