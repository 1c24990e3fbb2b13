//! ADD with TFLite's int8 semantics (`reference_integer_ops::Add` and its
//! broadcasting form): both inputs are rescaled to a common scale with 20
//! bits of headroom, summed, then requantized. Under [`Rounding::Nearest`]
//! it is onnxruntime's QLinearAdd instead, in single precision.

use crate::broadcast::Broadcast;
use crate::error::{KernelError, check_len, ensure};
use crate::quant::{Requant, Rounding, UINT8_SHIFT, cvtps_epi32, saturate_shifted};

const OP: &str = "add";
pub(crate) const LEFT_SHIFT: i32 = 20;

/// What a caller knows about an addition before it is prepared.
#[derive(Clone, Debug)]
pub struct AddSpec {
    pub shape1: Vec<usize>,
    pub shape2: Vec<usize>,
    pub out_shape: Vec<usize>,
    pub scale1: f32,
    pub zero_point1: i32,
    pub scale2: f32,
    pub zero_point2: i32,
    pub out_scale: f32,
    pub out_zero_point: i32,
    pub act_min: i32,
    pub act_max: i32,
    /// [`Rounding::Nearest`] selects onnxruntime's arithmetic
    /// ([`FloatSum`]), in operand order.
    pub rounding: Rounding,
    /// Precompute every (a, b) → output pair (64 KiB) when the output has at
    /// least this many elements; `None` never does. onnxruntime's sums
    /// always get the table from that size: no vector path computes them.
    pub table_from: Option<usize>,
    /// With [`Rounding::Nearest`]: the bytes and zero points stand for
    /// uint8 ones less [`UINT8_SHIFT`], and onnxruntime's sum is taken
    /// on the uint8 values.
    pub uint8: bool,
}

/// onnxruntime's QLinearAdd as its x86 AVX2 kernel computes it
/// (`MlasQLinearAddKernelAvx2Helper`, read in its source and measured
/// against onnxruntime 1.32): with `ra = sa / sc` and `rb = sb / sc` in
/// single precision and `fixed = zc − (ra·za + rb·zb)`, the output is
/// `fma(a, ra, fma(b, rb, fixed))` converted with rounding half to even,
/// then saturated. The raw input bytes enter the sum, not the bytes less
/// their zero points, so a uint8 model's addition is this one on its uint8
/// bytes: with `uint8`, every byte and zero point gets its
/// [`UINT8_SHIFT`] back first, and the output loses it after the rounding.
/// (onnxruntime's ARM kernel is fixed-point and may differ by one step.)
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FloatSum {
    ra: f32,
    rb: f32,
    fixed: f32,
    shift: i32,
}

impl FloatSum {
    fn new(s: &AddSpec) -> FloatSum {
        let shift = if s.uint8 { UINT8_SHIFT } else { 0 };
        let (ra, rb) = (s.scale1 / s.out_scale, s.scale2 / s.out_scale);
        let z = |zp: i32| (zp + shift) as f32;
        let fixed = z(s.out_zero_point) - (ra * z(s.zero_point1) + rb * z(s.zero_point2));
        FloatSum {
            ra,
            rb,
            fixed,
            shift,
        }
    }

    #[inline(always)]
    fn one(&self, a: i8, b: i8) -> i32 {
        let (a, b) = (
            (a as i32 + self.shift) as f32,
            (b as i32 + self.shift) as f32,
        );
        let v = a.mul_add(self.ra, b.mul_add(self.rb, self.fixed));
        saturate_shifted(cvtps_epi32(v), self.shift)
    }
}

/// Elements from which a table pays for itself: building it costs 65,536
/// scalar additions, once, when the plan is recorded.
pub const TABLE_FROM: usize = 2048;

/// An addition ready to run.
#[derive(Clone, Debug)]
pub struct Add {
    pub(crate) shape: Broadcast,
    pub(crate) input1_offset: i32,
    pub(crate) input2_offset: i32,
    pub(crate) output_offset: i32,
    pub(crate) input1: Requant,
    pub(crate) input2: Requant,
    pub(crate) output: Requant,
    pub(crate) act_min: i32,
    pub(crate) act_max: i32,
    pub(crate) rounding: Rounding,
    /// onnxruntime's arithmetic, instead of the fields above.
    pub(crate) float: Option<FloatSum>,
    /// `table[(a as u8) << 8 | b as u8]` is the sum of a and b, exactly as
    /// [`add_scalar`] computes it: the three requantizations of an int8
    /// addition depend on nothing but the two input bytes.
    pub(crate) table: Option<std::sync::Arc<[i8]>>,
}

impl Add {
    pub fn new(s: AddSpec) -> Result<Self, KernelError> {
        let shape = Broadcast::new(OP, &s.shape1, &s.shape2, &s.out_shape)?;
        ensure!(
            OP,
            s.scale1 > 0.0 && s.scale2 > 0.0 && s.out_scale > 0.0,
            "scales must be positive"
        );
        // Mirrors TFLite's Prepare: float max, then double arithmetic.
        let twice_max = 2.0 * s.scale1.max(s.scale2) as f64;
        let real1 = s.scale1 as f64 / twice_max;
        let real2 = s.scale2 as f64 / twice_max;
        let real_out = twice_max / ((1i32 << LEFT_SHIFT) as f32 * s.out_scale) as f64;
        ensure!(OP, s.act_min <= s.act_max, "activation range is empty");
        // The float sum is taken in operand order, whichever broadcasts:
        // onnxruntime's broadcaster swaps its operands in some spans, and a
        // caller passes them as it does.
        let float = (s.rounding == Rounding::Nearest).then(|| FloatSum::new(&s));
        let mut add = Add {
            shape,
            input1_offset: -s.zero_point1,
            input2_offset: -s.zero_point2,
            output_offset: s.out_zero_point,
            input1: Requant::from_real(real1, s.rounding),
            input2: Requant::from_real(real2, s.rounding),
            output: Requant::from_real(real_out, s.rounding),
            act_min: s.act_min,
            act_max: s.act_max,
            rounding: s.rounding,
            float,
            table: None,
        };
        let from = match (s.table_from, float) {
            (None, Some(_)) => Some(TABLE_FROM),
            (from, _) => from,
        };
        if from.is_some_and(|n| add.shape.out_len >= n) {
            // Three bytes past the end, so that a vector gather of 32-bit
            // words may read any entry's word (see `TABLE_SLACK`).
            let table: Vec<i8> = (0..=u16::MAX)
                .map(|i| add.one((i >> 8) as u8 as i8, i as u8 as i8))
                .chain([0; TABLE_SLACK])
                .collect();
            add.table = Some(table.into());
        }
        Ok(add)
    }

    /// Bytes the prepared operator holds.
    pub fn bytes(&self) -> usize {
        self.table.as_ref().map_or(0, |t| t.len())
    }

    #[inline(always)]
    pub(crate) fn one(&self, a: i8, b: i8) -> i8 {
        if let Some(f) = &self.float {
            return f.one(a, b).clamp(self.act_min, self.act_max) as i8;
        }
        let r = self.rounding;
        let a = (self.input1_offset + a as i32) * (1 << LEFT_SHIFT);
        let b = (self.input2_offset + b as i32) * (1 << LEFT_SHIFT);
        let sum =
            self.input1.apply_smaller_than_one(a, r) + self.input2.apply_smaller_than_one(b, r);
        let v = self.output.apply_smaller_than_one(sum, r) + self.output_offset;
        v.clamp(self.act_min, self.act_max) as i8
    }
}

/// Bytes after the 65,536 entries of [`Add::table`].
pub const TABLE_SLACK: usize = 3;

/// Through the precomputed table, for any kernel set that has one; `None`
/// if the addition has no table.
pub fn add_by_table(
    k: &Add,
    in1: &[i8],
    in2: &[i8],
    output: &mut [i8],
) -> Option<Result<(), KernelError>> {
    let table = k.table.as_deref()?;
    let mut run = || {
        check_len(OP, "input 1", in1.len(), k.shape.len1)?;
        check_len(OP, "input 2", in2.len(), k.shape.len2)?;
        check_len(OP, "output", output.len(), k.shape.out_len)?;
        let at = |a: i8, b: i8| table[((a as u8 as usize) << 8) | b as u8 as usize];
        if k.shape.is_elementwise() {
            for ((o, &a), &b) in output.iter_mut().zip(in1).zip(in2) {
                *o = at(a, b);
            }
        } else {
            k.shape.for_each(|o, a, b| output[o] = at(in1[a], in2[b]));
        }
        Ok(())
    };
    Some(run())
}

/// Scalar reference.
pub fn add_scalar(k: &Add, in1: &[i8], in2: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    check_len(OP, "input 1", in1.len(), k.shape.len1)?;
    check_len(OP, "input 2", in2.len(), k.shape.len2)?;
    check_len(OP, "output", output.len(), k.shape.out_len)?;
    k.shape
        .for_each(|o, a, b| output[o] = k.one(in1[a], in2[b]));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(shape1: Vec<usize>, shape2: Vec<usize>, out: Vec<usize>) -> AddSpec {
        AddSpec {
            shape1,
            shape2,
            out_shape: out,
            scale1: 0.5,
            zero_point1: 0,
            scale2: 0.25,
            zero_point2: 10,
            out_scale: 1.0,
            out_zero_point: -5,
            act_min: -128,
            act_max: 127,
            rounding: Rounding::Single,
            table_from: None,
            uint8: false,
        }
    }

    #[test]
    fn dequantized_sum_by_hand() {
        let k = Add::new(spec(vec![3], vec![3], vec![3])).unwrap();
        let mut out = [0i8; 3];
        // a*0.5 + (b-10)*0.25, then /1.0 - 5
        add_scalar(&k, &[4, -6, 100], &[14, 2, 127], &mut out).unwrap();
        // 2 + 1 = 3 -> -2 ; -3 + -2 = -5 -> -10 ; 50 + 29.25 = 79.25 -> 79 -> 74
        assert_eq!(out, [-2, -10, 74]);
    }

    #[test]
    fn onnxruntimes_sum_rounds_half_to_even_and_saturates_as_its_kernel() {
        let ort = |scale1: f32, out_scale: f32, shape2: Vec<usize>| {
            Add::new(AddSpec {
                scale1,
                zero_point2: 0,
                scale2: 0.25,
                out_scale,
                out_zero_point: 0,
                rounding: Rounding::Nearest,
                ..spec(vec![4], shape2, vec![4])
            })
        };
        // ratios 0.5 and 0.5: every odd sum is a tie.
        let k = ort(0.25, 0.5, vec![4]).unwrap();
        let mut out = [0i8; 4];
        add_scalar(&k, &[1, 3, -1, 100], &[0, 0, 0, 100], &mut out).unwrap();
        assert_eq!(out, [0, 2, 0, 100]);
        // A ratio past i32: the conversion's i32::MIN, saturated to -128.
        let k = ort(1e10, 1e-3, vec![4]).unwrap();
        add_scalar(&k, &[1, -1, 0, 0], &[0, 0, 0, 4], &mut out).unwrap();
        assert_eq!(out, [-128, -128, 0, 127]);
        // Either operand may broadcast.
        let k = ort(0.25, 0.5, vec![1]).unwrap();
        add_scalar(&k, &[1, 3, -1, 100], &[2], &mut out).unwrap();
        assert_eq!(out, [2, 2, 0, 51]); // (1 + 2)/2 = 1.5 → 2, 2.5 → 2, 0.5 → 0, 51
        let first = Add::new(AddSpec {
            rounding: Rounding::Nearest,
            ..spec(vec![1], vec![4], vec![4])
        })
        .unwrap();
        add_scalar(&first, &[4], &[10, 11, 12, 13], &mut out).unwrap();
        // 0.5·4 + 0.25·(b − 10) − 5 = −3, −2.75, −2.5 (a tie, to −2), −2.25
        assert_eq!(out, [-3, -3, -2, -2]);
    }

    #[test]
    fn onnxruntimes_uint8_sum_is_taken_on_the_uint8_bytes() {
        // A quantization where the sum on the shifted int8 bytes rounds
        // otherwise (found by emulating both; onnxruntime 1.32 gives 13, 0
        // and 193 for these uint8 pairs).
        let ort = |uint8| {
            Add::new(AddSpec {
                scale1: 0.0041,
                zero_point1: 225 - 128,
                scale2: 0.0343,
                zero_point2: 87 - 128,
                out_scale: 0.0436,
                out_zero_point: 58 - 128,
                rounding: Rounding::Nearest,
                uint8,
                ..spec(vec![3], vec![3], vec![3])
            })
            .unwrap()
        };
        let shifted = |v: [i32; 3]| v.map(|u| (u - 128) as i8);
        let (a, b) = (shifted([218, 0, 255]), shifted([30, 0, 255]));
        let mut out = [0i8; 3];
        add_scalar(&ort(true), &a, &b, &mut out).unwrap();
        assert_eq!(out, shifted([13, 0, 193]));
        add_scalar(&ort(false), &a, &b, &mut out).unwrap();
        assert_eq!(
            out[0],
            shifted([12, 0, 0])[0],
            "the int8 sum rounds the first pair otherwise"
        );
    }

    #[test]
    fn broadcasts_a_row() {
        let k = Add::new(spec(vec![2, 2], vec![2], vec![2, 2])).unwrap();
        let mut out = [0i8; 4];
        add_scalar(&k, &[2, 4, 6, 8], &[14, 18], &mut out).unwrap();
        // rows: [1+1, 2+2], [3+1, 4+2] then -5
        assert_eq!(out, [-3, -1, -1, 1]);
        assert!(Add::new(spec(vec![3], vec![2], vec![3])).is_err());
    }

    #[test]
    fn the_table_holds_every_pair_exactly() {
        let plain = Add::new(spec(vec![1], vec![1], vec![1])).unwrap();
        let k = Add::new(AddSpec {
            table_from: Some(1),
            ..spec(vec![1], vec![1], vec![1])
        })
        .unwrap();
        assert_eq!(k.bytes(), 65536 + TABLE_SLACK);
        for a in i8::MIN..=i8::MAX {
            for b in i8::MIN..=i8::MAX {
                let (mut want, mut got) = ([0i8], [0i8]);
                add_scalar(&plain, &[a], &[b], &mut want).unwrap();
                add_by_table(&k, &[a], &[b], &mut got).unwrap().unwrap();
                assert_eq!(got, want, "{a} + {b}");
            }
        }
    }
}
