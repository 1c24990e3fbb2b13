//! QuantizeLinear of the model's float input and DequantizeLinear of its
//! integer input with a scale per slice along an axis, or per block of
//! slices (opset 21's `block_size`): one host operator of `linear-quant`
//! each. Nothing else on the host computes on a tensor quantized that way,
//! so what they make can only be the model's output.

use super::{Lower, Val, host, to_nhwc, u32s};
use crate::model::LoadError;
use crate::nn::runtimes::{LinearQuantOp, LinearQuantParams, QuantizeLinear, linear_quant};
use crate::nn::{Dtype, TensorDesc};
use crate::onnx::graph::{Data, Node};
use crate::onnx::transpose;

/// The parameters of one node, in the host's layout.
struct Params {
    /// Host tensors: float32 scales and int8 zero points.
    scale: usize,
    zero_point: usize,
    axis: u32,
    block: u32,
    /// The 8-bit side's type, by the zero point's (or `output_dtype`).
    unsigned: bool,
}

impl Lower {
    /// The node quantizes per axis or per block: more than one scale, or a
    /// block size.
    pub(super) fn per_element(&self, node: &Node) -> bool {
        let scales = node
            .input(1)
            .and_then(|s| self.consts.get(s))
            .map(|c| c.dims.iter().product::<usize>());
        node.int("block_size", 0) != 0 || scales.is_some_and(|n| n != 1)
    }

    /// QuantizeLinear per axis or block of the model's float input.
    pub(super) fn quantize_linear(&mut self, node: &Node) -> Result<Val, LoadError> {
        let Val::Float { t: x, dims } = self.val(node, node.required(0)?)?.clone() else {
            return Err(node.unsupported(
                "it quantizes per axis or block something other than the model's float input",
            ));
        };
        let p = self.params(node, &dims, None)?;
        let y = self.tensor(
            TensorDesc::new(Dtype::Int8, &u32s(&to_nhwc(&dims)), None),
            &[],
            "an output",
        )?;
        self.push_linear(node, true, x, y, &p)?;
        let dtype = if p.unsigned {
            Dtype::Uint8
        } else {
            Dtype::Int8
        };
        Ok(Val::Raw { t: y, dims, dtype })
    }

    /// DequantizeLinear per axis or block of the model's integer input.
    pub(super) fn dequantize_linear(&mut self, node: &Node) -> Result<Val, LoadError> {
        let Val::Raw {
            t: x,
            dims,
            dtype: dtype @ (Dtype::Int8 | Dtype::Uint8),
        } = self.val(node, node.required(0)?)?.clone()
        else {
            return Err(node.unsupported(
                "it dequantizes per axis or block something other than the model's integer input",
            ));
        };
        let p = self.params(node, &dims, Some(dtype == Dtype::Uint8))?;
        let y = self.tensor(
            TensorDesc::new(Dtype::Float32, &u32s(&to_nhwc(&dims)), None),
            &[],
            "an output",
        )?;
        self.push_linear(node, false, x, y, &p)?;
        Ok(Val::Raw {
            t: y,
            dims,
            dtype: Dtype::Float32,
        })
    }

    fn push_linear(
        &mut self,
        node: &Node,
        quantize: bool,
        input: usize,
        output: usize,
        p: &Params,
    ) -> Result<(), LoadError> {
        let q = QuantizeLinear {
            input: &self.tensors[input],
            output: &self.tensors[output],
            params: LinearQuantParams {
                scale: &self.tensors[p.scale],
                zero_point: &self.tensors[p.zero_point],
                axis: p.axis,
                block_size: p.block,
            },
        };
        let (op, name) = if quantize {
            (LinearQuantOp::Quantize(q), "quantize_linear")
        } else {
            (LinearQuantOp::Dequantize(q), "dequantize_linear")
        };
        linear_quant::push(&self.plan, &op).map_err(host(format!(
            "node {} ({})",
            node.index,
            node.label()
        )))?;
        self.ops.push(name.into());
        Ok(())
    }

    /// The scale and zero point (inputs 1 and 2) over a tensor of ONNX
    /// dimensions `dims`, as host tensors in the host's layout. `integer`
    /// is the 8-bit input's type, when it is the input.
    fn params(
        &mut self,
        node: &Node,
        dims: &[usize],
        integer: Option<bool>,
    ) -> Result<Params, LoadError> {
        let rank = dims.len();
        let axis = node.int("axis", 1);
        let axis = usize::try_from(if axis < 0 { axis + rank as i64 } else { axis })
            .ok()
            .filter(|&a| a < rank)
            .ok_or_else(|| node.malformed(format!("axis {axis} of a rank-{rank} tensor")))?;
        let block = node.int("block_size", 0);
        if block < 0 {
            return Err(node.malformed(format!("block_size {block}")));
        }
        let s = self.constant(node, node.required(1)?)?.clone();
        let Data::F32(scales) = &s.data else {
            return Err(node.unsupported("a scale that is not float32"));
        };
        // Per tensor and per axis broadcast along every other dimension.
        let param_dims: Vec<usize> = if block > 0 {
            s.dims.clone()
        } else if scales.len() == 1 {
            vec![1; rank]
        } else {
            (0..rank)
                .map(|k| if k == axis { scales.len() } else { 1 })
                .collect()
        };
        if param_dims.len() != rank || param_dims.iter().product::<usize>() != scales.len() {
            return Err(node.malformed(format!(
                "scales of shape {:?} for a {dims:?} tensor",
                s.dims
            )));
        }
        let (zps, unsigned) = match node.input(2) {
            Some(z) => {
                let z = self.constant(node, z)?;
                let Data::I8(v) = &z.data else {
                    return Err(node.unsupported("a zero point that is not int8 or uint8"));
                };
                if v.len() != scales.len() {
                    return Err(node.malformed("zero points do not match the scales"));
                }
                (v.iter().map(|&b| b as u8).collect::<Vec<u8>>(), z.unsigned)
            }
            None => {
                let unsigned = match (integer, node.int("output_dtype", 0)) {
                    (Some(u), _) => u,
                    (None, 0) | (None, 2) => true,
                    (None, 3) => false,
                    (None, t) => {
                        return Err(
                            node.unsupported(format!("output_dtype {t}: int8 and uint8 only"))
                        );
                    }
                };
                // Zero, held as int8: uint8's is −128.
                let zero = if unsigned { 0x80 } else { 0 };
                (vec![zero; scales.len()], unsigned)
            }
        };
        if integer.is_some_and(|u| u != unsigned) {
            return Err(node.malformed("the input and its zero point differ in type"));
        }
        let mut scale_bytes: Vec<u8> = scales.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut zp_bytes = zps;
        let mut host_axis = axis;
        if let &[n, c, h, w] = param_dims.as_slice() {
            scale_bytes = transpose(&scale_bytes, [n, c, h, w], 4, false);
            zp_bytes = transpose(&zp_bytes, [n, c, h, w], 1, false);
            host_axis = [0, 3, 1, 2][axis];
        }
        let host_dims = u32s(&to_nhwc(&param_dims));
        let scale = self.tensor(
            TensorDesc::new(Dtype::Float32, &host_dims, None),
            &scale_bytes,
            "scales",
        )?;
        let zero_point = self.tensor(
            TensorDesc::new(Dtype::Int8, &host_dims, None),
            &zp_bytes,
            "zero points",
        )?;
        let block = u32::try_from(block.max(1))
            .map_err(|_| node.malformed(format!("block_size {block}")))?;
        Ok(Params {
            scale,
            zero_point,
            axis: host_axis as u32,
            block,
            unsigned,
        })
    }
}
