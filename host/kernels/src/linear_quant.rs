//! QuantizeLinear and DequantizeLinear whose scale and zero point vary
//! over the tensor: one per slice along an axis, or one per block of
//! `block` slices along it and per position in every other dimension
//! (ONNX's blocked quantization), as onnxruntime computes each element:
//! `saturate(round_half_even(x / s) + z)` and `(q − z) · s`, in single
//! precision. A per-tensor quantization is the case of one parameter.

use crate::elementwise::{Qp, quantize_linear};
use crate::error::{KernelError, check_len, ensure};

const OP: &str = "linear_quant";

/// Which scale and zero point each element of a tensor takes.
#[derive(Clone, Debug)]
pub struct ParamLayout {
    /// The tensor's dimensions, and for each the parameters' stride (0
    /// where the parameters broadcast).
    dims: Vec<usize>,
    strides: Vec<usize>,
    axis: usize,
    block: usize,
    elements: usize,
    params: usize,
}

impl ParamLayout {
    /// Parameters of shape `param_dims` (the tensor's rank) over a tensor
    /// of `dims`: on `axis`, 1 or `ceil(dims[axis] / block)`; elsewhere 1
    /// or the tensor's own.
    pub fn new(
        dims: &[usize],
        param_dims: &[usize],
        axis: usize,
        block: usize,
    ) -> Result<ParamLayout, KernelError> {
        ensure!(
            OP,
            dims.len() == param_dims.len() && axis < dims.len(),
            "parameters of shape {param_dims:?} on axis {axis} of a {dims:?} tensor"
        );
        ensure!(OP, block > 0, "a block of 0 slices");
        let count = |d: &[usize]| d.iter().try_fold(1usize, |a, &x| a.checked_mul(x));
        let too_big = || KernelError::new(OP, "shape overflows");
        let elements = count(dims).ok_or_else(too_big)?;
        let params = count(param_dims).ok_or_else(too_big)?;
        for (k, (&d, &p)) in dims.iter().zip(param_dims).enumerate() {
            let own = if k == axis { d.div_ceil(block) } else { d };
            ensure!(
                OP,
                p == 1 || p == own,
                "parameters of shape {param_dims:?} do not fit a {dims:?} tensor \
                 (axis {axis}, blocks of {block})"
            );
        }
        let mut strides = vec![0; dims.len()];
        let mut step = 1;
        for k in (0..dims.len()).rev() {
            if param_dims[k] != 1 {
                strides[k] = step;
            }
            step *= param_dims[k];
        }
        Ok(ParamLayout {
            dims: dims.to_vec(),
            strides,
            axis,
            block,
            elements,
            params,
        })
    }

    /// Elements of the tensor.
    pub fn elements(&self) -> usize {
        self.elements
    }

    /// Scales (and zero points) expected.
    pub fn params(&self) -> usize {
        self.params
    }

    /// The parameter of each element, in order.
    fn each(&self) -> impl Iterator<Item = usize> + '_ {
        let rank = self.dims.len();
        let mut coords = vec![0usize; rank];
        (0..self.elements).map(move |i| {
            if i > 0 {
                for k in (0..rank).rev() {
                    coords[k] += 1;
                    if coords[k] < self.dims[k] {
                        break;
                    }
                    coords[k] = 0;
                }
            }
            coords
                .iter()
                .enumerate()
                .map(|(k, &c)| {
                    let c = if k == self.axis { c / self.block } else { c };
                    c * self.strides[k]
                })
                .sum()
        })
    }

    fn check(&self, scales: &[f32], zero_points: &[i32]) -> Result<(), KernelError> {
        check_len(OP, "scales", scales.len(), self.params)?;
        check_len(OP, "zero points", zero_points.len(), self.params)?;
        if let Some(s) = scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(KernelError::new(OP, format!("scale {s} is not positive")));
        }
        if let Some(z) = zero_points.iter().find(|z| !(-128..=127).contains(*z)) {
            return Err(KernelError::new(OP, format!("zero point {z} outside int8")));
        }
        Ok(())
    }
}

/// QuantizeLinear of `input` (float32, little-endian bytes) into `output`.
pub fn quantize(
    layout: &ParamLayout,
    scales: &[f32],
    zero_points: &[i32],
    input: &[u8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    layout.check(scales, zero_points)?;
    check_len(OP, "output", output.len(), layout.elements)?;
    check_len(OP, "input bytes", input.len(), layout.elements * 4)?;
    for ((o, x), p) in output
        .iter_mut()
        .zip(input.chunks_exact(4))
        .zip(layout.each())
    {
        let q = Qp {
            scale: scales[p],
            zero_point: zero_points[p],
        };
        *o = quantize_linear(q, f32::from_le_bytes([x[0], x[1], x[2], x[3]]));
    }
    Ok(())
}

/// DequantizeLinear of `input` into `output` (float32, little-endian bytes).
pub fn dequantize(
    layout: &ParamLayout,
    scales: &[f32],
    zero_points: &[i32],
    input: &[i8],
    output: &mut [u8],
) -> Result<(), KernelError> {
    layout.check(scales, zero_points)?;
    check_len(OP, "input", input.len(), layout.elements)?;
    check_len(OP, "output bytes", output.len(), layout.elements * 4)?;
    for ((o, &x), p) in output.chunks_exact_mut(4).zip(input).zip(layout.each()) {
        // An int8 difference times a float is exact before the one rounding.
        let v = (x as i32 - zero_points[p]) as f32 * scales[p];
        o.copy_from_slice(&v.to_le_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn f32s(x: &[f32]) -> Vec<u8> {
        x.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// ONNX's per-axis example: [1, 3, 3, 2] on axis 1, scales 2, 4, 5.
    #[test]
    fn per_axis_takes_each_slices_own() {
        let l = ParamLayout::new(&[1, 3, 3, 2], &[1, 3, 1, 1], 1, 1).expect("fits");
        let x: Vec<f32> = (0..18).map(|i| i as f32 * 10.0).collect();
        let mut q = vec![0i8; 18];
        quantize(&l, &[2.0, 4.0, 5.0], &[-44, 24, 68], &f32s(&x), &mut q).expect("sizes");
        // Slice 0: x / 2 − 44; slice 1: x / 4 + 24 (60 / 4 = 15 → 39,
        // 70 / 4 = 17.5 → 18, even); slice 2: x / 5 + 68.
        assert_eq!(&q[..6], &[-44, -39, -34, -29, -24, -19]);
        assert_eq!(&q[6..9], &[39, 42, 44]);
        assert_eq!(&q[12..], &[92, 94, 96, 98, 100, 102]);
        let mut y = vec![0u8; 72];
        dequantize(&l, &[2.0, 4.0, 5.0], &[-44, 24, 68], &q, &mut y).expect("sizes");
        let y: Vec<f32> = y
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(&y[..3], &[0.0, 10.0, 20.0]);
        assert_eq!(y[7], 72.0);
    }

    /// Blocks of 2 along axis 1 of [3, 4], a parameter per row too.
    #[test]
    fn blocks_take_their_rows_and_block() {
        let l = ParamLayout::new(&[3, 4], &[3, 2], 1, 2).expect("fits");
        let scales = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let x = f32s(&[12.0; 12]);
        let mut q = vec![0i8; 12];
        quantize(&l, &scales, &[0; 6], &x, &mut q).expect("sizes");
        assert_eq!(q, [12, 12, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2]);
    }

    #[test]
    fn layouts_that_do_not_fit_are_refused() {
        assert!(ParamLayout::new(&[3, 4], &[3, 3], 1, 2).is_err());
        assert!(ParamLayout::new(&[3, 4], &[2, 2], 1, 2).is_err());
        assert!(ParamLayout::new(&[3, 4], &[3, 2], 2, 2).is_err());
        assert!(ParamLayout::new(&[3, 4], &[3, 2], 1, 0).is_err());
        assert!(ParamLayout::new(&[3, 5], &[1, 3], 1, 2).is_ok());
        let l = ParamLayout::new(&[3, 4], &[1, 1], 1, 1).expect("per tensor");
        let mut q = vec![0i8; 12];
        let x = f32s(&[1.0; 12]);
        assert!(quantize(&l, &[0.0], &[0], &x, &mut q).is_err());
        assert!(quantize(&l, &[1.0], &[200], &x, &mut q).is_err());
        assert!(quantize(&l, &[1.0, 1.0], &[0, 0], &x, &mut q).is_err());
        assert!(quantize(&l, &[1.0], &[0], &x[4..], &mut q).is_err());
    }

    proptest! {
        /// Every element takes the parameter at its coordinates, with the
        /// axis coordinate divided by the block: written out with
        /// division and remainder per element.
        #[test]
        fn each_element_takes_the_parameter_at_its_coordinates(
            d in proptest::collection::vec(1usize..5, 1..5),
            axis_pick in 0usize..4, block in 1usize..4, mask in 0u8..16,
        ) {
            let axis = axis_pick % d.len();
            let pd: Vec<usize> = d.iter().enumerate().map(|(k, &n)| {
                if mask >> k & 1 == 0 { 1 } else if k == axis { n.div_ceil(block) } else { n }
            }).collect();
            let l = ParamLayout::new(&d, &pd, axis, block).expect("fits");
            let got: Vec<usize> = l.each().collect();
            for (i, &p) in got.iter().enumerate() {
                let mut rest = i;
                let mut want = 0;
                let mut stride = 1;
                for k in (0..d.len()).rev() {
                    let c = rest % d[k];
                    rest /= d[k];
                    let pc = if pd[k] == 1 { 0 } else if k == axis { c / block } else { c };
                    want += pc * stride;
                    stride *= pd[k];
                }
                prop_assert_eq!(p, want);
            }
        }
    }
}
