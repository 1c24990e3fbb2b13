//! An ONNX graph lowered onto host operators as onnxruntime's optimized CPU
//! session runs it.
//!
//! onnxruntime fuses each QDQ group, `DequantizeLinear` → Conv, Gemm,
//! MatMul, GlobalAveragePool, AveragePool, Sigmoid, LeakyRelu, Softmax,
//! Add, Mul or Concat → `QuantizeLinear`, into one integer kernel
//! (QLinearConv, QGemm, QLinearMatMul, QLinearGlobalAveragePool,
//! QLinearAveragePool, QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax,
//! QLinearAdd, QLinearMul, QLinearConcat), and drops the DQ/Q pair around
//! MaxPool, Flatten, Reshape and Transpose when both sides share a scale
//! and zero point. This module does the same: a `DequantizeLinear` is
//! only noted, a float operator on dequantized operands waits for its
//! `QuantizeLinear` ([`Val::Pending`]), and the pair then becomes one host
//! operator under [`Semantics::Onnxruntime`], or
//! [`Semantics::OnnxruntimeUint8`] when the model's activations are uint8.
//! A group onnxruntime would run in float is refused, naming the node.
//!
//! Layout: 4-D activations live on the host as NHWC, the kernels' layout.
//! Filters are transposed once at load; the model's NCHW input and output
//! are transposed in the guest per call ([`super::Model::invoke`]). A
//! Flatten of an NHWC tensor orders its elements (h, w, c), not ONNX's
//! (c, h, w), so the Gemm or MatMul after it takes its weight columns in
//! that order instead ([`Act::flat`]).

mod batch_matmul;
mod linear_quant;

use std::collections::HashMap;

use super::graph::{Const, Data, Graph, Node, Value};
use crate::model::LoadError;
use crate::nn::runtimes::{self, DynamicQuantize, LeakyRelu, MoreOp, Semantics, Transpose};
use crate::nn::{
    self, Activation, Dtype, NnError, Op, Padding, Plan, Quantization, Tensor, TensorDesc, Window,
};

/// A quantized activation in host memory.
#[derive(Clone, Debug)]
pub(super) struct Act {
    /// Index into [`Lower::tensors`].
    pub t: usize,
    /// ONNX's dimensions (NCHW for 4-D).
    pub dims: Vec<usize>,
    pub scale: f32,
    /// In int8 terms: a uint8 zero point less 128.
    pub zp: i32,
    pub unsigned: bool,
    /// A flattened NHWC activation: ONNX's `[c, h, w]` before the flatten.
    pub flat: Option<[usize; 3]>,
}

impl Act {
    fn nhwc(&self) -> bool {
        self.dims.len() == 4
    }

    /// Dimensions as the host holds them.
    fn host_dims(&self) -> Vec<u32> {
        let d = &self.dims;
        let v = if self.nhwc() {
            vec![d[0], d[2], d[3], d[1]]
        } else {
            d.clone()
        };
        v.into_iter().map(|x| x as u32).collect()
    }
}

/// A dequantized constant: weights or a bias.
#[derive(Clone, Debug)]
pub(super) struct QConst {
    c: Const,
    scales: Vec<f32>,
    zps: Vec<i32>,
    axis: usize,
}

/// What a value name stands for while the graph is lowered.
#[derive(Clone, Debug)]
pub(super) enum Val {
    /// The model's float input, in host memory (NHWC when 4-D).
    Float { t: usize, dims: Vec<usize> },
    /// A quantized activation.
    Quant(Act),
    /// `DequantizeLinear` of an activation, not materialized.
    Deq(Act),
    /// ConvInteger's or MatMulInteger's int32 sums (its scale and zero
    /// point mean nothing).
    Int32(Act),
    /// `DequantizeLinear` of a constant.
    DeqConst(Box<QConst>),
    /// A tensor whose quantization is known only at run time, per axis or
    /// block, or none: DynamicQuantizeLinear's three outputs, what
    /// QuantizeLinear or DequantizeLinear per axis or block make, and an
    /// integer input that one of the latter reads. Only a graph output
    /// may be one.
    Raw {
        t: usize,
        dims: Vec<usize>,
        dtype: Dtype,
    },
    /// A float operator on dequantized operands, waiting for the
    /// `QuantizeLinear` that makes it a fused kernel; `clip` is a Relu or
    /// Clip between the two, kept only if the quantization makes it moot.
    Pending {
        node: usize,
        clip: Option<(f32, f32)>,
    },
}

/// What is lowered so far.
pub(super) struct Lower {
    consts: HashMap<String, Const>,
    nodes: Vec<Node>,
    /// The default operator set's version.
    opset: i64,
    /// The plan's semantics is onnxruntime's for uint8 activations
    /// ([`Graph::uint8_activations`]).
    pub uint8: bool,
    pub plan: Plan,
    pub tensors: Vec<Tensor>,
    pub vals: HashMap<String, Val>,
    /// Host operators in plan order, for `describe` and errors.
    pub ops: Vec<String>,
}

fn host(context: String) -> impl FnOnce(NnError) -> LoadError {
    move |error| LoadError::Host { context, error }
}

fn qdesc(dims: &[u32], q: Quantization) -> TensorDesc {
    TensorDesc::new(Dtype::Int8, dims, Some(q))
}

/// The shape two activations of one rank (and one layout) broadcast to.
fn broadcast(a: &Act, b: &Act) -> Option<Vec<usize>> {
    if a.dims.len() != b.dims.len() || a.flat != b.flat {
        return None;
    }
    a.dims
        .iter()
        .zip(&b.dims)
        .map(|(&p, &q)| match (p, q) {
            _ if p == q => Some(p),
            (1, q) => Some(q),
            (p, 1) => Some(p),
            _ => None,
        })
        .collect()
}

fn u32s(v: &[usize]) -> Vec<u32> {
    v.iter().map(|&x| x as u32).collect()
}

/// Appends `op` to the plan; a free function, so that the operator's
/// borrows of [`Lower::tensors`] and this borrow of the plan and the list of
/// names can coexist.
fn push(
    plan: &Plan,
    ops: &mut Vec<String>,
    op: Op<'_>,
    name: &str,
    node: &Node,
) -> Result<(), LoadError> {
    plan.push(&op)
        .map_err(host(format!("node {} ({})", node.index, node.label())))?;
    ops.push(name.to_string());
    Ok(())
}

/// onnxruntime's broadcaster (`core/providers/cpu/math/element_wise_ops.h`)
/// groups the innermost dimensions in which each input either broadcasts
/// or does not into spans, and runs its kernel once per span: with A as a
/// scalar when A broadcasts there, which it hands to the kernel second. The
/// innermost dimension of the output longer than 1 tells: A broadcasts
/// along it (its `a` is 1), or not. Both operands have the output's rank.
fn a_is_scalar_per_span(a: &[usize], out: &[usize]) -> bool {
    a.iter()
        .zip(out)
        .rev()
        .find(|&(_, &o)| o > 1)
        .is_some_and(|(&a, _)| a == 1)
}

/// An OIHW filter of `icg` input channels and `taps` taps, as OHWI bytes.
fn ohwi(w: &[i8], icg: usize, taps: usize) -> Vec<u8> {
    let mut f = vec![0u8; w.len()];
    for (i, &v) in w.iter().enumerate() {
        let (o, ci, tap) = (i / (icg * taps), i / taps % icg, i % taps);
        f[(o * taps + tap) * icg + ci] = v as u8;
    }
    f
}

/// ONNX's NCHW dimensions in NHWC order.
fn to_nhwc(d: &[usize]) -> Vec<usize> {
    match d {
        &[n, c, h, w] => vec![n, h, w, c],
        _ => d.to_vec(),
    }
}

/// QLinearAdd as onnxruntime's x86 kernel sums, `fma(x, rx, fma(y, ry,
/// fixed))` with `x` first (the host's `add`), gives the same bytes with
/// the operands in either order for every pair `a` (its `a_values`, or all
/// 256) and `b` can hold; on uint8 values under `uint8`.
fn orders_agree(a: &Act, a_values: Option<&[i8]>, b: &Act, out: &Act, uint8: bool) -> bool {
    let shift = if uint8 { 128.0 } else { 0.0 };
    let (ra, rb) = (a.scale / out.scale, b.scale / out.scale);
    let z = |zp: i32| zp as f32 + shift;
    let fixed = z(out.zp) - (ra * z(a.zp) + rb * z(b.zp));
    let all: Vec<i8> = (-128..=127).collect();
    let byte = |v: f32| v.round_ties_even().clamp(-128.0 + shift, 127.0 + shift);
    a_values.unwrap_or(&all).iter().all(|&x| {
        let x = x as f32 + shift;
        (-128..=127).all(|y| {
            let y = y as f32 + shift;
            byte(x.mul_add(ra, y.mul_add(rb, fixed))) == byte(y.mul_add(rb, x.mul_add(ra, fixed)))
        })
    })
}

/// Appends an operator of `more-ops` to the plan, as [`push`] does.
fn push_more(
    plan: &Plan,
    ops: &mut Vec<String>,
    op: MoreOp<'_>,
    name: &str,
    node: &Node,
) -> Result<(), LoadError> {
    runtimes::more::push(plan, &op).map_err(host(format!(
        "node {} ({})",
        node.index,
        node.label()
    )))?;
    ops.push(name.to_string());
    Ok(())
}

/// TFLite's SAME padding of one dimension: `(before, after)`.
fn same(size: usize, k_eff: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out.saturating_sub(1)) * stride + k_eff).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// How a window's padding reaches the host.
enum Pads {
    Valid,
    Same,
    /// `[top, left, bottom, right]`, done by a PAD first.
    Explicit([usize; 4]),
}

impl Lower {
    /// An empty plan on the host, under onnxruntime's semantics for the
    /// model's activation type.
    pub fn new(g: Graph) -> Lower {
        let uint8 = g.uint8_activations();
        let semantics = match uint8 {
            true => Semantics::OnnxruntimeUint8,
            false => Semantics::Onnxruntime,
        };
        Lower {
            uint8,
            plan: runtimes::new_plan(semantics),
            consts: g.consts,
            nodes: g.nodes,
            opset: g.opset,
            tensors: vec![],
            vals: HashMap::new(),
            ops: vec![],
        }
    }

    /// The model's float32 input, held NHWC when it is 4-D.
    pub fn float_input(&mut self, name: &str, dims: &[usize]) -> Result<usize, LoadError> {
        let host: Vec<u32> = match dims {
            &[n, c, h, w] => vec![n, h, w, c],
            d => d.to_vec(),
        }
        .into_iter()
        .map(|d| d as u32)
        .collect();
        let t = self.tensor(
            TensorDesc::new(Dtype::Float32, &host, None),
            &[],
            "the input",
        )?;
        self.vals.insert(
            name.to_string(),
            Val::Float {
                t,
                dims: dims.to_vec(),
            },
        );
        Ok(t)
    }

    /// An int8 or uint8 model input (operator form). A host tensor is made
    /// with its quantization, which the model gives only where the input
    /// is used: the scale and zero point its first consumer (QLinearConv,
    /// QLinearMatMul or DequantizeLinear) takes as inputs 1 and 2.
    pub fn quantized_input(
        &mut self,
        name: &str,
        dims: &[usize],
        unsigned: bool,
    ) -> Result<usize, LoadError> {
        let node = self
            .nodes
            .iter()
            .find(|n| n.inputs.iter().any(|i| i == name))
            .cloned()
            .ok_or_else(|| LoadError::Unsupported(format!("input '{name}' is never used")))?;
        if !matches!(
            node.op_type.as_str(),
            "QLinearConv" | "QLinearMatMul" | "DequantizeLinear" | "ConvInteger" | "MatMulInteger"
        ) || node.input(0) != Some(name)
        {
            return Err(node.unsupported(format!(
                "the integer input '{name}' must be first read by QLinearConv, QLinearMatMul, \
                 ConvInteger, MatMulInteger or DequantizeLinear"
            )));
        }
        if node.op_type == "DequantizeLinear" && self.per_element(&node) {
            // Quantized per axis or block: bytes for `dequantize_linear`.
            let desc = TensorDesc::new(Dtype::Int8, &u32s(&to_nhwc(dims)), None);
            let t = self.tensor(desc, &[], "the input")?;
            let dtype = if unsigned { Dtype::Uint8 } else { Dtype::Int8 };
            let raw = Val::Raw {
                t,
                dims: dims.to_vec(),
                dtype,
            };
            self.vals.insert(name.to_string(), raw);
            return Ok(t);
        }
        let (scale, zp) = if node.op_type.ends_with("Integer") {
            // No scale: the sums are integers.
            (1.0, self.integer_zero_points(&node, 2, unsigned, 1)?[0])
        } else {
            let (scale, zp, zp_unsigned) = self.qparams(&node, 1, 2)?;
            if node.input(2).is_some() && zp_unsigned != unsigned {
                return Err(node.malformed("the input and its zero point differ in type"));
            }
            (
                scale,
                if node.input(2).is_none() && !unsigned {
                    0
                } else {
                    zp
                },
            )
        };
        let a = Act {
            t: 0,
            dims: dims.to_vec(),
            scale,
            zp,
            unsigned,
            flat: None,
        };
        let t = self.place(&a, "the input")?;
        self.vals
            .insert(name.to_string(), Val::Quant(Act { t, ..a }));
        Ok(t)
    }

    /// An int32 bias as a host tensor, when there is one.
    fn bias_tensor(&mut self, bias: Option<&[i32]>) -> Result<Option<usize>, LoadError> {
        let Some(b) = bias else { return Ok(None) };
        let bytes: Vec<u8> = b.iter().flat_map(|v| v.to_le_bytes()).collect();
        let desc = TensorDesc::new(Dtype::Int32, &[b.len() as u32], None);
        self.tensor(desc, &bytes, "a bias").map(Some)
    }

    /// A host tensor for activation `a`, quantized as it says.
    fn place(&mut self, a: &Act, what: &str) -> Result<usize, LoadError> {
        let q = Quantization::per_tensor(a.scale, a.zp);
        self.tensor(qdesc(&a.host_dims(), q), &[], what)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn tensor(
        &mut self,
        desc: TensorDesc,
        data: &[u8],
        what: &str,
    ) -> Result<usize, LoadError> {
        let t = Tensor::with_data(&desc, data).map_err(host(format!("creating {what}")))?;
        self.tensors.push(t);
        Ok(self.tensors.len() - 1)
    }

    fn val(&self, node: &Node, name: &str) -> Result<&Val, LoadError> {
        self.vals
            .get(name)
            .ok_or_else(|| node.malformed(format!("'{name}' is not produced before it is used")))
    }

    fn constant<'a>(&'a self, node: &Node, name: &str) -> Result<&'a Const, LoadError> {
        self.consts
            .get(name)
            .ok_or_else(|| node.unsupported(format!("'{name}' must be a constant")))
    }

    /// A scalar scale and zero point (inputs `si` and `zi`); an omitted zero
    /// point is uint8 0, as ONNX defines it.
    fn qparams(&self, node: &Node, si: usize, zi: usize) -> Result<(f32, i32, bool), LoadError> {
        let s = self.constant(node, node.required(si)?)?;
        let scale = match &s.data {
            Data::F32(v) if v.len() == 1 => v[0],
            _ => {
                return Err(
                    node.unsupported("a scale that is not one float (per-axis activations)")
                );
            }
        };
        if !(scale.is_finite() && scale > 0.0) {
            return Err(node.malformed(format!("scale {scale}")));
        }
        let Some(zn) = node.input(zi) else {
            return Ok((scale, -128, true));
        };
        let z = self.constant(node, zn)?;
        match &z.data {
            Data::I8(v) if v.len() == 1 => Ok((scale, v[0] as i32, z.unsigned)),
            _ => Err(node.unsupported("a zero point that is not one int8 or uint8")),
        }
    }

    /// A dequantized constant's scales, zero points and axis.
    fn qconst(&self, node: &Node, c: &Const) -> Result<QConst, LoadError> {
        let s = self.constant(node, node.required(1)?)?;
        let Data::F32(scales) = &s.data else {
            return Err(node.unsupported("a scale that is not float"));
        };
        let rank = c.dims.len() as i64;
        let axis = node.int("axis", 1);
        let axis = if axis < 0 { axis + rank } else { axis };
        let per_axis = scales.len() != 1;
        let axis = match usize::try_from(axis) {
            Ok(a) if a < c.dims.len() => a,
            _ if !per_axis => 0,
            _ => return Err(node.malformed(format!("axis {axis} of a rank-{rank} tensor"))),
        };
        if per_axis && scales.len() != c.dims[axis] {
            return Err(node.malformed(format!(
                "{} scales for {} slices on axis {axis}",
                scales.len(),
                c.dims[axis]
            )));
        }
        let zps: Vec<i32> = match node.input(2) {
            None => vec![if c.unsigned { -128 } else { 0 }; scales.len()],
            Some(zn) => match &self.constant(node, zn)?.data {
                Data::I8(v) if v.len() == scales.len() => v.iter().map(|&z| z as i32).collect(),
                Data::I32(v) if v.len() == scales.len() => v.clone(),
                _ => return Err(node.malformed("zero points do not match the scales")),
            },
        };
        Ok(QConst {
            c: c.clone(),
            scales: scales.clone(),
            zps,
            axis,
        })
    }

    /// Lower every node, in order (ONNX lists them topologically).
    pub fn nodes(&mut self) -> Result<(), LoadError> {
        for i in 0..self.nodes.len() {
            let node = self.nodes[i].clone();
            self.node(&node)?;
        }
        Ok(())
    }

    fn node(&mut self, node: &Node) -> Result<(), LoadError> {
        if node.op_type == "DynamicQuantizeLinear" {
            return self.dynamic_quantize(node);
        }
        let out = node.output()?.to_string();
        let val = match node.op_type.as_str() {
            "QuantizeLinear" => self.quantize(node)?,
            "DequantizeLinear" => self.dequantize(node)?,
            "Conv" | "Gemm" | "MatMul" | "MaxPool" | "GlobalAveragePool" | "AveragePool"
            | "Sigmoid" | "Softmax" | "Flatten" | "Reshape" | "Transpose" | "LeakyRelu" => {
                match self.val(node, node.required(0)?)? {
                    Val::Deq(_) => Val::Pending {
                        node: node.index,
                        clip: None,
                    },
                    Val::Quant(_)
                        if matches!(
                            node.op_type.as_str(),
                            "MaxPool" | "Flatten" | "Reshape" | "Transpose"
                        ) =>
                    {
                        // Operator form: integer in, integer out, one scale.
                        let x = self.act(node, 0)?;
                        Val::Quant(self.finish(node, x.scale, x.zp, x.unsigned)?)
                    }
                    _ => {
                        return Err(node.unsupported(
                            "its input is not dequantized from int8; onnxruntime would run it in float",
                        ));
                    }
                }
            }
            "Add" | "Mul" => match (
                self.val(node, node.required(0)?)?,
                self.val(node, node.required(1)?)?,
            ) {
                (Val::Deq(_), Val::Deq(_) | Val::DeqConst(_)) => Val::Pending {
                    node: node.index,
                    clip: None,
                },
                (Val::DeqConst(_), Val::Deq(_)) => Val::Pending {
                    node: node.index,
                    clip: None,
                },
                _ => {
                    return Err(node.unsupported(format!(
                        "an {} of other than two activations dequantized from int8; \
                         onnxruntime would run it in float",
                        node.op_type
                    )));
                }
            },
            "Concat" => {
                for i in 0..node.inputs.len() {
                    if !matches!(self.val(node, node.required(i)?)?, Val::Deq(_)) {
                        return Err(node.unsupported(format!(
                            "input {i} is not an activation dequantized from int8; \
                             onnxruntime would run it in float"
                        )));
                    }
                }
                Val::Pending {
                    node: node.index,
                    clip: None,
                }
            }
            "Relu" | "Clip" => self.clip(node)?,
            "QLinearAdd" | "QLinearMul" => {
                // com.microsoft's: C's scale and zero point are inputs 6 and 7.
                let (ys, yz, unsigned) = self.qparams(node, 6, 7)?;
                Val::Quant(self.finish(node, ys, yz, unsigned)?)
            }
            "QLinearSigmoid" | "QLinearAveragePool" | "QLinearSoftmax" | "QLinearLeakyRelu" => {
                // com.microsoft's: X, its scale and zero point, then Y's.
                let (ys, yz, unsigned) = self.qparams(node, 3, 4)?;
                Val::Quant(self.finish(node, ys, yz, unsigned)?)
            }
            "QLinearConcat" => {
                // com.microsoft's: Y's scale and zero point, then a triple per input.
                let (ys, yz, unsigned) = self.qparams(node, 0, 1)?;
                Val::Quant(self.finish(node, ys, yz, unsigned)?)
            }
            "QLinearConv" | "QLinearMatMul" => {
                // Both take the output's scale and zero point as inputs 6 and 7.
                let (ys, yz, unsigned) = self.qparams(node, 6, 7)?;
                Val::Quant(self.finish(node, ys, yz, unsigned)?)
            }
            "ConvInteger" => Val::Int32(self.conv_integer(node)?),
            "MatMulInteger" => Val::Int32(self.matmul_integer(node)?),
            "Constant" => {
                return Err(node.unsupported(
                    "Constant nodes; fold them into initializers (onnxruntime's optimizer or onnx-simplifier does)",
                ));
            }
            _ => {
                return Err(
                    node.unsupported("no host kernel reproduces it under onnxruntime's semantics")
                );
            }
        };
        self.vals.insert(out, val);
        Ok(())
    }

    fn act(&self, node: &Node, i: usize) -> Result<Act, LoadError> {
        match self.val(node, node.required(i)?)? {
            Val::Deq(a) | Val::Quant(a) => Ok(a.clone()),
            Val::Raw { .. } => Err(node.unsupported(format!(
                "input {i} is quantized at a scale known only at run time (DynamicQuantizeLinear) \
                 or per axis or block, which no host operator computes on: it can only be a \
                 model's output"
            ))),
            _ => Err(node.unsupported(format!("input {i} is not an int8 activation"))),
        }
    }

    fn quantize(&mut self, node: &Node) -> Result<Val, LoadError> {
        if self.per_element(node) {
            return self.quantize_linear(node);
        }
        let (scale, zp, unsigned) = self.qparams(node, 1, 2)?;
        match self.val(node, node.required(0)?)?.clone() {
            Val::Float { t, dims } => {
                let a = Act {
                    t: 0,
                    dims: dims.clone(),
                    scale,
                    zp,
                    unsigned,
                    flat: None,
                };
                let out = self.place(&a, "a quantized input")?;
                let op = Op::Quantize(nn::Unary {
                    input: &self.tensors[t],
                    output: &self.tensors[out],
                });
                push(&self.plan, &mut self.ops, op, "quantize", node)?;
                Ok(Val::Quant(Act { t: out, ..a }))
            }
            Val::Pending { node: p, clip } => {
                if let Some((lo, hi)) = clip {
                    // onnxruntime drops a Relu or Clip before QuantizeLinear
                    // only when the quantized range already lies inside it.
                    let (qlo, qhi) = ((-128 - zp) as f32 * scale, (127 - zp) as f32 * scale);
                    if qlo < lo || qhi > hi {
                        return Err(node.unsupported(format!(
                            "a Relu or Clip to [{lo}, {hi}] before a quantization to [{qlo}, {qhi}]: \
                             onnxruntime keeps it in float"
                        )));
                    }
                }
                let pending = self.nodes[p].clone();
                Ok(Val::Quant(self.finish(&pending, scale, zp, unsigned)?))
            }
            _ => Err(node.unsupported(
                "it quantizes something other than the model's float input or a fused group",
            )),
        }
    }

    /// DynamicQuantizeLinear of the model's float input: one host operator
    /// with three outputs. Its scale is known only at run time, so nothing
    /// may compute on its outputs; they can only be the model's outputs.
    fn dynamic_quantize(&mut self, node: &Node) -> Result<(), LoadError> {
        let Val::Float { t: x, dims } = self.val(node, node.required(0)?)?.clone() else {
            return Err(
                node.unsupported("it quantizes something other than the model's float input")
            );
        };
        let [y, scale, zp] = [0, 1, 2].map(|i| node.outputs.get(i).filter(|o| !o.is_empty()));
        let Some(y) = y else {
            return Err(node.malformed("no output"));
        };
        let held = u32s(&to_nhwc(&dims));
        let yt = self.tensor(TensorDesc::new(Dtype::Int8, &held, None), &[], "an output")?;
        let st = self.tensor(TensorDesc::new(Dtype::Float32, &[1], None), &[], "a scale")?;
        let zt = self.tensor(
            TensorDesc::new(Dtype::Int8, &[1], None),
            &[],
            "a zero point",
        )?;
        let op = DynamicQuantize {
            input: &self.tensors[x],
            output: &self.tensors[yt],
            scale: &self.tensors[st],
            zero_point: &self.tensors[zt],
        };
        runtimes::dynamic::push(&self.plan, &op).map_err(host(format!(
            "node {} ({})",
            node.index,
            node.label()
        )))?;
        self.ops.push("dynamic_quantize".into());
        let raw = |t, dims: Vec<usize>, dtype| Val::Raw { t, dims, dtype };
        self.vals.insert(y.clone(), raw(yt, dims, Dtype::Uint8));
        if let Some(s) = scale {
            self.vals.insert(s.clone(), raw(st, vec![], Dtype::Float32));
        }
        if let Some(z) = zp {
            self.vals.insert(z.clone(), raw(zt, vec![], Dtype::Uint8));
        }
        Ok(())
    }

    fn dequantize(&mut self, node: &Node) -> Result<Val, LoadError> {
        let x = node.required(0)?;
        if let Some(c) = self.consts.get(x) {
            let c = c.clone();
            return Ok(Val::DeqConst(Box::new(self.qconst(node, &c)?)));
        }
        if self.per_element(node) {
            return self.dequantize_linear(node);
        }
        let (scale, zp, _) = self.qparams(node, 1, 2)?;
        match self.val(node, x)? {
            Val::Quant(a) if a.scale == scale && a.zp == zp => Ok(Val::Deq(a.clone())),
            Val::Quant(a) => Err(node.unsupported(format!(
                "it dequantizes at scale {scale} and zero point {zp} what was quantized at {} and {}",
                a.scale, a.zp
            ))),
            _ => Err(node.unsupported("its input is not an int8 activation or constant")),
        }
    }

    fn clip(&mut self, node: &Node) -> Result<Val, LoadError> {
        let (lo, hi) = if node.op_type == "Relu" {
            (0.0, f32::INFINITY)
        } else {
            let bound = |i: usize, attr: &str, default: f32| -> Result<f32, LoadError> {
                match node.input(i) {
                    Some(n) => match &self.constant(node, n)?.data {
                        Data::F32(v) if v.len() == 1 => Ok(v[0]),
                        _ => Err(node.unsupported("a Clip bound that is not one float")),
                    },
                    None => Ok(node.float(attr).unwrap_or(default)),
                }
            };
            (
                bound(1, "min", f32::NEG_INFINITY)?,
                bound(2, "max", f32::INFINITY)?,
            )
        };
        match self.val(node, node.required(0)?)? {
            Val::Pending { node: p, clip: None } => Ok(Val::Pending { node: *p, clip: Some((lo, hi)) }),
            _ => Err(node.unsupported(
                "a Relu or Clip that does not follow a fused Conv, Gemm or MatMul; onnxruntime would run it in float",
            )),
        }
    }

    /// The fused kernel of `node` with its output quantized at (`scale`, `zp`).
    fn finish(
        &mut self,
        node: &Node,
        scale: f32,
        zp: i32,
        unsigned: bool,
    ) -> Result<Act, LoadError> {
        let out = Act {
            t: 0,
            dims: vec![],
            scale,
            zp,
            unsigned,
            flat: None,
        };
        if matches!(node.op_type.as_str(), "Concat" | "QLinearConcat") {
            return self.concat(node, out);
        }
        // Either operand may be a constant.
        match node.op_type.as_str() {
            "Mul" => return self.mul(node, out),
            "Add" | "QLinearAdd" => return self.add(node, out),
            _ => {}
        }
        let x = self.act(node, 0)?;
        let same = |x: &Act| {
            if x.scale == scale && x.zp == zp {
                Ok(())
            } else {
                Err(node.unsupported(format!(
                    "input and output are quantized differently ({} {} → {scale} {zp}); onnxruntime keeps it in float",
                    x.scale, x.zp
                )))
            }
        };
        match node.op_type.as_str() {
            "Conv" | "QLinearConv" => self.conv(node, x, out),
            "MatMul" | "QLinearMatMul" if !self.by_weight_matrix(node) => {
                self.batch_matmul(node, x, out)
            }
            "Gemm" | "MatMul" | "QLinearMatMul" => self.gemm(node, x, out),
            "MaxPool" => {
                same(&x)?;
                let out = x.clone();
                self.pool(node, x, out)
            }
            "AveragePool" | "QLinearAveragePool" => self.pool(node, x, out),
            "GlobalAveragePool" => self.global_average(node, x, out),
            "Sigmoid" | "QLinearSigmoid" => self.sigmoid(node, x, out),
            "LeakyRelu" | "QLinearLeakyRelu" => self.leaky_relu(node, x, out),
            "Softmax" | "QLinearSoftmax" => self.softmax(node, x, out),
            "QLinearMul" => self.mul(node, out),
            "Flatten" | "Reshape" => {
                same(&x)?;
                self.reshape(node, x)
            }
            "Transpose" => {
                same(&x)?;
                self.transpose(node, x)
            }
            other => Err(node.unsupported(format!("{other} as a fused kernel"))),
        }
    }

    /// The weights operand: a dequantized constant (QDQ form) or an int8
    /// constant with its scale and zero point as inputs `w + 1`, `w + 2`
    /// (operator form).
    fn weights(&self, node: &Node, w: usize) -> Result<QConst, LoadError> {
        let name = node.required(w)?;
        if node.op_type.starts_with("QLinear") {
            let c = self.constant(node, name)?.clone();
            let s = self.constant(node, node.required(w + 1)?)?;
            let Data::F32(scales) = &s.data else {
                return Err(node.unsupported("a weight scale that is not float"));
            };
            let zps = match node.input(w + 2) {
                None => vec![if c.unsigned { -128 } else { 0 }; scales.len()],
                Some(z) => match &self.constant(node, z)?.data {
                    Data::I8(v) => v.iter().map(|&z| z as i32).collect(),
                    _ => return Err(node.unsupported("a weight zero point that is not 8-bit")),
                },
            };
            let axis = if node.op_type == "QLinearConv" { 0 } else { 1 };
            return Ok(QConst {
                c,
                scales: scales.clone(),
                zps,
                axis,
            });
        }
        match self.val(node, name) {
            Ok(Val::DeqConst(q)) => Ok((**q).clone()),
            _ => Err(node.unsupported("weights that are not a dequantized constant")),
        }
    }

    /// An int32 bias: a dequantized int32 constant (QDQ) or an int32
    /// constant (operator form). onnxruntime adds its integers as they are.
    fn bias(&self, node: &Node, i: usize, n: usize) -> Result<Option<Vec<i32>>, LoadError> {
        let Some(name) = node.input(i) else {
            return Ok(None);
        };
        let data = match (self.consts.get(name), self.vals.get(name)) {
            (Some(c), _) => &c.data,
            (None, Some(Val::DeqConst(q))) if q.zps.iter().all(|&z| z == 0) => &q.c.data,
            _ => return Err(node.unsupported("a bias that is not a quantized int32 constant")),
        };
        match data {
            Data::I32(v) if v.len() == n => Ok(Some(v.clone())),
            _ => Err(node.unsupported(format!("a bias that is not {n} int32 values"))),
        }
    }

    fn window_attrs(
        &self,
        node: &Node,
        k: [usize; 2],
        h: usize,
        w: usize,
    ) -> Result<([usize; 2], [usize; 2], Pads), LoadError> {
        let pair = |name: &str| -> Result<[usize; 2], LoadError> {
            match node.ints(name) {
                None => Ok([1, 1]),
                Some(&[a, b]) if a > 0 && b > 0 && a < 1 << 16 && b < 1 << 16 => {
                    Ok([a as usize, b as usize])
                }
                Some(v) => Err(node.unsupported(format!("{name} {v:?}: 2-D windows only"))),
            }
        };
        let (strides, dil) = (pair("strides")?, pair("dilations")?);
        let eff = [(k[0] - 1) * dil[0] + 1, (k[1] - 1) * dil[1] + 1];
        let (sh, sw) = (same(h, eff[0], strides[0]), same(w, eff[1], strides[1]));
        let auto = node.string("auto_pad").unwrap_or_default();
        let pads = match auto.as_str() {
            "" | "NOTSET" => match node.ints("pads") {
                None => [0; 4],
                Some(&[t, l, b, r]) if [t, l, b, r].iter().all(|&p| (0..1 << 16).contains(&p)) => {
                    [t as usize, l as usize, b as usize, r as usize]
                }
                Some(p) => return Err(node.malformed(format!("pads {p:?}"))),
            },
            "VALID" => [0; 4],
            "SAME_UPPER" => [sh.0, sw.0, sh.1, sw.1],
            "SAME_LOWER" => [sh.1, sw.1, sh.0, sw.0],
            other => return Err(node.malformed(format!("auto_pad {other}"))),
        };
        let pads = if pads == [0; 4] {
            Pads::Valid
        } else if pads == [sh.0, sw.0, sh.1, sw.1] {
            Pads::Same
        } else {
            Pads::Explicit(pads)
        };
        Ok((strides, dil, pads))
    }

    /// The input of a window after its padding: ONNX's explicit pads that
    /// are not TFLite's SAME become a PAD with the input's zero point
    /// (padding with it adds nothing to an accumulator) and a VALID window;
    /// with the output's height and width.
    fn window_input(
        &mut self,
        node: &Node,
        mut x: Act,
        pads: Pads,
        [kh, kw]: [usize; 2],
        strides: [usize; 2],
        dil: [usize; 2],
    ) -> Result<(Act, Padding, usize, usize), LoadError> {
        let &[n, c, h, wd] = x.dims.as_slice() else {
            return Err(node.unsupported("a window over other than 4-D"));
        };
        let padding = match pads {
            Pads::Valid => Padding::Valid,
            Pads::Same => Padding::Same,
            Pads::Explicit([t, l, b, r]) => {
                // Padding with the zero point adds nothing to an accumulator.
                let dims = vec![n, c, h + t + b, wd + l + r];
                let padded = Act { dims, ..x.clone() };
                let pt = self.place(&padded, "a padded input")?;
                let op = Op::Pad(nn::Pad {
                    input: &self.tensors[x.t],
                    output: &self.tensors[pt],
                    paddings: vec![(0, 0), (t as u32, b as u32), (l as u32, r as u32), (0, 0)],
                });
                push(&self.plan, &mut self.ops, op, "pad", node)?;
                x = Act { t: pt, ..padded };
                Padding::Valid
            }
        };
        let (hp, wp) = (x.dims[2], x.dims[3]);
        let eff = [(kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1];
        let (oh, ow) = match padding {
            Padding::Same => (hp.div_ceil(strides[0]), wp.div_ceil(strides[1])),
            Padding::Valid if hp >= eff[0] && wp >= eff[1] => (
                (hp - eff[0]) / strides[0] + 1,
                (wp - eff[1]) / strides[1] + 1,
            ),
            Padding::Valid => return Err(node.malformed("the window is larger than the input")),
        };
        Ok((x, padding, oh, ow))
    }

    fn conv(&mut self, node: &Node, x: Act, out: Act) -> Result<Act, LoadError> {
        let w = self.weights(node, if node.op_type == "QLinearConv" { 3 } else { 1 })?;
        if node.op_type == "QLinearConv" {
            let (xs, xz, _) = self.qparams(node, 1, 2)?;
            if (xs, xz) != (x.scale, x.zp) {
                return Err(node.unsupported("an input quantized otherwise than its producer says"));
            }
        }
        let (&[n, c, h, wd], &[oc, icg, kh, kw]) = (x.dims.as_slice(), w.c.dims.as_slice()) else {
            return Err(node.unsupported(format!(
                "{:?} by {:?}: 2-D convolutions only",
                x.dims, w.c.dims
            )));
        };
        let Data::I8(wdata) = &w.c.data else {
            return Err(node.unsupported("weights that are not int8 or uint8"));
        };
        // QLinearConv takes one filter zero point; uint8 filters shifted to
        // int8 keep theirs (less 128), and the host's conv subtracts it.
        let wz = match w.zps.split_first() {
            None => 0,
            Some((&z, rest)) if rest.iter().all(|&r| r == z) => z,
            Some(_) => return Err(node.unsupported("filter zero points that differ per channel")),
        };
        if w.scales.len() != 1 && w.axis != 0 {
            return Err(node.unsupported("weights quantized per channel on an axis other than 0"));
        }
        let group = usize::try_from(node.int("group", 1)).unwrap_or(0);
        if group == 0 || icg == 0 || icg * group != c || oc % group != 0 || kh == 0 || kw == 0 {
            return Err(node.malformed(format!(
                "{c} channels in {group} groups, filter {:?}",
                w.c.dims
            )));
        }
        let bias = self.bias(node, if node.op_type == "QLinearConv" { 8 } else { 2 }, oc)?;
        let (strides, dil, pads) = self.window_attrs(node, [kh, kw], h, wd)?;
        let (x, padding, oh, ow) = self.window_input(node, x, pads, [kh, kw], strides, dil)?;
        let y = Act {
            dims: vec![n, oc, oh, ow],
            ..out
        };
        let yt = self.place(&y, "an output")?;
        let taps = kh * kw;
        // The depthwise kernels take symmetric filters only; an asymmetric
        // depthwise filter runs as a grouped convolution, which is exact.
        let depthwise = group == c && icg == 1 && group > 1 && wz == 0;
        let (fdims, axis, fdata) = if depthwise {
            // [oc, 1, kh, kw] → [1, kh, kw, oc].
            let mut f = vec![0u8; oc * taps];
            for (i, &v) in wdata.iter().enumerate() {
                f[(i % taps) * oc + i / taps] = v as u8;
            }
            ([1, kh, kw, oc], 3, f)
        } else {
            ([oc, kh, kw, icg], 0, ohwi(wdata, icg, taps))
        };
        let fq = Quantization {
            scales: w.scales.clone(),
            zero_points: vec![wz; w.scales.len()],
            axis,
        };
        let ft = self.tensor(qdesc(&u32s(&fdims), fq), &fdata, "a filter")?;
        let bt = self.bias_tensor(bias.as_deref())?;
        let window = Window {
            padding,
            stride_h: strides[0] as u32,
            stride_w: strides[1] as u32,
            dilation_h: dil[0] as u32,
            dilation_w: dil[1] as u32,
        };
        let (input, filter, output) = (&self.tensors[x.t], &self.tensors[ft], &self.tensors[yt]);
        let bias = bt.map(|b| &self.tensors[b]);
        let (op, name) = if depthwise {
            let d = nn::DepthwiseConv2d {
                input,
                filter,
                bias,
                output,
                window,
                depth_multiplier: (oc / c) as u32,
                activation: Activation::None,
            };
            (Op::DepthwiseConv2d(d), "depthwise_conv2d")
        } else {
            let d = nn::Conv2d {
                input,
                filter,
                bias,
                output,
                window,
                activation: Activation::None,
            };
            (Op::Conv2d(d), "conv2d")
        };
        push(&self.plan, &mut self.ops, op, name, node)?;
        Ok(Act { t: yt, ..y })
    }

    /// The zero points at input `i` of ConvInteger or MatMulInteger: one,
    /// or `n`, of the operand's type; ONNX's 0 of it when absent.
    fn integer_zero_points(
        &self,
        node: &Node,
        i: usize,
        unsigned: bool,
        n: usize,
    ) -> Result<Vec<i32>, LoadError> {
        let Some(name) = node.input(i) else {
            return Ok(vec![if unsigned { -128 } else { 0 }]);
        };
        let z = self.constant(node, name)?;
        match &z.data {
            Data::I8(v) if z.unsigned == unsigned && (v.len() == 1 || v.len() == n) => {
                Ok(v.iter().map(|&z| z as i32).collect())
            }
            _ => Err(node.unsupported(format!(
                "zero point {i} is not one or {n} values of its operand's type"
            ))),
        }
    }

    /// The int32 result of ConvInteger or MatMulInteger: a host tensor of
    /// `host` dimensions standing for ONNX's `dims`.
    fn int32_output(&mut self, dims: Vec<usize>, host: &[usize]) -> Result<Act, LoadError> {
        let t = self.tensor(
            TensorDesc::new(Dtype::Int32, &u32s(host), None),
            &[],
            "an output",
        )?;
        Ok(Act {
            t,
            dims,
            scale: 1.0,
            zp: 0,
            unsigned: false,
            flat: None,
        })
    }

    /// ConvInteger: a conv2d into an int32 tensor, which the host fills
    /// with the exact sums `Σ (x − xz)(w − wz)`, one filter zero point per
    /// output channel allowed; one group.
    fn conv_integer(&mut self, node: &Node) -> Result<Act, LoadError> {
        let x = self.act(node, 0)?;
        if self.integer_zero_points(node, 2, x.unsigned, 1)? != [x.zp] {
            return Err(node.unsupported("an input zero point other than its producer's"));
        }
        let w = self.constant(node, node.required(1)?)?.clone();
        let (&[n, c, h, wd], &[oc, icg, kh, kw], Data::I8(wdata)) =
            (x.dims.as_slice(), w.dims.as_slice(), &w.data)
        else {
            return Err(node.unsupported("other than a 2-D convolution of int8 or uint8 weights"));
        };
        if node.int("group", 1) != 1 || icg != c || kh == 0 || kw == 0 {
            return Err(node.unsupported("a grouped ConvInteger, or a filter of another depth"));
        }
        let mut zps = self.integer_zero_points(node, 3, w.unsigned, oc)?;
        if zps.len() == 1 {
            zps = vec![zps[0]; oc];
        }
        let (strides, dil, pads) = self.window_attrs(node, [kh, kw], h, wd)?;
        let (x, padding, oh, ow) = self.window_input(node, x, pads, [kh, kw], strides, dil)?;
        let filter = ohwi(wdata, c, kh * kw);
        let fq = Quantization {
            scales: vec![1.0; oc],
            zero_points: zps,
            axis: 0,
        };
        let ft = self.tensor(qdesc(&u32s(&[oc, kh, kw, c]), fq), &filter, "a filter")?;
        let y = self.int32_output(vec![n, oc, oh, ow], &[n, oh, ow, oc])?;
        let window = Window {
            padding,
            stride_h: strides[0] as u32,
            stride_w: strides[1] as u32,
            dilation_h: dil[0] as u32,
            dilation_w: dil[1] as u32,
        };
        self.integer_conv(node, x.t, ft, y, window)
    }

    /// Records the conv2d of ConvInteger or MatMulInteger into `y`.
    fn integer_conv(
        &mut self,
        node: &Node,
        x: usize,
        filter: usize,
        y: Act,
        window: Window,
    ) -> Result<Act, LoadError> {
        let op = Op::Conv2d(nn::Conv2d {
            input: &self.tensors[x],
            filter: &self.tensors[filter],
            bias: None,
            output: &self.tensors[y.t],
            window,
            activation: Activation::None,
        });
        push(&self.plan, &mut self.ops, op, "conv2d", node)?;
        Ok(y)
    }

    /// MatMulInteger of a 2-D activation by a constant: a 1×1 ConvInteger
    /// over the rows, read through a view of the activation as `[1, M, 1, K]`.
    fn matmul_integer(&mut self, node: &Node) -> Result<Act, LoadError> {
        let a = self.act(node, 0)?;
        if self.integer_zero_points(node, 2, a.unsigned, 1)? != [a.zp] {
            return Err(node.unsupported("an input zero point other than its producer's"));
        }
        let b = self.constant(node, node.required(1)?)?.clone();
        let (&[m, k], &[kb, units], Data::I8(bdata)) =
            (a.dims.as_slice(), b.dims.as_slice(), &b.data)
        else {
            return Err(
                node.unsupported("other than a 2-D activation by a 2-D int8 or uint8 constant")
            );
        };
        if kb != k || a.flat.is_some() {
            return Err(node.malformed(format!("[{m}, {k}] by [{kb}, {units}]")));
        }
        let mut zps = self.integer_zero_points(node, 3, b.unsigned, units)?;
        if zps.len() == 1 {
            zps = vec![zps[0]; units];
        }
        // [K, N] → [N, 1, 1, K].
        let mut filter = vec![0u8; bdata.len()];
        for (i, &v) in bdata.iter().enumerate() {
            filter[(i % units) * k + i / units] = v as u8;
        }
        let fq = Quantization {
            scales: vec![1.0; units],
            zero_points: zps,
            axis: 0,
        };
        let ft = self.tensor(qdesc(&u32s(&[units, 1, 1, k]), fq), &filter, "a filter")?;
        let rows = Act {
            dims: vec![1, k, m, 1],
            ..a.clone()
        };
        let rt = self.place(&rows, "the rows")?;
        let op = Op::Reshape(nn::Unary {
            input: &self.tensors[a.t],
            output: &self.tensors[rt],
        });
        push(&self.plan, &mut self.ops, op, "reshape", node)?;
        let y = self.int32_output(vec![m, units], &[1, m, 1, units])?;
        let window = Window {
            padding: Padding::Valid,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
        };
        self.integer_conv(node, rt, ft, y, window)
    }

    fn gemm(&mut self, node: &Node, a: Act, out: Act) -> Result<Act, LoadError> {
        let operator = node.op_type == "QLinearMatMul";
        let w = self.weights(node, if operator { 3 } else { 1 })?;
        if operator {
            let (s, z, _) = self.qparams(node, 1, 2)?;
            if (s, z) != (a.scale, a.zp) {
                return Err(node.unsupported("an input quantized otherwise than its producer says"));
            }
        }
        let gemm = node.op_type == "Gemm";
        let trans_b = gemm && node.int("transB", 0) != 0;
        if gemm
            && (node.int("transA", 0) != 0
                || node.float("alpha").unwrap_or(1.0) != 1.0
                || node.float("beta").unwrap_or(1.0) != 1.0)
        {
            return Err(node.unsupported("transA, alpha or beta other than 0, 1, 1"));
        }
        // Leading dimensions are rows; a 4-D input would be NHWC on the host.
        let k = match a.dims.last() {
            Some(&k) if a.dims.len() >= 2 && !a.nhwc() => k,
            _ => {
                return Err(node.unsupported(format!(
                    "an input of shape {:?}: 2-D or 3-D products only",
                    a.dims
                )));
            }
        };
        let (wk, units) = match (w.c.dims.as_slice(), trans_b) {
            (&[u, kk], true) => (kk, u),
            (&[kk, u], false) => (kk, u),
            (d, _) => return Err(node.unsupported(format!("weights of shape {d:?}"))),
        };
        if wk != k {
            return Err(node.malformed(format!("{k} inputs against weights of depth {wk}")));
        }
        let Data::I8(b) = &w.c.data else {
            return Err(node.unsupported("weights that are not int8 or uint8"));
        };
        // The host's fully connected layer takes one weight zero point for
        // the whole tensor (its kernels fold it into a per-row correction).
        if w.zps.len() > 1 && w.zps.iter().any(|&z| z != 0) {
            return Err(node.unsupported("asymmetric weights per channel"));
        }
        let unit_axis = if trans_b { 0 } else { 1 };
        if w.scales.len() != 1 && w.axis != unit_axis {
            return Err(node.unsupported("weights quantized per input rather than per output"));
        }
        let bias = if gemm {
            self.bias(node, 2, units)?
        } else {
            None
        };
        // The host's fully connected weights are [units, depth], their
        // columns in the order the input holds its elements.
        let column = |j: usize| match a.flat {
            Some([c, h, wd]) => {
                let (pix, ch) = (j / c, j % c);
                ch * h * wd + pix
            }
            None => j,
        };
        let mut fc = vec![0u8; units * k];
        for u in 0..units {
            for j in 0..k {
                let src = column(j);
                fc[u * k + j] = if trans_b {
                    b[u * k + src]
                } else {
                    b[src * units + u]
                } as u8;
            }
        }
        let wq = Quantization {
            scales: w.scales.clone(),
            zero_points: if w.zps.len() == 1 {
                w.zps.clone()
            } else {
                vec![0; w.scales.len()]
            },
            axis: 0,
        };
        let wt = self.tensor(qdesc(&[units as u32, k as u32], wq), &fc, "weights")?;
        let bt = self.bias_tensor(bias.as_deref())?;
        let mut dims = a.dims.clone();
        if let Some(last) = dims.last_mut() {
            *last = units;
        }
        let y = Act { dims, ..out };
        let yt = self.place(&y, "an output")?;
        let op = Op::FullyConnected(nn::FullyConnected {
            input: &self.tensors[a.t],
            weights: &self.tensors[wt],
            bias: bt.map(|b| &self.tensors[b]),
            output: &self.tensors[yt],
            activation: Activation::None,
        });
        push(&self.plan, &mut self.ops, op, "fully_connected", node)?;
        Ok(Act { t: yt, ..y })
    }

    /// Checks that `acts` are of the plan's activation type. QLinearAdd,
    /// QLinearMul and QLinearAveragePool add uint8 bytes or zero points in
    /// float before they round, so the host computes them on uint8 values
    /// under the uint8 semantics and on int8 ones otherwise; a tensor of
    /// the other type would get the other's rounding.
    fn activation_type(&self, node: &Node, acts: &[&Act]) -> Result<(), LoadError> {
        let name = |u: bool| if u { "uint8" } else { "int8" };
        match acts.iter().find(|a| a.unsigned != self.uint8) {
            Some(a) => Err(node.unsupported(format!(
                "{} operand in a model whose other activations are {}: onnxruntime's \
                 arithmetic for {} differs between the two, and one plan has one",
                if a.unsigned { "a uint8" } else { "an int8" },
                name(self.uint8),
                node.op_type
            ))),
            None => Ok(()),
        }
    }

    /// MaxPool, whose input and output share a quantization, or
    /// QLinearAveragePool, which requantizes.
    fn pool(&mut self, node: &Node, x: Act, out: Act) -> Result<Act, LoadError> {
        let average = node.op_type != "MaxPool";
        if node.op_type == "QLinearAveragePool" {
            self.operand(node, &x, 1, 2)?;
            if node.int("channels_last", 0) != 0 {
                return Err(node.unsupported("channels_last: an NCHW input only"));
            }
        }
        if average {
            self.activation_type(node, &[&x, &out])?;
        }
        let &[n, c, h, w] = x.dims.as_slice() else {
            return Err(node.unsupported("a pool over other than 4-D"));
        };
        let k = match node.ints("kernel_shape") {
            Some(&[a, b]) if a > 0 && b > 0 && a < 1 << 16 && b < 1 << 16 => {
                [a as usize, b as usize]
            }
            k => return Err(node.unsupported(format!("kernel_shape {k:?}"))),
        };
        if node.int("ceil_mode", 0) != 0 || node.int("storage_order", 0) != 0 {
            return Err(node.unsupported("ceil_mode or storage_order"));
        }
        let (strides, dil, pads) = self.window_attrs(node, k, h, w)?;
        if average && node.int("count_include_pad", 0) != 0 && !matches!(pads, Pads::Valid) {
            return Err(node.unsupported(
                "count_include_pad with padding: the host divides by the cells inside the input",
            ));
        }
        let (padding, oh, ow) = match pads {
            _ if dil != [1, 1] => return Err(node.unsupported("a dilated pool")),
            Pads::Same => (
                Padding::Same,
                h.div_ceil(strides[0]),
                w.div_ceil(strides[1]),
            ),
            Pads::Valid if h >= k[0] && w >= k[1] => (
                Padding::Valid,
                (h - k[0]) / strides[0] + 1,
                (w - k[1]) / strides[1] + 1,
            ),
            Pads::Valid => return Err(node.malformed("the window is larger than the input")),
            // A pad with the zero point would be read as a value; ONNX's is not.
            Pads::Explicit(p) => {
                return Err(node.unsupported(format!("pads {p:?}, neither none nor SAME")));
            }
        };
        let y = Act {
            dims: vec![n, c, oh, ow],
            flat: None,
            ..out
        };
        let yt = self.place(&y, "an output")?;
        let pool = nn::Pool2d {
            input: &self.tensors[x.t],
            output: &self.tensors[yt],
            filter_h: k[0] as u32,
            filter_w: k[1] as u32,
            window: Window {
                padding,
                stride_h: strides[0] as u32,
                stride_w: strides[1] as u32,
                dilation_h: 1,
                dilation_w: 1,
            },
            activation: Activation::None,
        };
        let (op, name) = if average {
            (Op::AveragePool2d(pool), "average_pool2d")
        } else {
            (Op::MaxPool2d(pool), "max_pool2d")
        };
        push(&self.plan, &mut self.ops, op, name, node)?;
        Ok(Act { t: yt, ..y })
    }

    /// That an operator-form input is quantized as its producer says
    /// (scale and zero point at inputs `si` and `zi`).
    fn operand(&self, node: &Node, x: &Act, si: usize, zi: usize) -> Result<(), LoadError> {
        let (s, z, _) = self.qparams(node, si, zi)?;
        if (s, z) != (x.scale, x.zp) {
            return Err(node.unsupported("an input quantized otherwise than its producer says"));
        }
        Ok(())
    }

    /// QLinearSigmoid: a table the host builds as onnxruntime does, the
    /// same for uint8 shifted to int8 (it quantizes by rounding first).
    fn sigmoid(&mut self, node: &Node, x: Act, out: Act) -> Result<Act, LoadError> {
        if node.op_type == "QLinearSigmoid" {
            self.operand(node, &x, 1, 2)?;
        }
        if x.unsigned != out.unsigned {
            return Err(node.unsupported("an int8 input with a uint8 output, or the reverse"));
        }
        let y = Act {
            dims: x.dims.clone(),
            flat: x.flat,
            ..out
        };
        let yt = self.place(&y, "an output")?;
        let op = Op::Logistic(nn::Unary {
            input: &self.tensors[x.t],
            output: &self.tensors[yt],
        });
        push(&self.plan, &mut self.ops, op, "logistic", node)?;
        Ok(Act { t: yt, ..y })
    }

    /// QLinearLeakyRelu: a table, as QLinearSigmoid's; ONNX's `alpha`
    /// defaults to 0.01.
    fn leaky_relu(&mut self, node: &Node, x: Act, out: Act) -> Result<Act, LoadError> {
        if node.op_type == "QLinearLeakyRelu" {
            self.operand(node, &x, 1, 2)?;
        }
        if x.unsigned != out.unsigned {
            return Err(node.unsupported("an int8 input with a uint8 output, or the reverse"));
        }
        let alpha = node.float("alpha").unwrap_or(0.01);
        let y = Act {
            dims: x.dims.clone(),
            flat: x.flat,
            ..out
        };
        let yt = self.place(&y, "an output")?;
        let op = MoreOp::LeakyRelu(LeakyRelu {
            input: &self.tensors[x.t],
            output: &self.tensors[yt],
            alpha,
        });
        push_more(&self.plan, &mut self.ops, op, "leaky_relu", node)?;
        Ok(Act { t: yt, ..y })
    }

    /// QLinearSoftmax over one axis: the last, or a 4-D tensor's channels
    /// (and not its last, W), which are the host's last. Before opset 13 (and in a QLinearSoftmax
    /// whose `opset` attribute says so) ONNX's axis flattens the dimensions
    /// from it on, which the host does for the last axis only.
    fn softmax(&mut self, node: &Node, x: Act, out: Act) -> Result<Act, LoadError> {
        let opset = if node.op_type == "QLinearSoftmax" {
            self.operand(node, &x, 1, 2)?;
            node.int("opset", 0)
        } else {
            self.opset
        };
        if x.unsigned != out.unsigned {
            return Err(node.unsupported("an int8 input with a uint8 output, or the reverse"));
        }
        let rank = x.dims.len() as i64;
        let axis = node.int("axis", if opset < 13 { 1 } else { -1 });
        let axis = if axis < 0 { axis + rank } else { axis };
        // A 4-D activation is NHWC on the host: its last axis is ONNX's 1.
        let taken = if x.nhwc() {
            opset >= 13 && axis == 1
        } else {
            axis == rank - 1
        };
        if !taken || x.flat.is_some() {
            return Err(node.unsupported(format!(
                "a softmax over axis {axis} of {:?} (opset {opset}): the last axis, or a \
                 4-D tensor's channels, only",
                x.dims
            )));
        }
        let y = Act {
            dims: x.dims.clone(),
            ..out
        };
        let yt = self.place(&y, "an output")?;
        let op = Op::Softmax(nn::Softmax {
            input: &self.tensors[x.t],
            output: &self.tensors[yt],
            beta: 1.0,
        });
        push(&self.plan, &mut self.ops, op, "softmax", node)?;
        Ok(Act { t: yt, ..y })
    }

    /// QLinearMul, fused from DequantizeLinear ×2 → Mul → QuantizeLinear or
    /// in operator form: two int8 activations broadcast against each other,
    /// as a squeeze-and-excitation block scales its channels.
    fn mul(&mut self, node: &Node, out: Act) -> Result<Act, LoadError> {
        let (a, b, dims) = self.binary_operands(node, &out)?;
        self.binary(node, ("mul", |x| Op::Mul(x)), a, b, dims, out)
    }

    /// Records `op` of `a` and `b`, in that order, into an output of `dims`
    /// quantized as `out`.
    fn binary(
        &mut self,
        node: &Node,
        (name, op): (&str, for<'a> fn(nn::Binary<'a>) -> Op<'a>),
        a: Act,
        b: Act,
        dims: Vec<usize>,
        out: Act,
    ) -> Result<Act, LoadError> {
        let y = Act {
            dims,
            flat: a.flat.or(b.flat),
            ..out
        };
        let yt = self.place(&y, "an output")?;
        let op = op(nn::Binary {
            a: &self.tensors[a.t],
            b: &self.tensors[b.t],
            output: &self.tensors[yt],
            activation: Activation::None,
        });
        push(&self.plan, &mut self.ops, op, name, node)?;
        Ok(Act { t: yt, ..y })
    }

    /// The two operands of an Add or Mul (QDQ or com.microsoft's), either
    /// of them a constant, and the shape they broadcast to.
    fn binary_operands(
        &mut self,
        node: &Node,
        out: &Act,
    ) -> Result<(Act, Act, Vec<usize>), LoadError> {
        let operator = node.op_type.starts_with("QLinear");
        let bi = if operator { 3 } else { 1 };
        // The activation's rank places a constant operand.
        let rank = [0, bi]
            .iter()
            .find_map(|&i| match self.val(node, node.input(i)?).ok()? {
                Val::Deq(x) | Val::Quant(x) => Some(x.dims.len()),
                _ => None,
            })
            .ok_or_else(|| node.unsupported(format!("an {} of two constants", node.op_type)))?;
        let a = self.operand_or_constant(node, 0, rank)?;
        let b = self.operand_or_constant(node, bi, rank)?;
        if operator {
            self.operand(node, &a, 1, 2)?;
            self.operand(node, &b, 4, 5)?;
        }
        self.activation_type(node, &[&a, &b, out])?;
        let dims = broadcast(&a, &b).ok_or_else(|| {
            node.unsupported(format!(
                "operands of shapes {:?} and {:?}: broadcasting between equal ranks only",
                a.dims, b.dims
            ))
        })?;
        Ok((a, b, dims))
    }

    /// The int8 values of input `i` when it is a dequantized constant.
    fn constant_values(&self, node: &Node, i: usize) -> Option<Vec<i8>> {
        match self.val(node, node.input(i)?).ok()? {
            Val::DeqConst(q) => match &q.c.data {
                Data::I8(v) => Some(v.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    /// Input `i`: an activation, or a dequantized constant placed on the
    /// host as one of `rank` dimensions (ones prepended, as ONNX broadcasts;
    /// NHWC when 4-D), with its one scale and zero point.
    fn operand_or_constant(
        &mut self,
        node: &Node,
        i: usize,
        rank: usize,
    ) -> Result<Act, LoadError> {
        let Val::DeqConst(q) = self.val(node, node.required(i)?)? else {
            return self.act(node, i);
        };
        let (Data::I8(v), [scale], [zp]) = (&q.c.data, q.scales.as_slice(), q.zps.as_slice())
        else {
            return Err(node.unsupported(
                "a constant operand that is not int8 or uint8 with one scale and zero point",
            ));
        };
        if q.c.dims.len() > rank {
            return Err(node.unsupported(format!(
                "a constant of shape {:?} with an activation of rank {rank}",
                q.c.dims
            )));
        }
        let mut dims = vec![1; rank - q.c.dims.len()];
        dims.extend(&q.c.dims);
        let bytes: Vec<u8> = v.iter().map(|&x| x as u8).collect();
        let bytes = match super::nchw(&dims) {
            Some(d) => super::transpose(&bytes, d, 1, false),
            None => bytes,
        };
        let a = Act {
            t: 0,
            dims,
            scale: *scale,
            zp: *zp,
            unsigned: q.c.unsigned,
            flat: None,
        };
        let desc = qdesc(&a.host_dims(), Quantization::per_tensor(a.scale, a.zp));
        let t = self.tensor(desc, &bytes, "a constant operand")?;
        Ok(Act { t, ..a })
    }

    /// QLinearConcat: inputs quantized unlike the output are requantized
    /// through onnxruntime's table on the host.
    fn concat(&mut self, node: &Node, out: Act) -> Result<Act, LoadError> {
        let operator = node.op_type == "QLinearConcat";
        let n = if operator {
            if node.inputs.len() < 5 || !(node.inputs.len() - 2).is_multiple_of(3) {
                return Err(
                    node.malformed("inputs that are not (tensor, scale, zero point) triples")
                );
            }
            (node.inputs.len() - 2) / 3
        } else {
            node.inputs.len()
        };
        let mut xs = Vec::with_capacity(n);
        for i in 0..n {
            let x = self.act(node, if operator { 2 + 3 * i } else { i })?;
            if operator {
                self.operand(node, &x, 3 + 3 * i, 4 + 3 * i)?;
            }
            if x.unsigned != out.unsigned || x.flat.is_some() {
                return Err(node.unsupported(format!(
                    "input {i}: int8 and uint8 mixed, or a flattened activation"
                )));
            }
            xs.push(x);
        }
        let Some(first) = xs.first() else {
            return Err(node.malformed("a concatenation of no inputs"));
        };
        let rank = first.dims.len();
        let axis = node.int("axis", i64::MIN);
        let axis = if axis < 0 { axis + rank as i64 } else { axis };
        let axis = usize::try_from(axis)
            .ok()
            .filter(|&a| a < rank)
            .ok_or_else(|| {
                node.malformed(format!("axis {} for rank {rank}", node.int("axis", 0)))
            })?;
        let mut dims = xs[0].dims.clone();
        dims[axis] = 0;
        for x in &xs {
            let agree = x.dims.len() == rank
                && x.dims
                    .iter()
                    .zip(&xs[0].dims)
                    .enumerate()
                    .all(|(d, (p, q))| d == axis || p == q);
            if !agree {
                return Err(node.malformed(format!("input shapes {:?} off axis {axis}", x.dims)));
            }
            dims[axis] += x.dims[axis];
        }
        let host_axis = if rank == 4 { [0, 3, 1, 2][axis] } else { axis };
        let y = Act { dims, ..out };
        let yt = self.place(&y, "an output")?;
        let op = Op::Concatenation(nn::Concatenation {
            inputs: xs.iter().map(|x| &self.tensors[x.t]).collect(),
            output: &self.tensors[yt],
            axis: host_axis as u32,
        });
        push(&self.plan, &mut self.ops, op, "concatenation", node)?;
        Ok(Act { t: yt, ..y })
    }

    /// QLinearAdd, as onnxruntime fuses DequantizeLinear ×2 → Add →
    /// QuantizeLinear or as the operator form has it: a residual
    /// connection's sum of two int8 activations of one shape.
    fn add(&mut self, node: &Node, out: Act) -> Result<Act, LoadError> {
        let (a, b, dims) = self.binary_operands(node, &out)?;
        // The host's `add` sums in operand order. onnxruntime's broadcaster
        // runs its kernel over spans of the innermost dimensions and passes
        // B first where A is the scalar of a span. Its layout optimizer may
        // run a 4-D Add on NCHW or on NHWC tensors, depending on the graph
        // around it; where the two layouts' spans put A on different sides,
        // the order is known only if it does not matter.
        let swapped = a_is_scalar_per_span(&a.dims, &dims);
        if dims.len() == 4 && swapped != a_is_scalar_per_span(&to_nhwc(&a.dims), &to_nhwc(&dims)) {
            let a_values = self.constant_values(node, 0);
            if !orders_agree(&a, a_values.as_deref(), &b, &out, self.uint8) {
                return Err(node.unsupported(format!(
                    "an Add of shapes {:?} and {:?}, where the first broadcasts: onnxruntime sums \
                     its operands in one order on NCHW tensors and in the other on NHWC ones, \
                     which its layout optimizer picks from the graph around it, and at these \
                     quantizations the two orders round some sums apart",
                    a.dims, b.dims
                )));
            }
        }
        let (first, second) = match swapped {
            true => (b, a),
            false => (a, b),
        };
        self.binary(node, ("add", |x| Op::Add(x)), first, second, dims, out)
    }

    fn global_average(&mut self, node: &Node, x: Act, out: Act) -> Result<Act, LoadError> {
        let &[n, c, _, _] = x.dims.as_slice() else {
            return Err(node.unsupported("a pool over other than 4-D"));
        };
        let y = Act {
            dims: vec![n, c, 1, 1],
            ..out
        };
        let yt = self.place(&y, "an output")?;
        let op = Op::Mean(nn::Reduce {
            input: &self.tensors[x.t],
            output: &self.tensors[yt],
            axes: vec![1, 2],
            keep_dims: true,
        });
        push(&self.plan, &mut self.ops, op, "mean", node)?;
        Ok(Act { t: yt, ..y })
    }

    /// Flatten, or a Reshape to `[n, -1]` (what a classifier head does), of
    /// an NHWC activation; any Reshape of a plain one.
    fn reshape(&mut self, node: &Node, x: Act) -> Result<Act, LoadError> {
        let total: usize = x.dims.iter().product();
        let target: Vec<usize> = if node.op_type == "Flatten" {
            let axis = node.int("axis", 1);
            let axis = if axis < 0 {
                axis + x.dims.len() as i64
            } else {
                axis
            };
            let axis = usize::try_from(axis)
                .ok()
                .filter(|&a| a <= x.dims.len())
                .ok_or_else(|| node.malformed(format!("axis {axis}")))?;
            let lead: usize = x.dims[..axis].iter().product();
            vec![lead, total / lead.max(1)]
        } else {
            let Data::I64(shape) = &self.constant(node, node.required(1)?)?.data else {
                return Err(node.malformed("a shape that is not int64"));
            };
            let mut t = vec![];
            let mut open = None;
            for (i, &d) in shape.iter().enumerate() {
                t.push(match d {
                    0 => *x
                        .dims
                        .get(i)
                        .ok_or_else(|| node.malformed("0 past the input's rank"))?,
                    -1 if open.is_none() => {
                        open = Some(i);
                        1
                    }
                    d if d > 0 => d as usize,
                    _ => return Err(node.malformed(format!("shape {shape:?}"))),
                });
            }
            if let Some(i) = open {
                let rest: usize = t.iter().product();
                t[i] = total / rest.max(1);
            }
            t
        };
        if target.iter().product::<usize>() != total {
            return Err(node.malformed(format!("{:?} cannot become {target:?}", x.dims)));
        }
        let flat = match (x.nhwc(), target.as_slice()) {
            (true, &[n, _]) if n == x.dims[0] => {
                let [_, c, h, w] = [x.dims[0], x.dims[1], x.dims[2], x.dims[3]];
                (h * w > 1).then_some([c, h, w])
            }
            (true, _) => {
                return Err(
                    node.unsupported(format!("a reshape of NCHW {:?} to {target:?}", x.dims))
                );
            }
            (false, _) if x.flat.is_some() && target.len() != 2 => {
                return Err(node.unsupported("a reshape of a flattened NCHW tensor"));
            }
            (false, _) => x.flat,
        };
        let y = Act {
            dims: target,
            flat,
            ..x.clone()
        };
        let yt = self.place(&y, "an output")?;
        let op = Op::Reshape(nn::Unary {
            input: &self.tensors[x.t],
            output: &self.tensors[yt],
        });
        push(&self.plan, &mut self.ops, op, "reshape", node)?;
        Ok(Act { t: yt, ..y })
    }

    /// Transpose, whose DQ/Q pair onnxruntime drops: the bytes move. The
    /// host holds 4-D tensors as NHWC, so its permutation composes ONNX's
    /// with the two layouts: host output axis `k` is ONNX output axis
    /// `hy[k]`, which is ONNX input axis `perm[hy[k]]`, which is the host
    /// input's axis where that one sits.
    fn transpose(&mut self, node: &Node, x: Act) -> Result<Act, LoadError> {
        let r = x.dims.len();
        let perm: Vec<usize> = match node.ints("perm") {
            None => (0..r).rev().collect(),
            Some(p) => p
                .iter()
                .map(|&a| usize::try_from(a).ok().filter(|&a| a < r))
                .collect::<Option<_>>()
                .ok_or_else(|| node.malformed(format!("perm {p:?} for rank {r}")))?,
        };
        let mut seen = vec![false; r];
        if perm.len() != r || perm.iter().any(|&a| std::mem::replace(&mut seen[a], true)) {
            return Err(node.malformed(format!("perm {perm:?} for rank {r}")));
        }
        if x.flat.is_some() {
            return Err(node.unsupported("a transpose of a flattened NCHW tensor"));
        }
        // ONNX axis of each host axis, for this rank.
        let layout: Vec<usize> = if r == 4 {
            vec![0, 2, 3, 1]
        } else {
            (0..r).collect()
        };
        let mut host_of = vec![0; r];
        for (h, &a) in layout.iter().enumerate() {
            host_of[a] = h;
        }
        let host_perm: Vec<u32> = layout.iter().map(|&a| host_of[perm[a]] as u32).collect();
        let y = Act {
            dims: perm.iter().map(|&a| x.dims[a]).collect(),
            ..x.clone()
        };
        let yt = self.place(&y, "an output")?;
        let op = MoreOp::Transpose(Transpose {
            input: &self.tensors[x.t],
            output: &self.tensors[yt],
            perm: host_perm,
        });
        push_more(&self.plan, &mut self.ops, op, "transpose", node)?;
        Ok(Act { t: yt, ..y })
    }

    /// The model's output value as the host holds it: a dequantized
    /// activation gets a DEQUANTIZE to float32. With the element type the
    /// host's output tensor holds, and whether its scale and zero point
    /// are the model's (they are not for float32, int32, and what
    /// DynamicQuantizeLinear quantizes at run time).
    pub fn output(&mut self, out: &Value) -> Result<(usize, Act, Dtype, bool), LoadError> {
        let last = self
            .nodes
            .last()
            .cloned()
            .ok_or_else(|| LoadError::Malformed("no nodes".into()))?;
        match self.vals.get(&out.name).cloned() {
            Some(Val::Deq(a)) => {
                if a.flat.is_some() {
                    return Err(LoadError::Unsupported(
                        "a flattened NCHW tensor as the output".into(),
                    ));
                }
                let t = self.tensor(
                    TensorDesc::new(Dtype::Float32, &a.host_dims(), None),
                    &[],
                    "the output",
                )?;
                let op = Op::Dequantize(nn::Unary {
                    input: &self.tensors[a.t],
                    output: &self.tensors[t],
                });
                push(&self.plan, &mut self.ops, op, "dequantize", &last)?;
                Ok((t, a, Dtype::Float32, false))
            }
            Some(Val::Quant(a)) if a.flat.is_none() => {
                let dtype = if a.unsigned {
                    Dtype::Uint8
                } else {
                    Dtype::Int8
                };
                Ok((a.t, a.clone(), dtype, true))
            }
            Some(Val::Int32(a)) => Ok((a.t, a.clone(), Dtype::Int32, false)),
            Some(Val::Raw { t, dims, dtype }) => {
                let a = Act {
                    t,
                    dims,
                    scale: 0.0,
                    zp: 0,
                    unsigned: dtype == Dtype::Uint8,
                    flat: None,
                };
                Ok((t, a, dtype, false))
            }
            Some(_) => Err(LoadError::Unsupported(format!(
                "output '{}' is computed in float (no QuantizeLinear closes its group)",
                out.name
            ))),
            None => Err(LoadError::Malformed(format!(
                "output '{}' is never produced",
                out.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(dims: &[usize], scale: f32, zp: i32) -> Act {
        Act {
            t: 0,
            dims: dims.to_vec(),
            scale,
            zp,
            unsigned: false,
            flat: None,
        }
    }

    /// The span rule on both layouts of the cases `qlinear.json` checks
    /// against onnxruntime.
    #[test]
    fn a_is_the_scalar_of_a_span_where_the_innermost_long_dimension_broadcasts() {
        let out = [1, 8, 6, 6];
        assert!(a_is_scalar_per_span(&[1, 8, 1, 1], &out));
        assert!(!a_is_scalar_per_span(&[1, 1, 6, 6], &out));
        assert!(!a_is_scalar_per_span(&out, &out));
        assert!(a_is_scalar_per_span(&[1, 1], &[3, 700]));
        // On NHWC tensors the two broadcasts swap sides.
        assert!(!a_is_scalar_per_span(
            &to_nhwc(&[1, 8, 1, 1]),
            &to_nhwc(&out)
        ));
        assert!(a_is_scalar_per_span(
            &to_nhwc(&[1, 1, 6, 6]),
            &to_nhwc(&out)
        ));
    }

    /// At a quantization where onnxruntime's two orders differ on 389 of
    /// the 65,536 pairs (the fixture's) they do not agree; with ratios
    /// that make every product exact they do; and a constant whose values
    /// miss the differing pairs agrees.
    #[test]
    fn the_two_summation_orders_agree_or_not() {
        let (a, b, y) = (
            act(&[1], 0.0099, 33),
            act(&[1], 0.0385, 83),
            act(&[1], 0.011, 81),
        );
        assert!(!orders_agree(&a, None, &b, &y, false));
        let (a2, b2, y2) = (act(&[1], 0.25, 3), act(&[1], 0.5, -7), act(&[1], 0.5, 1));
        assert!(orders_agree(&a2, None, &b2, &y2, false));
        assert!(orders_agree(&a2, None, &b2, &y2, true));
        let agreeing: Vec<i8> = (-128..=127)
            .filter(|&x| orders_agree(&a, Some(&[x]), &b, &y, false))
            .collect();
        assert!(!agreeing.is_empty() && agreeing.len() < 256);
        assert!(orders_agree(&a, Some(&agreeing), &b, &y, false));
    }
}
