//! UNIDIRECTIONAL_SEQUENCE_LSTM with TFLite's fully integer arithmetic
//! (`lstm_eval.cc`, `LstmStepInteger8x8_16`): int8 input, weights and
//! hidden state, int16 gates and cell state, int32 biases.
//!
//! This is the form the converter emits for a Keras `LSTM` quantized to
//! int8: no peephole, no layer normalization, no projection (each is
//! refused). A missing input gate (CIFG, `i = 1 - f`) is supported.
//!
//! Per step and batch row, each gate is
//! `act(requant(W_x·x + b) + requant(W_h·h))` in Q3.12 (TFLite's fixed gate
//! scale without layer normalization), where the zero points are folded into
//! the biases; the cell is `f·c + i·g` at the cell state's power-of-two
//! scale, and the new hidden state `o·tanh(c)` requantized to int8.
//!
//! The state starts at zero (the hidden state at its zero point) on every
//! call, as the stateless Keras layer the operator comes from: TFLite keeps
//! its state tensors between invocations unless they are reset, which a
//! model's per-window inference never wants.

use crate::error::{KernelError, check_len, ensure};
use crate::fixed16;
use crate::quant::{Requant, Rounding};

const OP: &str = "lstm";

/// The gates' scale without layer normalization: Q3.12.
const GATE_SCALE: f32 = 1.0 / 4096.0;

/// One gate's weights as the model stores them.
#[derive(Clone, Debug)]
pub struct LstmGateSpec {
    /// Input weights, `[cells][inputs]`, symmetric int8 at `input_scale`.
    pub input_weights: Vec<i8>,
    pub input_scale: f32,
    /// Recurrent weights, `[cells][cells]`, symmetric int8 at `recurrent_scale`.
    pub recurrent_weights: Vec<i8>,
    pub recurrent_scale: f32,
    /// int32 bias at the input's scale times `input_scale`; none is zero.
    pub bias: Option<Vec<i32>>,
}

/// The cell gate's activation (the layer's `activation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellActivation {
    Tanh,
    Sigmoid,
}

/// What a caller knows about an LSTM layer before it is prepared.
#[derive(Clone, Debug)]
pub struct LstmSpec {
    pub batches: usize,
    pub steps: usize,
    pub inputs: usize,
    pub cells: usize,
    /// Input and output are `[steps][batches][…]` instead of `[batches][steps][…]`.
    pub time_major: bool,
    /// None for a coupled input and forget gate (CIFG).
    pub input_gate: Option<LstmGateSpec>,
    pub forget_gate: LstmGateSpec,
    pub cell_gate: LstmGateSpec,
    pub output_gate: LstmGateSpec,
    pub activation: CellActivation,
    /// The input's scale and zero point.
    pub input_quant: (f32, i32),
    /// The hidden state's (and output's) scale and zero point.
    pub state_quant: (f32, i32),
    /// The hidden-state intermediate's scale and zero point, from which the
    /// converter's hidden requantization is derived.
    pub hidden_quant: (f32, i32),
    /// The cell state's scale: a power of two, `2^-9` or finer.
    pub cell_scale: f32,
    /// Clip the cell state to `±cell_clip` (real units); 0 for none.
    pub cell_clip: f32,
    pub rounding: Rounding,
}

#[derive(Debug)]
struct Gate {
    input_weights: Vec<i8>,
    recurrent_weights: Vec<i8>,
    /// Bias minus the input zero point times each weight row's sum.
    input_bias: Vec<i32>,
    /// Minus the state zero point times each recurrent row's sum.
    recurrent_bias: Vec<i32>,
    input_requant: Requant,
    recurrent_requant: Requant,
}

/// An LSTM layer ready to run.
#[derive(Debug)]
pub struct Lstm {
    batches: usize,
    steps: usize,
    inputs: usize,
    cells: usize,
    time_major: bool,
    input_gate: Option<Gate>,
    forget_gate: Gate,
    cell_gate: Gate,
    output_gate: Gate,
    activation: CellActivation,
    state_zero_point: i32,
    /// log2 of the cell state's scale.
    cell_shift: i32,
    hidden_requant: Requant,
    hidden_zero_point: i32,
    cell_clip: i16,
    rounding: Rounding,
}

impl Lstm {
    pub fn new(spec: LstmSpec) -> Result<Self, KernelError> {
        let LstmSpec {
            batches,
            steps,
            inputs,
            cells,
            time_major,
            input_gate,
            forget_gate,
            cell_gate,
            output_gate,
            activation,
            input_quant,
            state_quant,
            hidden_quant,
            cell_scale,
            cell_clip,
            rounding,
        } = spec;
        ensure!(
            OP,
            inputs > 0 && cells > 0,
            "empty layer ({cells} cells of {inputs} inputs)"
        );
        let elements = |n: usize| {
            batches
                .checked_mul(steps)
                .and_then(|bs| bs.checked_mul(n))
                .ok_or_else(|| KernelError::new(OP, "shape overflows"))
        };
        elements(inputs)?;
        elements(cells)?;
        let log2 = cell_scale.log2();
        ensure!(
            OP,
            cell_scale > 0.0 && log2 == log2.round() && (-15.0..=-9.0).contains(&log2),
            "cell state scale {cell_scale} is not a power of two from 2^-15 to 2^-9"
        );
        let cell_shift = log2 as i32;
        for (what, s) in [
            ("input", input_quant.0),
            ("hidden state", state_quant.0),
            ("hidden intermediate", hidden_quant.0),
        ] {
            ensure!(
                OP,
                s.is_finite() && s > 0.0,
                "{what} scale {s} is not positive"
            );
        }
        for (what, z) in [
            ("input", input_quant.1),
            ("hidden state", state_quant.1),
            ("hidden intermediate", hidden_quant.1),
        ] {
            ensure!(
                OP,
                (-128..=127).contains(&z),
                "{what} zero point {z} outside int8"
            );
        }
        ensure!(
            OP,
            cell_clip.is_finite() && cell_clip >= 0.0,
            "cell clip {cell_clip} is negative"
        );
        let gate = |name: &str, g: LstmGateSpec| -> Result<Gate, KernelError> {
            ensure!(
                OP,
                g.input_weights.len() == cells * inputs,
                "{name} gate: input weights hold {} values, expected {cells}x{inputs}",
                g.input_weights.len()
            );
            ensure!(
                OP,
                g.recurrent_weights.len() == cells * cells,
                "{name} gate: recurrent weights hold {} values, expected {cells}x{cells}",
                g.recurrent_weights.len()
            );
            let bias = g.bias.unwrap_or_else(|| vec![0; cells]);
            ensure!(
                OP,
                bias.len() == cells,
                "{name} gate: bias holds {} values for {cells} cells",
                bias.len()
            );
            for s in [g.input_scale, g.recurrent_scale] {
                ensure!(
                    OP,
                    s.is_finite() && s > 0.0,
                    "{name} gate: weight scale {s} is not positive"
                );
            }
            // TFLite folds the zero points into the biases at prepare time
            // (`PrecomputeZeroPointTimesWeightWithBias`), in int32.
            let fold = |weights: &[i8], n: usize, zero_point: i32, bias: &[i32]| -> Vec<i32> {
                weights
                    .chunks_exact(n)
                    .zip(bias)
                    .map(|(row, &b)| {
                        let sum: i32 = row.iter().map(|&w| w as i32).sum();
                        b.wrapping_add(sum.wrapping_mul(-zero_point))
                    })
                    .collect()
            };
            let input_bias = fold(&g.input_weights, inputs, input_quant.1, &bias);
            let recurrent_bias = fold(&g.recurrent_weights, cells, state_quant.1, &vec![0; cells]);
            // The effective scales are float products in TFLite.
            let input_real = g.input_scale * input_quant.0 / GATE_SCALE;
            let recurrent_real = g.recurrent_scale * state_quant.0 / GATE_SCALE;
            Ok(Gate {
                input_weights: g.input_weights,
                recurrent_weights: g.recurrent_weights,
                input_bias,
                recurrent_bias,
                input_requant: Requant::from_real(input_real as f64, rounding),
                recurrent_requant: Requant::from_real(recurrent_real as f64, rounding),
            })
        };
        let input_gate = input_gate.map(|g| gate("input", g)).transpose()?;
        let forget_gate = gate("forget", forget_gate)?;
        let cell_gate = gate("cell", cell_gate)?;
        let output_gate = gate("output", output_gate)?;
        // 2^-15 · 2^-15 / s, in double then stored as a float, as TFLite has it.
        let hidden_real = ((2f64.powi(-15) / hidden_quant.0 as f64) * 2f64.powi(-15)) as f32;
        let cell_clip = if cell_clip > 0.0 {
            (cell_clip / cell_scale).clamp(-32768.0, 32767.0) as i16
        } else {
            0
        };
        Ok(Lstm {
            batches,
            steps,
            inputs,
            cells,
            time_major,
            input_gate,
            forget_gate,
            cell_gate,
            output_gate,
            activation,
            state_zero_point: state_quant.1,
            cell_shift,
            hidden_requant: Requant::from_real(hidden_real as f64, rounding),
            hidden_zero_point: hidden_quant.1,
            cell_clip,
            rounding,
        })
    }

    pub fn input_len(&self) -> usize {
        self.batches * self.steps * self.inputs
    }

    pub fn output_len(&self) -> usize {
        self.batches * self.steps * self.cells
    }

    /// Bytes held: weights and folded biases.
    pub fn bytes(&self) -> usize {
        let gate = |g: &Gate| {
            g.input_weights.len()
                + g.recurrent_weights.len()
                + 4 * (g.input_bias.len() + g.recurrent_bias.len())
        };
        [&self.forget_gate, &self.cell_gate, &self.output_gate]
            .into_iter()
            .chain(self.input_gate.as_ref())
            .map(gate)
            .sum()
    }

    /// Bytes a call allocates for its state and gates, at most.
    pub fn scratch_bytes(&self) -> usize {
        // Per batch row: the hidden state (int8), the cell state and four
        // gates (int16).
        self.batches * self.cells * (1 + 2 * 5)
    }

    /// MACs per call.
    pub fn macs(&self) -> u64 {
        let gates = 3 + self.input_gate.is_some() as u64;
        let per_step = (self.cells * (self.inputs + self.cells)) as u64 * gates;
        per_step * (self.batches * self.steps) as u64
    }

    /// One gate for one batch row: int16 in Q3.12 through its activation.
    fn gate(&self, g: &Gate, x: &[i8], h: &[i8], activation: CellActivation, out: &mut [i16]) {
        for (c, o) in out.iter_mut().enumerate() {
            let wx = &g.input_weights[c * self.inputs..(c + 1) * self.inputs];
            let wh = &g.recurrent_weights[c * self.cells..(c + 1) * self.cells];
            let acc_x = g.input_bias[c].wrapping_add(dot(wx, x));
            let acc_h = g.recurrent_bias[c].wrapping_add(dot(wh, h));
            // `MatrixBatchVectorMultiplyAccumulate` twice onto a zeroed gate,
            // saturating to int16 after each.
            let v = saturate16(g.input_requant.apply(acc_x, self.rounding));
            let v = saturate16(g.recurrent_requant.apply(acc_h, self.rounding) + v as i32);
            *o = match activation {
                CellActivation::Sigmoid => fixed16::logistic(v, 3),
                CellActivation::Tanh => fixed16::tanh(v, 3),
            };
        }
    }
}

#[inline(always)]
fn dot(w: &[i8], x: &[i8]) -> i32 {
    w.iter()
        .zip(x)
        .fold(0i32, |acc, (&w, &x)| acc.wrapping_add(w as i32 * x as i32))
}

#[inline(always)]
fn saturate16(x: i32) -> i16 {
    x.clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

/// `RoundingDivideByPOT` of an int16 product, truncated to int16 as
/// TFLite's `CwiseMul` casts it.
#[inline(always)]
fn mul_shift(a: i16, b: i16, shift: i32) -> i16 {
    crate::quant::rounding_divide_by_pot(a as i32 * b as i32, shift) as i16
}

/// Scalar reference: `input` is `[batches][steps][inputs]` (or time major),
/// `output` the hidden state of every step, `[batches][steps][cells]`.
pub fn lstm_scalar(k: &Lstm, input: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    check_len(OP, "input", input.len(), k.input_len())?;
    check_len(OP, "output", output.len(), k.output_len())?;
    let n = k.cells;
    let mut h = vec![0i8; n];
    let mut c = vec![0i16; n];
    let (mut fg, mut gg, mut ig, mut og) =
        (vec![0i16; n], vec![0i16; n], vec![0i16; n], vec![0i16; n]);
    let cell_ib = (15 + k.cell_shift) as u32;
    for b in 0..k.batches {
        h.fill(k.state_zero_point as i8);
        c.fill(0);
        for t in 0..k.steps {
            let row = if k.time_major {
                t * k.batches + b
            } else {
                b * k.steps + t
            };
            let x = &input[row * k.inputs..(row + 1) * k.inputs];
            k.gate(&k.forget_gate, x, &h, CellActivation::Sigmoid, &mut fg);
            k.gate(&k.cell_gate, x, &h, k.activation, &mut gg);
            match &k.input_gate {
                Some(g) => k.gate(g, x, &h, CellActivation::Sigmoid, &mut ig),
                // CIFG: the input gate is one minus the forget gate.
                None => {
                    for (i, &f) in ig.iter_mut().zip(&fg) {
                        *i = i16::MAX - f;
                    }
                }
            }
            for j in 0..n {
                let kept = mul_shift(fg[j], c[j], 15);
                let added = mul_shift(ig[j], gg[j], 30 + k.cell_shift);
                let mut v = saturate16(kept as i32 + added as i32);
                if k.cell_clip > 0 {
                    v = v.clamp(-k.cell_clip, k.cell_clip);
                }
                c[j] = v;
            }
            // The output gate sees the previous hidden state, as in TFLite.
            k.gate(&k.output_gate, x, &h, CellActivation::Sigmoid, &mut og);
            for j in 0..n {
                let t = fixed16::tanh(c[j], cell_ib) as i32;
                let v = k.hidden_requant.apply(og[j] as i32 * t, k.rounding) + k.hidden_zero_point;
                h[j] = v.clamp(-128, 127) as i8;
            }
            output[row * n..(row + 1) * n].copy_from_slice(&h);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gate(rng: &mut impl FnMut() -> i8, inputs: usize, cells: usize, bias: bool) -> LstmGateSpec {
        LstmGateSpec {
            input_weights: (0..cells * inputs).map(|_| rng()).collect(),
            input_scale: 0.0026,
            recurrent_weights: (0..cells * cells).map(|_| rng()).collect(),
            recurrent_scale: 0.003,
            bias: bias.then(|| (0..cells).map(|i| (rng() as i32) * 97 + i as i32).collect()),
        }
    }

    fn spec(
        seed: u64,
        batches: usize,
        steps: usize,
        inputs: usize,
        cells: usize,
        cifg: bool,
    ) -> LstmSpec {
        let mut state = seed | 1;
        let mut rng = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as i8
        };
        LstmSpec {
            batches,
            steps,
            inputs,
            cells,
            time_major: false,
            input_gate: (!cifg).then(|| gate(&mut rng, inputs, cells, true)),
            forget_gate: gate(&mut rng, inputs, cells, true),
            cell_gate: gate(&mut rng, inputs, cells, false),
            output_gate: gate(&mut rng, inputs, cells, true),
            activation: CellActivation::Tanh,
            input_quant: (0.0157, 3),
            state_quant: (0.0049, -13),
            hidden_quant: (0.0049, -13),
            cell_scale: 2f32.powi(-14),
            cell_clip: 0.0,
            rounding: Rounding::Double,
        }
    }

    fn run(k: &Lstm, input: &[i8]) -> Vec<i8> {
        let mut out = vec![0; k.output_len()];
        lstm_scalar(k, input, &mut out).expect("lengths match");
        out
    }

    proptest! {
        /// Batch rows are independent sequences: a batch of two equals each alone.
        #[test]
        fn batch_rows_are_independent(seed: u64, steps in 1usize..6, inputs in 1usize..9, cells in 1usize..9,
                                      cifg: bool, xs in proptest::collection::vec(any::<i8>(), 2 * 5 * 8)) {
            let two = Lstm::new(spec(seed, 2, steps, inputs, cells, cifg)).expect("valid");
            let one = Lstm::new(spec(seed, 1, steps, inputs, cells, cifg)).expect("valid");
            let input = &xs[..2 * steps * inputs];
            let both = run(&two, input);
            let half = steps * inputs;
            prop_assert_eq!(&both[..steps * cells], &run(&one, &input[..half])[..]);
            prop_assert_eq!(&both[steps * cells..], &run(&one, &input[half..])[..]);
        }

        /// Time-major layout runs the same sequences.
        #[test]
        fn time_major_is_a_transpose(seed: u64, steps in 1usize..6, inputs in 1usize..9, cells in 1usize..9,
                                     xs in proptest::collection::vec(any::<i8>(), 3 * 5 * 8)) {
            let batch_major = Lstm::new(spec(seed, 3, steps, inputs, cells, false)).expect("valid");
            let mut s = spec(seed, 3, steps, inputs, cells, false);
            s.time_major = true;
            let time_major = Lstm::new(s).expect("valid");
            let input = &xs[..3 * steps * inputs];
            let mut transposed = vec![0i8; input.len()];
            for b in 0..3 {
                for t in 0..steps {
                    let (src, dst) = ((b * steps + t) * inputs, (t * 3 + b) * inputs);
                    transposed[dst..dst + inputs].copy_from_slice(&input[src..src + inputs]);
                }
            }
            let want = run(&batch_major, input);
            let got = run(&time_major, &transposed);
            for b in 0..3 {
                for t in 0..steps {
                    let (src, dst) = ((b * steps + t) * cells, (t * 3 + b) * cells);
                    prop_assert_eq!(&want[src..src + cells], &got[dst..dst + cells]);
                }
            }
        }

        /// A step's output depends only on the steps before it (causal), and
        /// the cell clip bounds the state that feeds the next step.
        #[test]
        fn outputs_are_causal(seed: u64, steps in 2usize..6, xs in proptest::collection::vec(any::<i8>(), 5 * 4)) {
            let k = Lstm::new(spec(seed, 1, steps, 4, 6, false)).expect("valid");
            let input = &xs[..steps * 4];
            let mut changed = input.to_vec();
            changed[(steps - 1) * 4] = changed[(steps - 1) * 4].wrapping_add(77);
            let (a, b) = (run(&k, input), run(&k, &changed));
            prop_assert_eq!(&a[..(steps - 1) * 6], &b[..(steps - 1) * 6]);
        }
    }

    /// Hand-checked against TFLite's formulas: zero weights and biases give
    /// gates of exactly one half (sigmoid) and zero (tanh), so the cell
    /// stays zero and the hidden state is its zero point on every step.
    #[test]
    fn zero_weights_leave_the_state_at_rest() {
        let mut s = spec(1, 1, 3, 2, 3, false);
        for g in [&mut s.forget_gate, &mut s.cell_gate, &mut s.output_gate]
            .into_iter()
            .chain(s.input_gate.as_mut())
        {
            g.input_weights.fill(0);
            g.recurrent_weights.fill(0);
            g.bias = None;
        }
        let k = Lstm::new(s).expect("valid");
        assert_eq!(run(&k, &[5, -9, 100, 3, -128, 127]), vec![-13; 9]);
    }

    /// A large positive cell-gate bias and open gates drive the cell towards
    /// its limit; the clip holds it at ±clip.
    #[test]
    fn the_cell_clip_bounds_the_state() {
        let mut s = spec(2, 1, 8, 1, 1, false);
        for g in [&mut s.forget_gate, &mut s.cell_gate, &mut s.output_gate]
            .into_iter()
            .chain(s.input_gate.as_mut())
        {
            g.input_weights.fill(0);
            g.recurrent_weights.fill(0);
            g.bias = Some(vec![1_000_000]);
        }
        let unclipped = run(&Lstm::new(s.clone()).expect("valid"), &[0; 8]);
        s.cell_clip = 0.25;
        let clipped = run(&Lstm::new(s).expect("valid"), &[0; 8]);
        // tanh(0.25) · ~1 / 0.0049 - 13 ≈ 36; unclipped the cell grows past 1.
        assert!(
            clipped.iter().all(|&h| (30..=40).contains(&h)),
            "{clipped:?}"
        );
        assert!(unclipped[7] > 100, "{unclipped:?}");
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        let mut s = spec(3, 1, 2, 2, 2, false);
        s.cell_scale = 0.001;
        assert!(
            Lstm::new(s.clone()).is_err(),
            "a cell scale not a power of two"
        );
        s.cell_scale = 2f32.powi(-4);
        assert!(
            Lstm::new(s.clone()).is_err(),
            "a cell scale too coarse for TFLite's tanh"
        );
        let mut s = spec(3, 1, 2, 2, 2, false);
        s.forget_gate.recurrent_weights.pop();
        assert!(Lstm::new(s).is_err(), "short recurrent weights");
        let k = Lstm::new(spec(3, 1, 2, 2, 2, false)).expect("valid");
        assert!(
            lstm_scalar(&k, &[0; 3], &mut [0; 4]).is_err(),
            "short input"
        );
    }
}

/// Against LiteRT: the LSTM of a converted Keras model, run by LiteRT's
/// reference kernels (`tests/fixtures/sequence_ops/make.py` says how).
#[cfg(test)]
mod litert {
    use super::*;
    use crate::litert_fixture::{ints, quant, reference};
    use serde_json::Value;

    fn gate(v: &Value) -> LstmGateSpec {
        LstmGateSpec {
            input_weights: ints(&v["input_weights"]),
            input_scale: v["input_scale"].as_f64().expect("scale") as f32,
            recurrent_weights: ints(&v["recurrent_weights"]),
            recurrent_scale: v["recurrent_scale"].as_f64().expect("scale") as f32,
            bias: Some(ints(&v["bias"])),
        }
    }

    #[test]
    fn equals_litert_reference_kernels() {
        let all: Value = reference();
        let l = &all["lstm"];
        let n = |k: &str| l[k].as_u64().expect("a count") as usize;
        let k = Lstm::new(LstmSpec {
            batches: 1,
            steps: n("steps"),
            inputs: n("inputs"),
            cells: n("cells"),
            time_major: false,
            input_gate: Some(gate(&l["input_gate"])),
            forget_gate: gate(&l["forget_gate"]),
            cell_gate: gate(&l["cell_gate"]),
            output_gate: gate(&l["output_gate"]),
            activation: CellActivation::Tanh,
            input_quant: quant(&l["input_quant"]),
            state_quant: quant(&l["state_quant"]),
            hidden_quant: quant(&l["hidden_quant"]),
            cell_scale: l["cell_scale"].as_f64().expect("scale") as f32,
            cell_clip: l["cell_clip"].as_f64().expect("clip") as f32,
            rounding: Rounding::Double,
        })
        .expect("the model's LSTM prepares");
        let cases = l["cases"].as_array().expect("cases");
        assert!(cases.len() >= 6);
        for (i, c) in cases.iter().enumerate() {
            let input: Vec<i8> = ints(&c["input"]);
            let mut out = vec![0i8; k.output_len()];
            lstm_scalar(&k, &input, &mut out).expect("lengths");
            assert_eq!(out, ints::<i8>(&c["output"]), "case {i}");
        }
    }
}
