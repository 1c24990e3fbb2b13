//! Operator descriptions, validated and prepared into kernel-ready form.

use gatehouse_kernels::elementwise::{HardSwish, Lut, Mul, Qp, Rescale};
use gatehouse_kernels::elementwise::{dequantize_i8, mul_scalar, quantize_f32};
use gatehouse_kernels::movement::{self, Concat, Pad, SpaceBatch, StridedSlice};
use gatehouse_kernels::reduce::{Mean, Reduction, mean_scalar, reduce_max_scalar};
use gatehouse_kernels::{
    Activation, Add, AddSpec, Conv2d, Conv2dSpec, DepthwiseConv2d, DepthwiseConv2dSpec,
    FullyConnected, FullyConnectedSpec, KernelError, KernelSet, Padding, Pool2d, Requant, Rounding,
    Semantics, Shape4, Softmax, WindowSpec, activation_range,
};

use crate::budget::Work;
use crate::tensor::{DType, Desc, Span, TensorKey, TensorStore};
use crate::{NnFault, OP_OVERHEAD};

/// Stride, dilation and padding as the plugin gave them.
#[derive(Clone, Copy, Debug)]
pub struct WindowArgs {
    pub padding: Padding,
    pub stride_h: u32,
    pub stride_w: u32,
    pub dilation_h: u32,
    pub dilation_w: u32,
}

/// One operator over tensors of a [`TensorStore`].
#[derive(Clone, Debug)]
pub enum OpDesc {
    Conv2d {
        input: TensorKey,
        filter: TensorKey,
        bias: Option<TensorKey>,
        output: TensorKey,
        window: WindowArgs,
        activation: Activation,
    },
    DepthwiseConv2d {
        input: TensorKey,
        filter: TensorKey,
        bias: Option<TensorKey>,
        output: TensorKey,
        window: WindowArgs,
        depth_multiplier: u32,
        activation: Activation,
    },
    FullyConnected {
        input: TensorKey,
        weights: TensorKey,
        bias: Option<TensorKey>,
        output: TensorKey,
        activation: Activation,
    },
    AveragePool2d(PoolArgs),
    MaxPool2d(PoolArgs),
    Add {
        a: TensorKey,
        b: TensorKey,
        output: TensorKey,
        activation: Activation,
    },
    Mul {
        a: TensorKey,
        b: TensorKey,
        output: TensorKey,
        activation: Activation,
    },
    Softmax {
        input: TensorKey,
        output: TensorKey,
        beta: f32,
    },
    Unary {
        kind: UnaryKind,
        input: TensorKey,
        output: TensorKey,
    },
    Mean {
        input: TensorKey,
        output: TensorKey,
        axes: Vec<usize>,
        keep_dims: bool,
    },
    ReduceMax {
        input: TensorKey,
        output: TensorKey,
        axes: Vec<usize>,
    },
    Pad {
        input: TensorKey,
        output: TensorKey,
        paddings: Vec<(usize, usize)>,
    },
    Concatenation {
        inputs: Vec<TensorKey>,
        output: TensorKey,
        axis: usize,
    },
    StridedSlice {
        input: TensorKey,
        output: TensorKey,
        begin: Vec<i64>,
        strides: Vec<i64>,
        counts: Vec<usize>,
    },
    SpaceToBatch {
        input: TensorKey,
        output: TensorKey,
        block: [usize; 2],
        before: [usize; 2],
    },
    BatchToSpace {
        input: TensorKey,
        output: TensorKey,
        block: [usize; 2],
        before: [usize; 2],
    },
}

/// Operators of one input and one output of equal size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryKind {
    Logistic,
    Tanh,
    HardSwish,
    Relu,
    Relu6,
    ReluN1To1,
    Quantize,
    Dequantize,
    Reshape,
}

#[derive(Clone, Copy, Debug)]
pub struct PoolArgs {
    pub input: TensorKey,
    pub output: TensorKey,
    pub filter_h: u32,
    pub filter_w: u32,
    pub window: WindowArgs,
    pub activation: Activation,
}

enum Kernel {
    Conv2d(Conv2d),
    DepthwiseConv2d(DepthwiseConv2d),
    FullyConnected(FullyConnected),
    AveragePool2d(Pool2d),
    MaxPool2d(Pool2d),
    Add(Add),
    Mul(Mul),
    Softmax(Softmax),
    Lut(Lut),
    HardSwish(HardSwish),
    Rescale(Rescale),
    QuantizeF32(Qp),
    Dequantize(Qp),
    Mean(Mean),
    ReduceMax(Reduction),
    Pad(Pad),
    Concat(Concat),
    StridedSlice(StridedSlice),
    SpaceToBatch(SpaceBatch),
    BatchToSpace(SpaceBatch),
    Copy,
}

/// An operator ready to run: kernel state plus the spans it reads and writes.
/// It holds a reference to every tensor it touches until [`release`](Self::release).
pub struct PreparedOp {
    name: &'static str,
    kernel: Kernel,
    inputs: Vec<Span>,
    output: Span,
    held: Vec<TensorKey>,
    charged: u64,
    /// What one run costs, for the deadline.
    work: Work,
}

/// An operator built from its description: name, kernel, activation
/// inputs, output, and the constants it copied.
type Built = (
    &'static str,
    Kernel,
    Vec<TensorKey>,
    TensorKey,
    Vec<TensorKey>,
);

fn act_i8<'a>(
    st: &'a TensorStore,
    key: TensorKey,
    what: &str,
) -> Result<(&'a Desc, f32, i32), NnFault> {
    let d = st.desc(key)?;
    if d.dtype != DType::I8 {
        return Err(NnFault::invalid(format!(
            "{what} must be int8, is {:?}",
            d.dtype
        )));
    }
    let q = d
        .quant
        .as_ref()
        .ok_or_else(|| NnFault::invalid(format!("{what} has no quantization")))?;
    let (s, z) = q.per_tensor(what)?;
    if !(s > 0.0) {
        return Err(NnFault::invalid(format!("{what} has scale {s}")));
    }
    if !(-128..=127).contains(&z) {
        return Err(NnFault::invalid(format!(
            "{what} has zero point {z} outside int8"
        )));
    }
    Ok((d, s, z))
}

fn bytes(x: &[i8]) -> &[u8] {
    bytemuck::cast_slice(x)
}

fn qp((_, scale, zero_point): (&Desc, f32, i32)) -> Qp {
    Qp { scale, zero_point }
}

fn check_out_len(st: &TensorStore, output: TensorKey, elements: usize) -> Result<(), NnFault> {
    let d = st.desc(output)?;
    if d.elements() != elements {
        return Err(NnFault::invalid(format!(
            "output {:?} should hold {elements} elements",
            d.shape
        )));
    }
    Ok(())
}

/// Data-movement operators copy bytes: type and quantization must agree.
fn same_type(st: &TensorStore, a: TensorKey, b: TensorKey, what: &str) -> Result<(), NnFault> {
    let (da, db) = (st.desc(a)?, st.desc(b)?);
    if da.dtype != db.dtype || da.quant != db.quant {
        return Err(NnFault::invalid(format!(
            "{what} needs the same type and quantization in and out"
        )));
    }
    Ok(())
}

/// What padding fills with: the zero point for quantized int8/uint8, else zero bytes.
fn pad_value(d: &Desc) -> Vec<u8> {
    let zp = d.quant.as_ref().map(|q| q.zero_points[0]).unwrap_or(0);
    match d.dtype {
        DType::I8 => vec![zp as i8 as u8],
        DType::U8 => vec![zp as u8],
        other => vec![0; other.size()],
    }
}

/// A rank-4 shape, or a rank-3 one read as `[n, h, 1, c]` as TFLite extends it.
fn nhwc(d: &Desc, what: &str) -> Result<[usize; 4], NnFault> {
    match d.shape.as_slice() {
        &[n, h, w, c] => Ok([n, h, w, c]),
        &[n, h, c] => Ok([n, h, 1, c]),
        s => Err(NnFault::invalid(format!(
            "{what} needs a rank 3 or 4 tensor, got {s:?}"
        ))),
    }
}

fn shape4(d: &Desc, what: &str) -> Result<Shape4, NnFault> {
    match d.shape.as_slice() {
        &[n, h, w, c] => Ok(Shape4::new(n, h, w, c)),
        s => Err(NnFault::invalid(format!(
            "{what} must be rank 4 (NHWC), has shape {s:?}"
        ))),
    }
}

/// Constant int8 weights with symmetric-or-not zero points and per-channel scales on `axis`.
fn weights_i8(
    st: &TensorStore,
    key: TensorKey,
    what: &str,
    channels: usize,
    axis: usize,
) -> Result<(Vec<i8>, Vec<f32>, Vec<i32>), NnFault> {
    let d = st.desc(key)?;
    if d.dtype != DType::I8 {
        return Err(NnFault::invalid(format!(
            "{what} must be int8, is {:?}",
            d.dtype
        )));
    }
    let q = d
        .quant
        .as_ref()
        .ok_or_else(|| NnFault::invalid(format!("{what} has no quantization")))?;
    if q.scales.len() != 1 && (q.scales.len() != channels || q.axis != axis) {
        return Err(NnFault::invalid(format!(
            "{what} has {} scales on axis {}; expected 1 or {channels} on axis {axis}",
            q.scales.len(),
            q.axis
        )));
    }
    let data = st.bytes(key)?.iter().map(|&b| b as i8).collect();
    Ok((data, q.scales.clone(), q.zero_points.clone()))
}

fn bias_i32(
    st: &TensorStore,
    key: Option<TensorKey>,
    channels: usize,
) -> Result<Option<Vec<i32>>, NnFault> {
    let Some(key) = key else { return Ok(None) };
    let d = st.desc(key)?;
    if d.dtype != DType::I32 || d.elements() != channels {
        return Err(NnFault::invalid(format!(
            "bias must be int32 with {channels} values, is {:?} {:?}",
            d.dtype, d.shape
        )));
    }
    let bytes = st.bytes(key)?;
    Ok(Some(
        bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    ))
}

fn window_spec(w: WindowArgs, kh: usize, kw: usize) -> WindowSpec {
    WindowSpec {
        kernel_h: kh,
        kernel_w: kw,
        stride_h: w.stride_h as usize,
        stride_w: w.stride_w as usize,
        dilation_h: w.dilation_h as usize,
        dilation_w: w.dilation_w as usize,
        padding: w.padding,
    }
}

/// `input_scale · filter_scale[c] / output_scale` per channel, in double as TFLite does.
fn channel_requant(
    s_in: f32,
    filter_scales: &[f32],
    s_out: f32,
    rounding: Rounding,
) -> Vec<Requant> {
    filter_scales
        .iter()
        .map(|&fs| Requant::from_real(s_in as f64 * fs as f64 / s_out as f64, rounding))
        .collect()
}

fn symmetric(zero_points: &[i32], what: &str) -> Result<(), NnFault> {
    if zero_points.iter().any(|&z| z != 0) {
        return Err(NnFault::invalid(format!(
            "int8 {what} must be symmetric (zero point 0)"
        )));
    }
    Ok(())
}

impl PreparedOp {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Validate `op` against the tensors it names and build its kernel state.
    /// Charges copied weights to the quota; holds every operand.
    pub fn prepare(
        op: &OpDesc,
        st: &mut TensorStore,
        semantics: Semantics,
        ks: &KernelSet,
    ) -> Result<PreparedOp, NnFault> {
        // What a layer with weights will hold is charged before its weights
        // are copied and packed, so a layer too big for the quota is refused
        // before the host allocates anything for it.
        let mut staged = 0u64;
        let built = Self::build(op, st, semantics, ks, &mut staged);
        match built.and_then(|b| Self::finish(b, st, staged)) {
            Ok(p) => Ok(p),
            Err(e) => {
                st.uncharge(staged);
                Err(e)
            }
        }
    }

    fn build(
        op: &OpDesc,
        st: &mut TensorStore,
        semantics: Semantics,
        ks: &KernelSet,
        staged: &mut u64,
    ) -> Result<Built, NnFault> {
        let mut stage = |st: &mut TensorStore, bytes: Result<usize, KernelError>, what: &str| {
            let bytes = bytes? as u64;
            st.charge(bytes, what)?;
            *staged += bytes;
            Ok::<(), NnFault>(())
        };
        Ok(match *op {
            OpDesc::Conv2d {
                input,
                filter,
                bias,
                output,
                window,
                activation,
            } => {
                let rounding = semantics.conv();
                let (di, s_in, z_in) = act_i8(st, input, "conv2d input")?;
                let is = shape4(di, "conv2d input")?;
                let (dout, s_out, z_out) = act_i8(st, output, "conv2d output")?;
                let os = shape4(dout, "conv2d output")?;
                let fshape = shape4(st.desc(filter)?, "conv2d filter")?;
                if fshape.n != os.c {
                    return Err(NnFault::invalid(format!(
                        "filter has {} output channels, output has {}",
                        fshape.n, os.c
                    )));
                }
                let wspec = window_spec(window, fshape.h, fshape.w);
                stage(
                    st,
                    Conv2d::heap_bytes_for(is, os, wspec, fshape.c, ks.layout),
                    "conv2d weights",
                )?;
                let (f, fscales, fzps) = weights_i8(st, filter, "conv2d filter", os.c, 0)?;
                symmetric(&fzps, "conv2d filter")?;
                let (act_min, act_max) = activation_range(activation, s_out, z_out);
                let k = Conv2d::new(Conv2dSpec {
                    input: is,
                    output: os,
                    window: wspec,
                    filter: f,
                    filter_in_c: fshape.c,
                    bias: bias_i32(st, bias, os.c)?,
                    requant: channel_requant(s_in, &fscales, s_out, rounding),
                    input_offset: -z_in,
                    output_offset: z_out,
                    act_min,
                    act_max,
                    rounding,
                    layout: ks.layout,
                })?;
                (
                    "conv2d",
                    Kernel::Conv2d(k),
                    vec![input],
                    output,
                    [Some(filter), bias].into_iter().flatten().collect(),
                )
            }
            OpDesc::DepthwiseConv2d {
                input,
                filter,
                bias,
                output,
                window,
                depth_multiplier,
                activation,
            } => {
                let rounding = semantics.conv();
                let (di, s_in, z_in) = act_i8(st, input, "depthwise input")?;
                let is = shape4(di, "depthwise input")?;
                let (dout, s_out, z_out) = act_i8(st, output, "depthwise output")?;
                let os = shape4(dout, "depthwise output")?;
                let fshape = shape4(st.desc(filter)?, "depthwise filter")?;
                if fshape.n != 1 || fshape.c != os.c {
                    return Err(NnFault::invalid(format!(
                        "depthwise filter must be [1,kh,kw,{}], is {fshape:?}",
                        os.c
                    )));
                }
                let wspec = window_spec(window, fshape.h, fshape.w);
                stage(
                    st,
                    DepthwiseConv2d::heap_bytes_for(is, os, wspec, depth_multiplier as usize),
                    "depthwise weights",
                )?;
                let (f, fscales, fzps) = weights_i8(st, filter, "depthwise filter", os.c, 3)?;
                symmetric(&fzps, "depthwise filter")?;
                let (act_min, act_max) = activation_range(activation, s_out, z_out);
                let k = DepthwiseConv2d::new(DepthwiseConv2dSpec {
                    input: is,
                    output: os,
                    window: wspec,
                    filter: f,
                    depth_multiplier: depth_multiplier as usize,
                    bias: bias_i32(st, bias, os.c)?,
                    requant: channel_requant(s_in, &fscales, s_out, rounding),
                    input_offset: -z_in,
                    output_offset: z_out,
                    act_min,
                    act_max,
                    rounding,
                })?;
                (
                    "depthwise_conv2d",
                    Kernel::DepthwiseConv2d(k),
                    vec![input],
                    output,
                    [Some(filter), bias].into_iter().flatten().collect(),
                )
            }
            OpDesc::FullyConnected {
                input,
                weights,
                bias,
                output,
                activation,
            } => {
                let rounding = semantics.fully_connected();
                let (di, s_in, z_in) = act_i8(st, input, "fully_connected input")?;
                let in_elems = di.elements();
                let (dout, s_out, z_out) = act_i8(st, output, "fully_connected output")?;
                let out_elems = dout.elements();
                let (units, depth) = match st.desc(weights)?.shape.as_slice() {
                    &[u, d] => (u, d),
                    s => {
                        return Err(NnFault::invalid(format!(
                            "weights must be [units, depth], are {s:?}"
                        )));
                    }
                };
                if depth == 0 || in_elems % depth != 0 || out_elems != (in_elems / depth) * units {
                    return Err(NnFault::invalid(format!(
                        "input of {in_elems} and output of {out_elems} values do not fit weights [{units}, {depth}]"
                    )));
                }
                let woff = st
                    .desc(weights)?
                    .quant
                    .as_ref()
                    .and_then(|q| q.zero_points.first())
                    .map_or(0, |z| z.saturating_neg());
                stage(
                    st,
                    FullyConnected::heap_bytes_for(depth, units, woff, ks.layout),
                    "fully_connected weights",
                )?;
                let (w, wscales, wzps) =
                    weights_i8(st, weights, "fully_connected weights", units, 0)?;
                if wzps.len() > 1 {
                    symmetric(&wzps, "per-channel weights")?;
                }
                let (act_min, act_max) = activation_range(activation, s_out, z_out);
                let k = FullyConnected::new(FullyConnectedSpec {
                    batches: in_elems / depth,
                    depth,
                    units,
                    weights: w,
                    bias: bias_i32(st, bias, units)?,
                    requant: channel_requant(s_in, &wscales, s_out, rounding),
                    input_offset: -z_in,
                    weights_offset: -wzps[0],
                    output_offset: z_out,
                    act_min,
                    act_max,
                    rounding,
                    layout: ks.layout,
                })?;
                (
                    "fully_connected",
                    Kernel::FullyConnected(k),
                    vec![input],
                    output,
                    [Some(weights), bias].into_iter().flatten().collect(),
                )
            }
            OpDesc::AveragePool2d(p) | OpDesc::MaxPool2d(p) => {
                let avg = matches!(op, OpDesc::AveragePool2d(_));
                let name = if avg { "average_pool2d" } else { "max_pool2d" };
                let (di, s_in, z_in) = act_i8(st, p.input, "pool input")?;
                let is = shape4(di, "pool input")?;
                let (dout, s_out, z_out) = act_i8(st, p.output, "pool output")?;
                let os = shape4(dout, "pool output")?;
                if s_in != s_out || z_in != z_out {
                    return Err(NnFault::invalid(
                        "pooling input and output must share quantization",
                    ));
                }
                let (act_min, act_max) = activation_range(p.activation, s_out, z_out);
                let k = Pool2d::new(
                    name,
                    is,
                    os,
                    window_spec(p.window, p.filter_h as usize, p.filter_w as usize),
                    act_min,
                    act_max,
                )?;
                (
                    name,
                    if avg {
                        Kernel::AveragePool2d(k)
                    } else {
                        Kernel::MaxPool2d(k)
                    },
                    vec![p.input],
                    p.output,
                    vec![],
                )
            }
            OpDesc::Add {
                a,
                b,
                output,
                activation,
            } => {
                let rounding = semantics.add();
                let (da, sa, za) = act_i8(st, a, "add input a")?;
                let (db, sb, zb) = act_i8(st, b, "add input b")?;
                let (dout, so, zo) = act_i8(st, output, "add output")?;
                let (act_min, act_max) = activation_range(activation, so, zo);
                let k = Add::new(AddSpec {
                    shape1: da.shape.clone(),
                    shape2: db.shape.clone(),
                    out_shape: dout.shape.clone(),
                    scale1: sa,
                    zero_point1: za,
                    scale2: sb,
                    zero_point2: zb,
                    out_scale: so,
                    out_zero_point: zo,
                    act_min,
                    act_max,
                    rounding,
                    table_from: ks.add_table.then_some(gatehouse_kernels::add::TABLE_FROM),
                })?;
                ("add", Kernel::Add(k), vec![a, b], output, vec![])
            }
            OpDesc::Softmax {
                input,
                output,
                beta,
            } => {
                let (di, s_in, _) = act_i8(st, input, "softmax input")?;
                let (dout, s_out, z_out) = act_i8(st, output, "softmax output")?;
                if di.shape != dout.shape {
                    return Err(NnFault::invalid(format!(
                        "softmax shapes differ: {:?} vs {:?}",
                        di.shape, dout.shape
                    )));
                }
                if s_out != 1.0 / 256.0 || z_out != -128 {
                    return Err(NnFault::invalid(
                        "softmax output must have scale 1/256 and zero point -128",
                    ));
                }
                let depth = *di
                    .shape
                    .last()
                    .ok_or_else(|| NnFault::invalid("softmax of a scalar"))?;
                let outer = if depth == 0 { 0 } else { di.elements() / depth };
                (
                    "softmax",
                    Kernel::Softmax(Softmax::new(outer, depth, s_in, beta, s_out, z_out)?),
                    vec![input],
                    output,
                    vec![],
                )
            }
            OpDesc::Mul {
                a,
                b,
                output,
                activation,
            } => {
                let (da, sa, za) = act_i8(st, a, "mul input a")?;
                let (db, sb, zb) = act_i8(st, b, "mul input b")?;
                let (dout, so, zo) = act_i8(st, output, "mul output")?;
                let act = activation_range(activation, so, zo);
                let q = |scale, zero_point| Qp { scale, zero_point };
                let k = Mul::new(
                    &da.shape,
                    &db.shape,
                    &dout.shape,
                    q(sa, za),
                    q(sb, zb),
                    q(so, zo),
                    act,
                    semantics.conv(),
                )?;
                ("mul", Kernel::Mul(k), vec![a, b], output, vec![])
            }
            OpDesc::Unary {
                kind,
                input,
                output,
            } => {
                let (di, dout) = (st.desc(input)?.clone(), st.desc(output)?.clone());
                if di.elements() != dout.elements() {
                    return Err(NnFault::invalid(format!(
                        "{kind:?}: {:?} and {:?} differ in size",
                        di.shape, dout.shape
                    )));
                }
                let name: &'static str = match kind {
                    UnaryKind::Logistic => "logistic",
                    UnaryKind::Tanh => "tanh",
                    UnaryKind::HardSwish => "hard_swish",
                    UnaryKind::Relu => "relu",
                    UnaryKind::Relu6 => "relu6",
                    UnaryKind::ReluN1To1 => "relu_n1_to_1",
                    UnaryKind::Quantize => "quantize",
                    UnaryKind::Dequantize => "dequantize",
                    UnaryKind::Reshape => "reshape",
                };
                let kernel = match kind {
                    UnaryKind::Reshape => {
                        if di.dtype != dout.dtype || di.byte_len()? != dout.byte_len()? {
                            return Err(NnFault::invalid(format!(
                                "reshape from {:?} {:?} to {:?} {:?} changes size or type",
                                di.dtype, di.shape, dout.dtype, dout.shape
                            )));
                        }
                        Kernel::Copy
                    }
                    UnaryKind::Quantize if di.dtype == DType::F32 => {
                        Kernel::QuantizeF32(qp(act_i8(st, output, "quantize output")?))
                    }
                    UnaryKind::Dequantize => {
                        let qi = qp(act_i8(st, input, "dequantize input")?);
                        if dout.dtype != DType::F32 {
                            return Err(NnFault::invalid("dequantize output must be float32"));
                        }
                        Kernel::Dequantize(qi)
                    }
                    _ => {
                        let qi = qp(act_i8(st, input, "input")?);
                        let qo = qp(act_i8(st, output, "output")?);
                        let r = semantics.conv();
                        match kind {
                            UnaryKind::Logistic => Kernel::Lut(Lut::logistic(qi, qo)),
                            UnaryKind::Tanh => Kernel::Lut(Lut::tanh(qi, qo)),
                            UnaryKind::HardSwish => Kernel::HardSwish(HardSwish::new(qi, qo)?),
                            UnaryKind::Relu => {
                                Kernel::Rescale(Rescale::relu(qi, qo, (0.0, f32::INFINITY), r))
                            }
                            UnaryKind::Relu6 => {
                                Kernel::Rescale(Rescale::relu(qi, qo, (0.0, 6.0), r))
                            }
                            UnaryKind::ReluN1To1 => {
                                Kernel::Rescale(Rescale::relu(qi, qo, (-1.0, 1.0), r))
                            }
                            _ => Kernel::Rescale(Rescale::requantize(qi, qo, r)),
                        }
                    }
                };
                (name, kernel, vec![input], output, vec![])
            }
            OpDesc::Mean {
                input,
                output,
                ref axes,
                ..
            } => {
                let (di, s_in, z_in) = act_i8(st, input, "mean input")?;
                let shape = di.shape.clone();
                let qo = qp(act_i8(st, output, "mean output")?);
                let k = Mean::new(
                    &shape,
                    axes,
                    Qp {
                        scale: s_in,
                        zero_point: z_in,
                    },
                    qo,
                    semantics.conv(),
                )?;
                check_out_len(st, output, k.reduction.out_len())?;
                ("mean", Kernel::Mean(k), vec![input], output, vec![])
            }
            OpDesc::ReduceMax {
                input,
                output,
                ref axes,
            } => {
                let (di, _, _) = act_i8(st, input, "reduce_max input")?;
                let k = Reduction::new("reduce_max", &di.shape.clone(), axes)?;
                act_i8(st, output, "reduce_max output")?;
                check_out_len(st, output, k.out_len())?;
                (
                    "reduce_max",
                    Kernel::ReduceMax(k),
                    vec![input],
                    output,
                    vec![],
                )
            }
            OpDesc::Pad {
                input,
                output,
                ref paddings,
            } => {
                let di = st.desc(input)?.clone();
                same_type(st, input, output, "pad")?;
                let value = pad_value(st.desc(output)?);
                let k = Pad::new(&di.shape, paddings, value)?;
                if k.out_dims() != st.desc(output)?.shape.as_slice() {
                    return Err(NnFault::invalid(format!(
                        "pad output is {:?}, padding gives {:?}",
                        st.desc(output)?.shape,
                        k.out_dims()
                    )));
                }
                ("pad", Kernel::Pad(k), vec![input], output, vec![])
            }
            OpDesc::Concatenation {
                ref inputs,
                output,
                axis,
            } => {
                let mut shapes = Vec::with_capacity(inputs.len());
                for &i in inputs {
                    same_type(st, i, output, "concatenation")?;
                    shapes.push(st.desc(i)?.shape.clone());
                }
                let dout = st.desc(output)?;
                let k = Concat::new(&shapes, axis, dout.dtype.size())?;
                let total: usize = (0..inputs.len()).map(|i| k.input_len(i)).sum();
                if total != dout.byte_len()? {
                    return Err(NnFault::invalid(format!(
                        "concatenation of {shapes:?} on axis {axis} does not make {:?}",
                        dout.shape
                    )));
                }
                (
                    "concatenation",
                    Kernel::Concat(k),
                    inputs.clone(),
                    output,
                    vec![],
                )
            }
            OpDesc::StridedSlice {
                input,
                output,
                ref begin,
                ref strides,
                ref counts,
            } => {
                same_type(st, input, output, "strided_slice")?;
                let di = st.desc(input)?;
                let k = StridedSlice::new(&di.shape, begin, strides, counts, di.dtype.size())?;
                check_out_len(st, output, counts.iter().product())?;
                (
                    "strided_slice",
                    Kernel::StridedSlice(k),
                    vec![input],
                    output,
                    vec![],
                )
            }
            OpDesc::SpaceToBatch {
                input,
                output,
                block,
                before,
            }
            | OpDesc::BatchToSpace {
                input,
                output,
                block,
                before,
            } => {
                let to_batch = matches!(op, OpDesc::SpaceToBatch { .. });
                let name = if to_batch {
                    "space_to_batch_nd"
                } else {
                    "batch_to_space_nd"
                };
                same_type(st, input, output, name)?;
                let (i4, o4) = (nhwc(st.desc(input)?, name)?, nhwc(st.desc(output)?, name)?);
                let kernel = if to_batch {
                    Kernel::SpaceToBatch(SpaceBatch::space_to_batch(
                        i4,
                        o4,
                        block,
                        before,
                        pad_value(st.desc(output)?),
                    )?)
                } else {
                    Kernel::BatchToSpace(SpaceBatch::batch_to_space(
                        i4,
                        o4,
                        block,
                        before,
                        st.desc(input)?.dtype.size(),
                    )?)
                };
                (name, kernel, vec![input], output, vec![])
            }
        })
    }

    /// Charge the rest of what the operator holds and take its operands.
    fn finish(built: Built, st: &mut TensorStore, staged: u64) -> Result<PreparedOp, NnFault> {
        let (name, kernel, inputs, output, _constants) = built;
        let weight_bytes = match &kernel {
            Kernel::Conv2d(k) => k.heap_bytes(),
            Kernel::DepthwiseConv2d(k) => k.heap_bytes(),
            Kernel::FullyConnected(k) => k.heap_bytes(),
            Kernel::Add(k) => k.bytes(),
            Kernel::Softmax(_) => 1024,
            Kernel::Lut(_) => 256,
            _ => 0,
        } as u64;
        // The operator and its operand lists (a concatenation has up to 32).
        let per_operand = (std::mem::size_of::<Span>() + std::mem::size_of::<TensorKey>()) as u64;
        let bookkeeping = OP_OVERHEAD + (inputs.len() as u64 + 1) * per_operand;
        let spans = inputs
            .iter()
            .map(|k| st.span(*k))
            .collect::<Result<Vec<_>, _>>()?;
        let out_span = st.span(output)?;
        let aliasing_reshape = matches!(kernel, Kernel::Copy) && spans[0] == out_span;
        if !aliasing_reshape && spans.iter().any(|s| s.overlaps(&out_span)) {
            return Err(NnFault::invalid(format!(
                "{name}: the output overlaps an input"
            )));
        }
        // Layers with weights were staged at their exact size; the rest now.
        let charged = weight_bytes.max(staged) + bookkeeping;
        st.charge(charged - staged, name)?;
        let mut held = inputs;
        held.push(output);
        for (i, k) in held.iter().enumerate() {
            if let Err(e) = st.retain(*k) {
                for k in &held[..i] {
                    st.release(*k);
                }
                st.uncharge(charged - staged);
                return Err(e);
            }
        }
        let macs = match &kernel {
            Kernel::Conv2d(k) => k.macs(),
            Kernel::DepthwiseConv2d(k) => k.macs(),
            Kernel::FullyConnected(k) => k.macs(),
            Kernel::AveragePool2d(k) | Kernel::MaxPool2d(k) => k.macs(),
            _ => 0,
        };
        let elements = spans
            .iter()
            .chain([&out_span])
            .map(|s| s.len() as u64)
            .sum();
        Ok(PreparedOp {
            name,
            kernel,
            inputs: spans,
            output: out_span,
            held,
            charged,
            work: Work { macs, elements },
        })
    }

    /// Run on the store's current activations.
    pub fn run(&self, st: &mut TensorStore, ks: &KernelSet) -> Result<(), NnFault> {
        self.run_at(st, ks, |s| s)
    }

    /// Run with every operand span moved by `at`: one lane of a batch.
    pub fn run_at(
        &self,
        st: &mut TensorStore,
        ks: &KernelSet,
        at: impl Fn(Span) -> Span,
    ) -> Result<(), NnFault> {
        // An empty output has nothing to compute. Its shape may still be
        // huge ([32639, 32639, 0]), and kernels that walk the outer
        // dimensions would loop a billion times over nothing: work its
        // estimate, which counts elements, would not see.
        if self.output.is_empty() {
            return Ok(());
        }
        let a = at(self.inputs[0]);
        let o = at(self.output);
        let r = match &self.kernel {
            Kernel::Conv2d(k) => st.with_operands([a], o, |[i], out| (ks.conv2d)(k, i, out))?,
            Kernel::DepthwiseConv2d(k) => {
                st.with_operands([a], o, |[i], out| (ks.depthwise_conv2d)(k, i, out))?
            }
            Kernel::FullyConnected(k) => {
                st.with_operands([a], o, |[i], out| (ks.fully_connected)(k, i, out))?
            }
            Kernel::AveragePool2d(k) => {
                st.with_operands([a], o, |[i], out| (ks.average_pool2d)(k, i, out))?
            }
            Kernel::MaxPool2d(k) => {
                st.with_operands([a], o, |[i], out| (ks.max_pool2d)(k, i, out))?
            }
            Kernel::Add(k) => st.with_operands([a, at(self.inputs[1])], o, |[x, y], out| {
                (ks.add)(k, x, y, out)
            })?,
            Kernel::Mul(k) => st.with_operands([a, at(self.inputs[1])], o, |[x, y], out| {
                mul_scalar(k, x, y, out)
            })?,
            Kernel::Softmax(k) => st.with_operands([a], o, |[i], out| (ks.softmax)(k, i, out))?,
            Kernel::Lut(k) => st.with_operands([a], o, |[i], out| k.apply(i, out))?,
            Kernel::HardSwish(k) => st.with_operands([a], o, |[i], out| k.apply(i, out))?,
            Kernel::Rescale(k) => st.with_operands([a], o, |[i], out| k.apply(i, out))?,
            Kernel::QuantizeF32(q) => {
                st.with_operands([a], o, |[i], out| quantize_f32(*q, bytes(i), out))?
            }
            Kernel::Dequantize(q) => st.with_operands([a], o, |[i], out| {
                dequantize_i8(*q, i, bytemuck::cast_slice_mut(out))
            })?,
            Kernel::Mean(k) => st.with_operands([a], o, |[i], out| mean_scalar(k, i, out))?,
            Kernel::ReduceMax(k) => {
                st.with_operands([a], o, |[i], out| reduce_max_scalar(k, i, out))?
            }
            Kernel::Pad(k) => st.with_operands([a], o, |[i], out| {
                movement::pad(k, bytes(i), bytemuck::cast_slice_mut(out))
            })?,
            Kernel::StridedSlice(k) => st.with_operands([a], o, |[i], out| {
                movement::strided_slice(k, bytes(i), bytemuck::cast_slice_mut(out))
            })?,
            Kernel::SpaceToBatch(k) => st.with_operands([a], o, |[i], out| {
                movement::space_to_batch(k, bytes(i), bytemuck::cast_slice_mut(out))
            })?,
            Kernel::BatchToSpace(k) => st.with_operands([a], o, |[i], out| {
                movement::batch_to_space(k, bytes(i), bytemuck::cast_slice_mut(out))
            })?,
            Kernel::Concat(k) => {
                // The concat kernel refused more inputs than this at prepare.
                let mut spans = [o; TensorStore::MAX_MANY];
                let n = self.inputs.len().min(spans.len());
                for (d, &s) in spans.iter_mut().zip(&self.inputs) {
                    *d = at(s);
                }
                st.with_many(&spans[..n], o, |ins, out| {
                    let mut xs: [&[u8]; movement::MAX_CONCAT_INPUTS] =
                        [&[]; movement::MAX_CONCAT_INPUTS];
                    for (x, i) in xs.iter_mut().zip(ins) {
                        *x = bytes(i);
                    }
                    movement::concat(k, &xs[..ins.len()], bytemuck::cast_slice_mut(out))
                })?
            }
            Kernel::Copy if a == o => Ok(()),
            Kernel::Copy => st.with_operands([a], o, |[i], out| {
                out.copy_from_slice(i);
                Ok::<(), KernelError>(())
            })?,
        };
        r.map_err(NnFault::from)
    }

    pub fn inputs(&self) -> &[Span] {
        &self.inputs
    }

    pub fn output(&self) -> Span {
        self.output
    }

    /// What one run costs, for the deadline.
    pub fn work(&self) -> Work {
        self.work
    }

    /// Multiply-accumulates per run of the layers that have them.
    pub fn macs(&self) -> u64 {
        match &self.kernel {
            Kernel::Conv2d(k) => k.macs(),
            Kernel::DepthwiseConv2d(k) => k.macs(),
            Kernel::FullyConnected(k) => k.macs(),
            _ => 0,
        }
    }

    /// The layer, when this is a fully connected one.
    pub fn fully_connected(&self) -> Option<&FullyConnected> {
        match &self.kernel {
            Kernel::FullyConnected(k) => Some(k),
            _ => None,
        }
    }

    /// Give back the operands and the quota.
    pub fn release(self, st: &mut TensorStore) {
        for k in self.held {
            st.release(k);
        }
        st.uncharge(self.charged);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use gatehouse_kernels::dispatch;

    use super::*;
    use crate::budget::Budget;
    use crate::plan::Plan;
    use crate::tensor::Quant;

    fn i8s(shape: &[usize]) -> Desc {
        Desc {
            dtype: DType::I8,
            shape: shape.to_vec(),
            quant: Some(Quant {
                scales: vec![0.1],
                zero_points: vec![0],
                axis: 0,
            }),
        }
    }

    /// Found by the `nn_ops` fuzz target: a concatenation of tensors shaped
    /// [32639, 32639, 0] costs no bytes and was estimated as no work, yet
    /// the kernel walked its billion outer positions for a minute. An
    /// empty output is now not computed at all.
    #[test]
    fn an_empty_output_costs_nothing_whatever_its_shape() {
        let ks = dispatch::available().last().expect("a kernel set");
        let mut st = TensorStore::new(1 << 20);
        let t = st.create(i8s(&[32639, 32639, 0])).unwrap();
        let out = st.create(i8s(&[32639, 32639, 0])).unwrap();
        let concat = OpDesc::Concatenation {
            inputs: vec![t, t, t],
            output: out,
            axis: 2,
        };
        let mut plan = Plan::new(Semantics::TfliteReference);
        plan.push(&concat, &mut st, ks).unwrap();
        let start = Instant::now();
        plan.run(&mut st, ks, &mut Budget::unlimited()).unwrap();
        // Unfixed, this took a minute in a release build.
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        plan.release(&mut st);
    }

    /// Found reading the kernels after the finding above: a MEAN over 2^25
    /// elements overflowed its int32 sum (a panic in a debug host). It
    /// wraps, as TFLite's int32 does.
    #[test]
    fn a_mean_of_very_many_elements_wraps_instead_of_panicking() {
        let ks = dispatch::available().last().expect("a kernel set");
        let mut st = TensorStore::new(1 << 26);
        let x = st.create(i8s(&[1 << 25])).unwrap();
        st.write(x, 0, &vec![127u8; 1 << 25]).unwrap();
        let y = st.create(i8s(&[1])).unwrap();
        let mean = OpDesc::Mean {
            input: x,
            output: y,
            axes: vec![0],
            keep_dims: true,
        };
        let op = PreparedOp::prepare(&mean, &mut st, Semantics::TfliteReference, ks).unwrap();
        op.run(&mut st, ks).unwrap();
        op.release(&mut st);
    }
}
