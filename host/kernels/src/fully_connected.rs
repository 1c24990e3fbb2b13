//! FULLY_CONNECTED with TFLite's int8 semantics, per-tensor or per-channel
//! (`reference_integer_ops::FullyConnected`).

use std::sync::Mutex;

use crate::aligned::Aligned;
use crate::conv::{MAX_PIXELS, Scratch, expand_requant, per_channel_bytes};
use crate::error::{KernelError, ensure};
use crate::pack::{Packed, WeightLayout};
use crate::quant::{Multipliers, Requant, Rounding};

const OP: &str = "fully_connected";

/// What a caller knows about a fully connected layer before it is prepared.
#[derive(Clone, Debug)]
pub struct FullyConnectedSpec {
    /// Rows of input, each of `depth` values.
    pub batches: usize,
    pub depth: usize,
    pub units: usize,
    /// Weights, `[units][depth]`.
    pub weights: Vec<i8>,
    pub bias: Option<Vec<i32>>,
    pub requant: Vec<Requant>,
    pub input_offset: i32,
    pub weights_offset: i32,
    pub output_offset: i32,
    pub act_min: i32,
    pub act_max: i32,
    pub rounding: Rounding,
    /// The weight layout of the kernel set that will run it.
    pub layout: WeightLayout,
}

/// A fully connected layer ready to run.
#[derive(Debug)]
pub struct FullyConnected {
    pub(crate) batches: usize,
    pub(crate) depth: usize,
    pub(crate) units: usize,
    pub(crate) weights: Vec<i8>,
    pub(crate) bias: Vec<i32>,
    pub(crate) requant: Vec<Requant>,
    pub(crate) input_offset: i32,
    pub(crate) weights_offset: i32,
    pub(crate) output_offset: i32,
    pub(crate) act_min: i32,
    pub(crate) act_max: i32,
    pub(crate) rounding: Rounding,
    /// Weights (plus their zero point) in the kernel set's layout.
    pub(crate) packed: Option<Packed>,
    /// The bias with the input offset folded in, for `packed`.
    pub(crate) bias_folded: Aligned<i32>,
    /// `requant` as two arrays, for the vector paths.
    pub(crate) multipliers: Multipliers,
    pub(crate) scratch: Mutex<Scratch>,
    /// The most bytes `scratch` grows to on any kernel set.
    scratch_bound: usize,
}

impl FullyConnected {
    pub fn new(spec: FullyConnectedSpec) -> Result<Self, KernelError> {
        let FullyConnectedSpec {
            batches,
            depth,
            units,
            weights,
            bias,
            requant,
            input_offset,
            weights_offset,
            output_offset,
            act_min,
            act_max,
            rounding,
            layout,
        } = spec;
        ensure!(
            OP,
            depth > 0 && units > 0,
            "empty layer ({units} units of depth {depth})"
        );
        ensure!(
            OP,
            batches.checked_mul(depth).is_some() && batches.checked_mul(units).is_some(),
            "shape overflows"
        );
        ensure!(
            OP,
            units.checked_mul(depth) == Some(weights.len()),
            "weights hold {} values, expected {units}x{depth}",
            weights.len()
        );
        let bias = bias.unwrap_or_else(|| vec![0; units]);
        ensure!(
            OP,
            bias.len() == units,
            "bias holds {} values for {units} units",
            bias.len()
        );
        let requant = expand_requant(OP, requant, units)?;
        ensure!(
            OP,
            act_min <= act_max,
            "activation range {act_min}..{act_max} is empty"
        );
        ensure!(
            OP,
            (-255..=255).contains(&weights_offset),
            "weights zero point {} outside int8",
            -weights_offset
        );
        let (packed, bias_folded) = match Packed::new(
            layout,
            &weights,
            units,
            depth,
            1,
            weights_offset,
            &bias,
            input_offset,
        ) {
            Some((p, b)) => (Some(p), b),
            None => (None, vec![]),
        };
        let multipliers = Multipliers::new(&requant);
        let scratch_bound = scratch_bound(depth, units)?;
        Ok(FullyConnected {
            batches,
            depth,
            units,
            weights,
            bias,
            requant,
            input_offset,
            weights_offset,
            output_offset,
            act_min,
            act_max,
            rounding,
            packed,
            bias_folded: Aligned::copied(&bias_folded),
            multipliers,
            scratch: Mutex::new(Scratch::default()),
            scratch_bound,
        })
    }

    pub fn macs(&self) -> u64 {
        (self.batches as u64)
            .saturating_mul(self.units as u64)
            .saturating_mul(self.depth as u64)
    }

    /// Multiply-accumulates of one row.
    pub fn macs_per_row(&self) -> u64 {
        (self.units as u64).saturating_mul(self.depth as u64)
    }

    /// The most host memory the prepared layer holds: weights in every
    /// form, biases, multipliers, and the scratch its runs may grow to.
    pub fn heap_bytes(&self) -> usize {
        self.weights.len()
            + per_channel_bytes(
                &self.bias,
                &self.bias_folded,
                &self.requant,
                &self.multipliers,
            )
            + self.packed.as_ref().map_or(0, Packed::bytes)
            + self.scratch_bound
    }

    /// What [`heap_bytes`](Self::heap_bytes) of the layer [`new`](Self::new)
    /// would prepare comes to, before anything is allocated.
    pub fn heap_bytes_for(
        depth: usize,
        units: usize,
        weights_offset: i32,
        layout: WeightLayout,
    ) -> Result<usize, KernelError> {
        let too_big = || KernelError::new(OP, "the layer would not fit in memory");
        let packed =
            Packed::bytes_for(layout, units, depth, 1, weights_offset).ok_or_else(too_big)?;
        let biases = if packed > 0 { 2 * units } else { units };
        let per_unit =
            4 * biases + std::mem::size_of::<Requant>() * units + Multipliers::bytes_for(units);
        units
            .checked_mul(depth)
            .and_then(|w| w.checked_add(packed))
            .and_then(|b| b.checked_add(per_unit))
            .and_then(|b| b.checked_add(scratch_bound(depth, units).ok()?))
            .ok_or_else(too_big)
    }

    /// Bytes the scratch holds now, and the bound [`heap_bytes`](Self::heap_bytes) counts.
    #[cfg(test)]
    pub(crate) fn scratch_bytes(&self) -> (usize, usize) {
        let s = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        (s.bytes(), self.scratch_bound)
    }

    /// How many rows `input` and `output` hold. A layer prepared for
    /// `batches` rows runs any whole number of rows, so that a plan can run
    /// the same layer of several invocations as one GEMM.
    pub fn rows(&self, input: &[i8], output: &[i8]) -> Result<usize, KernelError> {
        // One row, the usual case, without the divisions below.
        if input.len() == self.depth && output.len() == self.units && self.depth > 0 {
            return Ok(1);
        }
        ensure!(
            OP,
            input.len().is_multiple_of(self.depth),
            "input holds {} elements, not whole rows of {}",
            input.len(),
            self.depth
        );
        let rows = input.len() / self.depth;
        let want = rows.checked_mul(self.units);
        ensure!(
            OP,
            want == Some(output.len()),
            "output holds {} elements, expected {rows} rows of {}",
            output.len(),
            self.units
        );
        Ok(rows)
    }
}

/// A row as i16 and as u8 for [`MAX_PIXELS`] rows, padded, and their
/// accumulators: nothing in a fully connected layer's scratch grows with
/// the rows a run is given.
fn scratch_bound(depth: usize, units: usize) -> Result<usize, KernelError> {
    depth
        .checked_add(64)
        .and_then(|kp| kp.checked_mul(2 + MAX_PIXELS))
        .and_then(|b| b.checked_add(units.div_ceil(16).checked_mul(64 * MAX_PIXELS)?))
        .ok_or_else(|| KernelError::new(OP, "the layer's buffers would not fit in memory"))
}

/// Scalar reference.
pub fn fully_connected_scalar(
    k: &FullyConnected,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    k.rows(input, output)?;
    for (row, out_row) in input
        .chunks_exact(k.depth)
        .zip(output.chunks_exact_mut(k.units))
    {
        for (u, out) in out_row.iter_mut().enumerate() {
            let ws = &k.weights[u * k.depth..(u + 1) * k.depth];
            let mut acc: i32 = 0;
            for (&x, &w) in row.iter().zip(ws) {
                acc = acc.wrapping_add((w as i32 + k.weights_offset) * (x as i32 + k.input_offset));
            }
            acc = acc.wrapping_add(k.bias[u]);
            let v = k.requant[u]
                .apply(acc, k.rounding)
                .wrapping_add(k.output_offset);
            *out = v.clamp(k.act_min, k.act_max) as i8;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_units_two_rows_by_hand() {
        let k = FullyConnected::new(FullyConnectedSpec {
            batches: 2,
            depth: 3,
            units: 2,
            weights: vec![1, 2, 3, -1, -2, -3],
            bias: Some(vec![4, -4]),
            requant: vec![
                Requant::from_real(0.25, Rounding::Single),
                Requant::from_real(0.5, Rounding::Single),
            ],
            input_offset: 1,
            weights_offset: 0,
            output_offset: 10,
            act_min: -128,
            act_max: 127,
            rounding: Rounding::Single,
            layout: WeightLayout::Original,
        })
        .unwrap();
        let mut out = [0i8; 4];
        fully_connected_scalar(&k, &[0, 1, 2, 9, 9, 9], &mut out).unwrap();
        // row 0 (+1): [1,2,3] -> u0 = 1+4+9+4 = 18 -> 4.5 -> 5 -> 15 ; u1 = -14-4 = -18 -> -9 -> 1
        // row 1 (+1): [10,10,10] -> u0 = 60+4 = 64 -> 16 -> 26 ; u1 = -60-4 = -64 -> -32 -> -22
        assert_eq!(out, [15, 1, 26, -22]);
    }
}
