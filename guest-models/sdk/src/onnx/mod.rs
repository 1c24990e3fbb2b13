//! Load an int8 ONNX model into a host plan, with onnxruntime's arithmetic.
//!
//! ONNX models from the field's quantizers come in QDQ form
//! (`onnxruntime.quantization.quantize_static`: QuantizeLinear and
//! DequantizeLinear around float operators) or in operator form
//! (QLinearConv, QLinearMatMul). Both load here onto the host's int8
//! kernels, reproducing what onnxruntime's optimized CPU session computes
//! ([`lower`] says how it fuses). The protobuf is read inside the sandbox,
//! as the TFLite flatbuffer is: model bytes are as untrusted as the plugin
//! that carries them.
//!
//! A QDQ model's "result" depends on the runtime: onnxruntime's
//! unoptimized session (and `onnx.reference`) compute in float between the
//! quantize and dequantize nodes and differ from its fused integer kernels
//! in rounding. This loader reproduces the fused kernels, byte for byte;
//! `tests/fixtures/onnx/README.md` says what was measured.

mod graph;
mod lower;
mod proto;

use crate::model::{LoadError, TensorInfo};
use crate::nn::{Dtype, NnError, Plan, Tensor, TensorDesc};
use graph::{Graph, Value};
use lower::Lower;
pub use proto::data_type;

/// A model recorded as a host plan, ready to run.
pub struct Model {
    plan: Plan,
    input: Tensor,
    input_info: TensorInfo,
    /// The input's NCHW dimensions when it is 4-D: the host holds it as
    /// NHWC, so each call transposes it.
    input_nchw: Option<[usize; 4]>,
    /// uint8 at the model's edge: the host's int8 bytes are shifted by 128.
    input_unsigned: bool,
    /// At least one.
    outputs: Vec<Output>,
    operators: Vec<String>,
    /// The plan runs under onnxruntime's uint8 semantics.
    uint8_activations: bool,
}

/// One of the model's outputs and how its bytes come back.
struct Output {
    tensor: Tensor,
    info: TensorInfo,
    /// As for the input.
    nchw: Option<[usize; 4]>,
    unsigned: bool,
}

impl Output {
    /// `out`, k whole outputs as the host holds them, in the model's own
    /// layout and type.
    fn to_model(&self, mut out: Vec<u8>) -> Vec<u8> {
        if self.unsigned {
            out.iter_mut().for_each(|b| *b ^= 0x80);
        }
        match self.nchw {
            Some(d) if self.info.byte_len > 0 && out.len().is_multiple_of(self.info.byte_len) => {
                transpose(&out, d, self.info.dtype.size(), true)
            }
            _ => out,
        }
    }
}

fn dtype(elem_type: i32) -> Option<Dtype> {
    Some(match elem_type {
        data_type::FLOAT => Dtype::Float32,
        data_type::INT8 => Dtype::Int8,
        data_type::INT32 => Dtype::Int32,
        data_type::UINT8 => Dtype::Uint8,
        _ => return None,
    })
}

fn info(v: &Value) -> Result<TensorInfo, LoadError> {
    let dtype = dtype(v.elem_type).ok_or_else(|| {
        LoadError::Unsupported(format!(
            "'{}' has element type {}; float32, int8 or uint8 only",
            v.name, v.elem_type
        ))
    })?;
    let shape: Vec<u32> = v.dims.iter().map(|&d| d as u32).collect();
    Ok(TensorInfo {
        name: v.name.clone(),
        byte_len: TensorDesc::new(dtype, &shape, None).byte_len(),
        shape,
        dtype,
        scale: 0.0,
        zero_point: 0,
    })
}

fn nchw(dims: &[usize]) -> Option<[usize; 4]> {
    dims.try_into().ok()
}

/// Moves `elem`-byte elements of each `[n, a, b, c]` block of `data` to
/// `[n, b, c, a]` order (NCHW to NHWC with `(a, b, c) = (c, h, w)`), or
/// back with `back`.
fn transpose(data: &[u8], [n, c, h, w]: [usize; 4], elem: usize, back: bool) -> Vec<u8> {
    let mut out = vec![0u8; data.len()];
    let block = n * c * h * w * elem;
    for (src, dst) in data.chunks_exact(block).zip(out.chunks_exact_mut(block)) {
        for b in 0..n {
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        let nchw = ((b * c + ch) * h + y) * w + x;
                        let nhwc = ((b * h + y) * w + x) * c + ch;
                        let (from, to) = if back { (nhwc, nchw) } else { (nchw, nhwc) };
                        dst[to * elem..(to + 1) * elem]
                            .copy_from_slice(&src[from * elem..(from + 1) * elem]);
                    }
                }
            }
        }
    }
    out
}

impl Model {
    pub fn input(&self) -> &TensorInfo {
        &self.input_info
    }

    /// The first output.
    pub fn output(&self) -> &TensorInfo {
        &self.outputs[0].info
    }

    /// Every output, in the model's order.
    pub fn outputs(&self) -> impl Iterator<Item = &TensorInfo> {
        self.outputs.iter().map(|o| &o.info)
    }

    /// The bytes one input's outputs take, back to back.
    pub fn output_bytes(&self) -> usize {
        self.outputs.iter().map(|o| o.info.byte_len).sum()
    }

    /// The host semantics the plan runs under, as `gatehouse:nn/runtimes`
    /// names it: `onnxruntime`, or `onnxruntime-uint8` for a model whose
    /// activations are uint8.
    pub fn semantics(&self) -> &'static str {
        match self.uint8_activations {
            true => "onnxruntime-uint8",
            false => "onnxruntime",
        }
    }

    /// Host operators in execution order.
    pub fn operators(&self) -> &[String] {
        &self.operators
    }

    /// Run on `data`, which holds k ≥ 1 whole inputs in the model's own
    /// layout and type; returns the k results likewise, each its outputs
    /// back to back in the model's order.
    pub fn invoke(&self, data: &[u8]) -> Result<Vec<u8>, NnError> {
        let elem = self.input_info.dtype.size();
        let mut input = match self.input_nchw {
            Some(d)
                if self.input_info.byte_len > 0
                    && data.len().is_multiple_of(self.input_info.byte_len) =>
            {
                transpose(data, d, elem, false)
            }
            _ => data.to_vec(),
        };
        if self.input_unsigned {
            input.iter_mut().for_each(|b| *b ^= 0x80);
        }
        if let [one] = self.outputs.as_slice() {
            let out = self.plan.invoke(&self.input, &input, &one.tensor)?;
            return Ok(one.to_model(out));
        }
        // Several outputs: one input at a time, each output read after the run.
        let size = self.input_info.byte_len.max(1);
        if !input.len().is_multiple_of(size) {
            return Err(NnError::InvalidArgument(format!(
                "{} bytes of input; the model takes whole inputs of {size} bytes",
                input.len()
            )));
        }
        let mut all = Vec::with_capacity(input.len() / size * self.output_bytes());
        for chunk in input.chunks(size) {
            self.input.write(0, chunk)?;
            self.plan.run()?;
            for o in &self.outputs {
                all.extend(o.to_model(o.tensor.read()));
            }
        }
        Ok(all)
    }

    /// Decode and check `bytes` without the host: the model's input, its
    /// first output and its nodes' types. For tools, and for fuzzing natively.
    pub fn inspect(bytes: &[u8]) -> Result<(TensorInfo, TensorInfo, Vec<String>), LoadError> {
        let g = Graph::read(bytes)?;
        let first = g
            .outputs
            .first()
            .ok_or_else(|| LoadError::Malformed("no outputs".into()))?;
        Ok((
            info(&g.input)?,
            info(first)?,
            g.nodes.iter().map(|n| n.op_type.clone()).collect(),
        ))
    }

    /// Load `bytes` and record its plan on the host, under onnxruntime's
    /// semantics.
    pub fn load(bytes: &[u8]) -> Result<Model, LoadError> {
        let g = Graph::read(bytes)?;
        let input_info = info(&g.input)?;
        let output_values = g.outputs.clone();
        let infos = output_values
            .iter()
            .map(info)
            .collect::<Result<Vec<_>, _>>()?;
        let input_value = g.input.clone();
        let mut low = Lower::new(g);
        let dims = input_value.dims.clone();
        let input_unsigned = input_info.dtype == Dtype::Uint8;
        let t = if input_info.dtype == Dtype::Float32 {
            low.float_input(&input_value.name, &dims)?
        } else {
            low.quantized_input(&input_value.name, &dims, input_unsigned)?
        };
        if low.node_count() == 0 {
            return Err(LoadError::Malformed("the graph has no nodes".into()));
        }
        low.nodes()?;
        let mut outs = Vec::with_capacity(infos.len());
        for (value, output_info) in output_values.iter().zip(infos) {
            let (out_t, out_act, want, quantized) = low.output(value)?;
            if output_info.dtype != want || value.dims != out_act.dims {
                return Err(LoadError::Malformed(format!(
                    "output '{}' is declared {:?} {:?} but computes to {want:?} {:?}",
                    value.name, output_info.dtype, value.dims, out_act.dims
                )));
            }
            if out_t == t {
                return Err(LoadError::Unsupported(format!(
                    "output '{}' is the input itself",
                    value.name
                )));
            }
            let unsigned = want == Dtype::Uint8;
            let info = TensorInfo {
                scale: if quantized { out_act.scale } else { 0.0 },
                zero_point: match (quantized, unsigned) {
                    (false, _) => 0,
                    (true, u) => out_act.zp + if u { 128 } else { 0 },
                },
                ..output_info
            };
            outs.push((out_t, info, nchw(&value.dims), unsigned));
        }
        let Lower {
            plan,
            tensors,
            ops,
            uint8,
            ..
        } = low;
        // Keep the handles a call needs; the plan holds the rest.
        let mut tensors: Vec<Option<Tensor>> = tensors.into_iter().map(Some).collect();
        let mut take = |i: usize| {
            tensors
                .get_mut(i)
                .and_then(Option::take)
                .ok_or_else(|| LoadError::Unsupported("two outputs are one tensor".into()))
        };
        let input = take(t)?;
        let outputs = outs
            .into_iter()
            .map(|(out_t, info, nchw, unsigned)| {
                Ok(Output {
                    tensor: take(out_t)?,
                    info,
                    nchw,
                    unsigned,
                })
            })
            .collect::<Result<Vec<_>, LoadError>>()?;
        Ok(Model {
            plan,
            input,
            input_nchw: nchw(&dims),
            input_unsigned,
            input_info,
            outputs,
            operators: ops,
            uint8_activations: uint8,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_round_trips() {
        let d = [2, 3, 2, 2];
        let data: Vec<u8> = (0..48).collect();
        let t = transpose(&data, d, 2, false);
        assert_ne!(t, data);
        assert_eq!(transpose(&t, d, 2, true), data);
        // Element (n=0, c=1, h=0, w=0) of NCHW lands at NHWC position 1.
        let one: Vec<u8> = (0..24).collect();
        assert_eq!(transpose(&one, d, 1, false)[1], 4);
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bytes in [&b"TFL3 not onnx"[..], &[0xff; 64], &[]] {
            match Model::inspect(bytes) {
                Err(LoadError::Malformed(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    }
}
