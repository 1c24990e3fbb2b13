//! An ONNX model decoded and checked, before any host call: its constants
//! in typed form, its nodes with their attributes, its one input and its
//! outputs. Everything read from the bytes is checked here or where it
//! is used; nothing is indexed unchecked.

use std::collections::HashMap;

use prost::Message;

use super::proto::{self, AttributeProto, TensorProto, ValueInfoProto, data_type};
use crate::model::LoadError;

/// The most graph outputs a model may have (DynamicQuantizeLinear alone
/// has three).
pub(super) const MAX_OUTPUTS: usize = 16;

/// The most elements a constant or an activation may have: far above any
/// model for a gateway, and small enough that sizes never overflow.
pub(super) const MAX_ELEMENTS: usize = 1 << 28;

/// A constant's values.
#[derive(Clone, Debug)]
pub(super) enum Data {
    F32(Vec<f32>),
    /// int8 values; uint8 ones are stored shifted by −128 (see [`Const::unsigned`]).
    I8(Vec<i8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

/// An initializer (or a `Constant` node's value).
#[derive(Clone, Debug)]
pub(super) struct Const {
    pub dims: Vec<usize>,
    pub data: Data,
    /// The tensor was uint8. Its values are kept as `u8 − 128` in int8, and
    /// zero points of uint8 likewise: `q − zp` is unchanged, so every
    /// operator computes the same numbers, and only the bytes at the
    /// model's edges need shifting back.
    pub unsigned: bool,
}

/// One node, its attributes by name.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub index: usize,
    pub op_type: String,
    pub name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    attrs: Vec<AttributeProto>,
}

impl Node {
    /// How errors name the node: its index, type and name.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            self.op_type.clone()
        } else {
            format!("{} '{}'", self.op_type, self.name)
        }
    }

    pub fn unsupported(&self, why: impl std::fmt::Display) -> LoadError {
        LoadError::UnsupportedOp {
            index: self.index,
            name: format!("{}: {why}", self.label()),
        }
    }

    pub fn malformed(&self, why: impl std::fmt::Display) -> LoadError {
        LoadError::Malformed(format!("node {} ({}): {why}", self.index, self.label()))
    }

    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.attrs.iter().find(|a| a.name.as_deref() == Some(name))
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).and_then(|a| a.i).unwrap_or(default)
    }

    pub fn float(&self, name: &str) -> Option<f32> {
        self.attr(name).and_then(|a| a.f)
    }

    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        self.attr(name).map(|a| a.ints.as_slice())
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.attr(name)
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }

    /// Input `i`, if present and not the empty name ONNX uses to skip an
    /// optional input.
    pub fn input(&self, i: usize) -> Option<&str> {
        self.inputs
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Input `i`, which the operator requires.
    pub fn required(&self, i: usize) -> Result<&str, LoadError> {
        self.input(i)
            .ok_or_else(|| self.malformed(format!("input {i} is missing")))
    }

    pub fn output(&self) -> Result<&str, LoadError> {
        match self.outputs.as_slice() {
            [o, ..] if !o.is_empty() => Ok(o),
            _ => Err(self.malformed("no output")),
        }
    }
}

/// The element type and dimensions of a graph input or output.
#[derive(Clone, Debug)]
pub(super) struct Value {
    pub name: String,
    pub elem_type: i32,
    /// Dimensions; one the model leaves open (a named batch) is 1.
    pub dims: Vec<usize>,
}

/// The whole model, decoded.
pub(super) struct Graph {
    pub consts: HashMap<String, Const>,
    pub nodes: Vec<Node>,
    pub input: Value,
    /// At least one, at most [`MAX_OUTPUTS`].
    pub outputs: Vec<Value>,
    /// The version of the default operator set (Softmax's axis means
    /// another thing before 13).
    pub opset: i64,
}

impl Graph {
    /// The model's activations are uint8: its input is, or a
    /// QuantizeLinear makes uint8 (its zero point is uint8, or absent,
    /// which ONNX defines as uint8 0). onnxruntime's quantizers give every
    /// activation of a model one type; the operators whose arithmetic
    /// differs between the two check theirs against this.
    /// DynamicQuantizeLinear makes uint8 too.
    pub fn uint8_activations(&self) -> bool {
        self.input.elem_type == data_type::UINT8
            || self.nodes.iter().any(|n| {
                n.op_type == "DynamicQuantizeLinear"
                    || n.op_type == "QuantizeLinear"
                        && n.input(2)
                            .is_none_or(|z| self.consts.get(z).is_some_and(|c| c.unsigned))
            })
    }
}

fn malformed(m: impl Into<String>) -> LoadError {
    LoadError::Malformed(m.into())
}

fn unsupported(m: impl Into<String>) -> LoadError {
    LoadError::Unsupported(m.into())
}

/// Dimensions as sizes, checked: none negative, the product bounded.
pub(super) fn sizes(dims: &[i64], what: &str) -> Result<Vec<usize>, LoadError> {
    let mut total = 1usize;
    let mut out = Vec::with_capacity(dims.len());
    for &d in dims {
        let d = usize::try_from(d).map_err(|_| malformed(format!("{what}: dimension {d}")))?;
        total = total
            .checked_mul(d)
            .filter(|&t| t <= MAX_ELEMENTS)
            .ok_or_else(|| malformed(format!("{what}: {dims:?} is too large")))?;
        out.push(d);
    }
    Ok(out)
}

/// Little-endian values of `size` bytes each from `raw`, exactly `n` of them.
fn from_raw<T, const N: usize>(
    raw: &[u8],
    n: usize,
    what: &str,
    f: fn([u8; N]) -> T,
) -> Result<Vec<T>, LoadError> {
    if raw.len() != n * N {
        return Err(malformed(format!(
            "{what}: {} bytes of data for {n} elements of {N} bytes",
            raw.len()
        )));
    }
    Ok(raw
        .chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            f(b)
        })
        .collect())
}

fn typed<T: Copy>(v: &[T], n: usize, what: &str) -> Result<Vec<T>, LoadError> {
    if v.len() != n {
        return Err(malformed(format!(
            "{what}: {} values for {n} elements",
            v.len()
        )));
    }
    Ok(v.to_vec())
}

/// A `TensorProto`'s values in typed form.
pub(super) fn constant(t: &TensorProto) -> Result<Const, LoadError> {
    let name = t.name.clone().unwrap_or_default();
    let what = format!("initializer '{name}'");
    if t.data_location == Some(1) {
        return Err(unsupported(format!(
            "{what} keeps its data in an external file; save the model with its data inside"
        )));
    }
    let dims = sizes(&t.dims, &what)?;
    let n: usize = dims.iter().product();
    let raw = t.raw_data.as_deref();
    let dt = t.data_type.unwrap_or(0);
    let (data, unsigned) = match dt {
        data_type::FLOAT => (
            Data::F32(match raw {
                Some(r) => from_raw(r, n, &what, f32::from_le_bytes)?,
                None => typed(&t.float_data, n, &what)?,
            }),
            false,
        ),
        data_type::INT8 | data_type::UINT8 => {
            let bytes: Vec<u8> = match raw {
                Some(r) => typed(r, n, &what)?,
                // int8 and uint8 travel one per int32 when not raw.
                None => typed(&t.int32_data, n, &what)?
                    .iter()
                    .map(|&v| v as u8)
                    .collect(),
            };
            let unsigned = dt == data_type::UINT8;
            let shift = if unsigned { 0x80 } else { 0 };
            (
                Data::I8(bytes.iter().map(|&b| (b ^ shift) as i8).collect()),
                unsigned,
            )
        }
        data_type::INT32 => (
            Data::I32(match raw {
                Some(r) => from_raw(r, n, &what, i32::from_le_bytes)?,
                None => typed(&t.int32_data, n, &what)?,
            }),
            false,
        ),
        data_type::INT64 => (
            Data::I64(match raw {
                Some(r) => from_raw(r, n, &what, i64::from_le_bytes)?,
                None => typed(&t.int64_data, n, &what)?,
            }),
            false,
        ),
        other => {
            return Err(unsupported(format!(
                "{what} has element type {other}; this loader reads float32, int8, uint8, int32 and int64"
            )));
        }
    };
    Ok(Const {
        dims,
        data,
        unsigned,
    })
}

fn value(v: &ValueInfoProto, what: &str) -> Result<Value, LoadError> {
    let name = v.name.clone().unwrap_or_default();
    let tt = v
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| unsupported(format!("{what} '{name}' is not a tensor")))?;
    let shape = tt
        .shape
        .as_ref()
        .ok_or_else(|| unsupported(format!("{what} '{name}' has no shape")))?;
    let dims: Vec<i64> = shape
        .dim
        .iter()
        .map(|d| match (d.dim_value, &d.dim_param) {
            (Some(v), _) => v,
            // A named dimension (a batch the model leaves open) is one input.
            _ => 1,
        })
        .collect();
    Ok(Value {
        dims: sizes(&dims, &format!("{what} '{name}'"))?,
        name,
        elem_type: tt.elem_type.unwrap_or(0),
    })
}

impl Graph {
    /// Decode `bytes` and check what can be checked without the host.
    pub fn read(bytes: &[u8]) -> Result<Graph, LoadError> {
        let model = proto::ModelProto::decode(bytes)
            .map_err(|e| malformed(format!("its protobuf does not decode: {e}")))?;
        let mut opset = 0;
        for o in &model.opset_import {
            let domain = o.domain.as_deref().unwrap_or("");
            if !matches!(domain, "" | "ai.onnx" | "com.microsoft") {
                return Err(unsupported(format!("operator set '{domain}'")));
            }
            if matches!(domain, "" | "ai.onnx") {
                opset = o.version.unwrap_or(0);
            }
        }
        let g = model
            .graph
            .ok_or_else(|| malformed("the model has no graph"))?;
        let mut consts = HashMap::new();
        for t in &g.initializer {
            let name = t.name.clone().unwrap_or_default();
            consts.insert(name, constant(t)?);
        }
        let inputs: Vec<&ValueInfoProto> = g
            .input
            .iter()
            .filter(|i| !consts.contains_key(i.name.as_deref().unwrap_or("")))
            .collect();
        let [input] = inputs.as_slice() else {
            return Err(unsupported(format!(
                "{} graph inputs besides initializers; this loader runs models of one input",
                inputs.len()
            )));
        };
        if g.output.is_empty() || g.output.len() > MAX_OUTPUTS {
            return Err(unsupported(format!(
                "{} graph outputs; this loader runs models of 1 to {MAX_OUTPUTS}",
                g.output.len()
            )));
        }
        let outputs = g
            .output
            .iter()
            .map(|o| value(o, "output"))
            .collect::<Result<Vec<_>, _>>()?;
        let nodes = g
            .node
            .iter()
            .enumerate()
            .map(|(index, n)| Node {
                index,
                op_type: n.op_type.clone().unwrap_or_default(),
                name: n.name.clone().unwrap_or_default(),
                inputs: n.input.clone(),
                outputs: n.output.clone(),
                attrs: n.attribute.clone(),
            })
            .collect();
        Ok(Graph {
            consts,
            nodes,
            input: value(input, "input")?,
            outputs,
            opset,
        })
    }
}
