//! UNIDIRECTIONAL_SEQUENCE_LSTM, TFLite's fully integer form: int8 input
//! `[batches, steps, inputs]` (or time major), int8 weights symmetric per
//! tensor, int32 biases, int8 output of every step's hidden state. The
//! output's quantization is the hidden state's (the converter gives both the
//! same); the cell state's scale and the hidden intermediate's quantization
//! are arguments, since they have no tensor of their own here.

use gatehouse_kernels::KernelSet;
use gatehouse_kernels::lstm::{CellActivation, LstmGateSpec, LstmSpec, lstm_scalar};

use super::operand::{act_i8, bias_i32, symmetric, weights_i8};
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::{TensorKey, TensorStore};

/// One gate's constant tensors.
#[derive(Clone, Copy, Debug)]
pub struct LstmGate {
    /// `[cells, inputs]`.
    pub input_weights: TensorKey,
    /// `[cells, cells]`.
    pub recurrent_weights: TensorKey,
    /// `[cells]` int32, or none.
    pub bias: Option<TensorKey>,
}

/// An LSTM layer over a whole sequence.
#[derive(Clone, Debug)]
pub struct Lstm {
    pub input: TensorKey,
    pub output: TensorKey,
    /// None for a coupled input and forget gate (CIFG).
    pub input_gate: Option<LstmGate>,
    pub forget_gate: LstmGate,
    pub cell_gate: LstmGate,
    pub output_gate: LstmGate,
    pub time_major: bool,
    /// The cell gate's activation is tanh (true) or the logistic (false).
    pub cell_tanh: bool,
    /// The cell state's scale, a power of two.
    pub cell_scale: f32,
    /// The hidden-state intermediate's scale and zero point.
    pub hidden_scale: f32,
    pub hidden_zero_point: i32,
    /// Clip the cell state at ±this (real units); 0 for none.
    pub cell_clip: f32,
}

fn gate(
    st: &TensorStore,
    g: &LstmGate,
    name: &str,
    cells: usize,
    inputs: usize,
) -> Result<LstmGateSpec, NnFault> {
    let weights = |key: TensorKey, what: String, cols: usize| {
        let d = st.desc(key)?;
        if d.shape != [cells, cols] {
            return Err(NnFault::invalid(format!(
                "{what} must be [{cells}, {cols}], is {:?}",
                d.shape
            )));
        }
        let (w, scales, zps) = weights_i8(st, key, &what, 1, 0)?;
        symmetric(&zps, &what)?;
        Ok((w, scales[0]))
    };
    let (input_weights, input_scale) = weights(
        g.input_weights,
        format!("lstm {name} gate input weights"),
        inputs,
    )?;
    let (recurrent_weights, recurrent_scale) = weights(
        g.recurrent_weights,
        format!("lstm {name} gate recurrent weights"),
        cells,
    )?;
    Ok(LstmGateSpec {
        input_weights,
        input_scale,
        recurrent_weights,
        recurrent_scale,
        bias: bias_i32(st, g.bias, cells)?,
    })
}

impl Operator for Lstm {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        cx.fixed_point("lstm")?;
        let (din, s_in, z_in) = act_i8(cx.st, self.input, "lstm input")?;
        let (dout, s_out, z_out) = act_i8(cx.st, self.output, "lstm output")?;
        let (batches, steps, inputs) = match (din.shape.as_slice(), self.time_major) {
            (&[b, t, i], false) | (&[t, b, i], true) => (b, t, i),
            (s, _) => {
                return Err(NnFault::invalid(format!(
                    "lstm input must be rank 3, is {s:?}"
                )));
            }
        };
        let cells = cx
            .st
            .desc(self.output_gate.input_weights)?
            .shape
            .first()
            .copied()
            .unwrap_or(0);
        let want_out = if self.time_major {
            [steps, batches, cells]
        } else {
            [batches, steps, cells]
        };
        if dout.shape != want_out {
            return Err(NnFault::invalid(format!(
                "lstm output must be {want_out:?}, is {:?}",
                dout.shape
            )));
        }
        // What the layer will hold, charged before anything is copied.
        let gates = 3 + self.input_gate.is_some() as usize;
        let held = cells
            .checked_mul(inputs + cells)
            .and_then(|w| w.checked_add(8 * cells))
            .and_then(|g| g.checked_mul(gates))
            .and_then(|h| h.checked_add(batches.checked_mul(cells)?.checked_mul(11)?))
            .ok_or_else(|| NnFault::invalid("lstm: shape overflows"))?;
        cx.stage(Ok(held), "lstm weights")?;
        let st = &*cx.st;
        let spec = LstmSpec {
            batches,
            steps,
            inputs,
            cells,
            time_major: self.time_major,
            input_gate: self
                .input_gate
                .as_ref()
                .map(|g| gate(st, g, "input", cells, inputs))
                .transpose()?,
            forget_gate: gate(st, &self.forget_gate, "forget", cells, inputs)?,
            cell_gate: gate(st, &self.cell_gate, "cell", cells, inputs)?,
            output_gate: gate(st, &self.output_gate, "output", cells, inputs)?,
            activation: if self.cell_tanh {
                CellActivation::Tanh
            } else {
                CellActivation::Sigmoid
            },
            input_quant: (s_in, z_in),
            state_quant: (s_out, z_out),
            hidden_quant: (self.hidden_scale, self.hidden_zero_point),
            cell_scale: self.cell_scale,
            cell_clip: self.cell_clip,
            rounding: cx.semantics.lstm(),
        };
        let k = gatehouse_kernels::Lstm::new(spec)?;
        Ok(Built::new("lstm", Kernel(k), vec![self.input], self.output))
    }
}

struct Kernel(gatehouse_kernels::Lstm);

impl Eval for Kernel {
    fn eval(&self, _ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        // Scalar on every kernel set: its matrix-vector products are small
        // and sequential in time.
        io.one(|i, out| lstm_scalar(&self.0, i, out))
    }

    fn held_bytes(&self) -> u64 {
        (self.0.bytes() + self.0.scratch_bytes()) as u64
    }

    fn macs(&self) -> u64 {
        self.0.macs()
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_kernels::{Semantics, dispatch};
    use serde_json::Value;

    use super::*;
    use crate::ops::{BatchMatMul, OpDesc, PreparedOp};
    use crate::tensor::{DType, Desc, Quant};

    /// LiteRT's reference outputs for a converted Keras LSTM + attention
    /// (`tests/fixtures/sequence_ops/make.py` says how they were made).
    fn fixture() -> Value {
        serde_json::from_str(include_str!(
            "../../../../tests/fixtures/sequence_ops/reference.json"
        ))
        .expect("fixture parses")
    }

    fn quant(v: &Value) -> Quant {
        Quant {
            scales: vec![v[0].as_f64().expect("scale") as f32],
            zero_points: vec![v[1].as_i64().expect("zero point") as i32],
            axis: 0,
        }
    }

    fn bytes(v: &Value, dtype: DType) -> Vec<u8> {
        let ints = v
            .as_array()
            .expect("an array")
            .iter()
            .map(|x| x.as_i64().expect("an integer"));
        match dtype {
            DType::I32 => ints.flat_map(|x| (x as i32).to_le_bytes()).collect(),
            _ => ints.map(|x| x as i8 as u8).collect(),
        }
    }

    fn tensor(
        st: &mut TensorStore,
        dtype: DType,
        shape: &[usize],
        quant: Option<Quant>,
        data: Option<&[u8]>,
    ) -> TensorKey {
        let key = st
            .create(Desc {
                dtype,
                shape: shape.to_vec(),
                quant,
            })
            .expect("fits");
        if let Some(d) = data {
            st.write(key, 0, d).expect("written");
        }
        key
    }

    fn gate(st: &mut TensorStore, g: &Value, cells: usize, inputs: usize) -> LstmGate {
        let scale = |k: &str| {
            Some(Quant {
                scales: vec![g[k].as_f64().expect("scale") as f32],
                zero_points: vec![0],
                axis: 0,
            })
        };
        LstmGate {
            input_weights: tensor(
                st,
                DType::I8,
                &[cells, inputs],
                scale("input_scale"),
                Some(&bytes(&g["input_weights"], DType::I8)),
            ),
            recurrent_weights: tensor(
                st,
                DType::I8,
                &[cells, cells],
                scale("recurrent_scale"),
                Some(&bytes(&g["recurrent_weights"], DType::I8)),
            ),
            bias: Some(tensor(
                st,
                DType::I32,
                &[cells],
                None,
                Some(&bytes(&g["bias"], DType::I32)),
            )),
        }
    }

    fn lstm(st: &mut TensorStore, l: &Value) -> Lstm {
        let n = |k: &str| l[k].as_u64().expect("a count") as usize;
        let (steps, inputs, cells) = (n("steps"), n("inputs"), n("cells"));
        Lstm {
            input: tensor(
                st,
                DType::I8,
                &[1, steps, inputs],
                Some(quant(&l["input_quant"])),
                None,
            ),
            output: tensor(
                st,
                DType::I8,
                &[1, steps, cells],
                Some(quant(&l["state_quant"])),
                None,
            ),
            input_gate: Some(gate(st, &l["input_gate"], cells, inputs)),
            forget_gate: gate(st, &l["forget_gate"], cells, inputs),
            cell_gate: gate(st, &l["cell_gate"], cells, inputs),
            output_gate: gate(st, &l["output_gate"], cells, inputs),
            time_major: false,
            cell_tanh: true,
            cell_scale: l["cell_scale"].as_f64().expect("scale") as f32,
            hidden_scale: l["hidden_quant"][0].as_f64().expect("scale") as f32,
            hidden_zero_point: l["hidden_quant"][1].as_i64().expect("zero point") as i32,
            cell_clip: l["cell_clip"].as_f64().expect("clip") as f32,
        }
    }

    /// The operators as a plugin drives them, on every kernel set this CPU
    /// runs: the LSTM, then both attention products, equal to LiteRT.
    #[test]
    fn lstm_and_batch_matmul_equal_litert_on_every_kernel_set() {
        let all = fixture();
        for ks in dispatch::available() {
            let mut st = TensorStore::new(1 << 20);
            let l = lstm(&mut st, &all["lstm"]);
            let (input, output) = (l.input, l.output);
            let op = PreparedOp::prepare(&OpDesc::from(l), &mut st, Semantics::TfliteReference, ks)
                .expect("prepares");
            for c in all["lstm"]["cases"].as_array().expect("cases") {
                st.write(input, 0, &bytes(&c["input"], DType::I8))
                    .expect("written");
                op.run(&mut st, ks).expect("runs");
                assert_eq!(
                    st.bytes(output).expect("output"),
                    &bytes(&c["output"], DType::I8)[..],
                    "{}",
                    ks.name
                );
            }
            op.release(&mut st);
            for b in all["batch_matmul"].as_array().expect("ops") {
                let shape = |k: &str| -> Vec<usize> {
                    b[k].as_array()
                        .expect("shape")
                        .iter()
                        .map(|d| d.as_u64().expect("dim") as usize)
                        .collect()
                };
                let lhs = tensor(
                    &mut st,
                    DType::I8,
                    &shape("lhs_shape"),
                    Some(quant(&b["lhs_quant"])),
                    None,
                );
                let rhs = tensor(
                    &mut st,
                    DType::I8,
                    &shape("rhs_shape"),
                    Some(quant(&b["rhs_quant"])),
                    None,
                );
                let first = &b["cases"][0];
                let out_len = first["output"].as_array().expect("output").len();
                let out = tensor(
                    &mut st,
                    DType::I8,
                    &[1, out_len],
                    Some(quant(&b["output_quant"])),
                    None,
                );
                let desc = OpDesc::from(BatchMatMul {
                    lhs,
                    rhs,
                    output: out,
                    adj_x: b["adj_x"].as_bool().expect("flag"),
                    adj_y: b["adj_y"].as_bool().expect("flag"),
                });
                let op = PreparedOp::prepare(&desc, &mut st, Semantics::TfliteReference, ks)
                    .expect("prepares");
                for c in b["cases"].as_array().expect("cases") {
                    st.write(lhs, 0, &bytes(&c["lhs"], DType::I8))
                        .expect("written");
                    st.write(rhs, 0, &bytes(&c["rhs"], DType::I8))
                        .expect("written");
                    op.run(&mut st, ks).expect("runs");
                    assert_eq!(
                        st.bytes(out).expect("output"),
                        &bytes(&c["output"], DType::I8)[..],
                        "{}",
                        ks.name
                    );
                }
                op.release(&mut st);
            }
        }
    }

    /// Bad arguments are errors that charge nothing: a wrong output shape,
    /// asymmetric weights, and weights too big for the quota.
    #[test]
    fn bad_arguments_are_refused_and_charge_nothing() {
        let all = fixture();
        let ks = dispatch::available().last().expect("a kernel set");
        let mut st = TensorStore::new(1 << 20);
        let good = lstm(&mut st, &all["lstm"]);
        let used = st.used();

        let mut wrong_shape = good.clone();
        wrong_shape.output = tensor(
            &mut st,
            DType::I8,
            &[1, 9, 12],
            Some(quant(&all["lstm"]["state_quant"])),
            None,
        );
        let used_then = st.used();
        let e = PreparedOp::prepare(
            &OpDesc::from(wrong_shape),
            &mut st,
            Semantics::TfliteReference,
            ks,
        )
        .err()
        .expect("refused");
        assert!(e.to_string().contains("output must be [1, 10, 12]"), "{e}");
        assert_eq!(st.used(), used_then);

        let mut asymmetric = good.clone();
        let w = st
            .desc(good.forget_gate.input_weights)
            .expect("desc")
            .clone();
        let mut q = w.quant.clone().expect("quantized");
        q.zero_points = vec![3];
        asymmetric.forget_gate.input_weights = tensor(&mut st, DType::I8, &w.shape, Some(q), None);
        let used_then = st.used();
        let e = PreparedOp::prepare(
            &OpDesc::from(asymmetric),
            &mut st,
            Semantics::TfliteReference,
            ks,
        )
        .err()
        .expect("refused");
        assert!(e.to_string().contains("symmetric"), "{e}");
        assert_eq!(st.used(), used_then);

        // A store with room for the tensors but not for the layer's copy.
        let mut small = TensorStore::new(used + 1024);
        let l = lstm(&mut small, &all["lstm"]);
        let before = small.used();
        let e = PreparedOp::prepare(&OpDesc::from(l), &mut small, Semantics::TfliteReference, ks)
            .err()
            .expect("refused");
        assert!(e.to_string().to_lowercase().contains("quota"), "{e}");
        assert_eq!(small.used(), before);
    }
}
