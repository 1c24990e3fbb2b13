//! Operator descriptions, validated and prepared into kernel-ready form.

use gatehouse_kernels::{
    Activation, Add, AddSpec, KernelError, Conv2d, Conv2dSpec, DepthwiseConv2d, DepthwiseConv2dSpec, FullyConnected, FullyConnectedSpec, KernelSet, Padding, Pool2d,
    Requant, Rounding, Semantics, Shape4, Softmax, WindowSpec, activation_range,
};

use crate::nn::tensor::{DType, Desc, Span, TensorKey, TensorStore};
use crate::nn::{NnFault, OP_OVERHEAD};

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
    Conv2d { input: TensorKey, filter: TensorKey, bias: Option<TensorKey>, output: TensorKey, window: WindowArgs, activation: Activation },
    DepthwiseConv2d { input: TensorKey, filter: TensorKey, bias: Option<TensorKey>, output: TensorKey, window: WindowArgs, depth_multiplier: u32, activation: Activation },
    FullyConnected { input: TensorKey, weights: TensorKey, bias: Option<TensorKey>, output: TensorKey, activation: Activation },
    AveragePool2d(PoolArgs),
    MaxPool2d(PoolArgs),
    Add { a: TensorKey, b: TensorKey, output: TensorKey, activation: Activation },
    Softmax { input: TensorKey, output: TensorKey, beta: f32 },
    Reshape { input: TensorKey, output: TensorKey },
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
    Softmax(Softmax),
    Copy,
}

/// An operator ready to run: kernel state plus the spans it reads and writes.
/// It holds a reference to every tensor it touches until [`release`](Self::release).
pub struct PreparedOp {
    name: &'static str,
    kernel: Kernel,
    inputs: [Span; 2],
    output: Span,
    held: Vec<TensorKey>,
    charged: u64,
}

fn act_i8<'a>(st: &'a TensorStore, key: TensorKey, what: &str) -> Result<(&'a Desc, f32, i32), NnFault> {
    let d = st.desc(key)?;
    if d.dtype != DType::I8 {
        return Err(NnFault::invalid(format!("{what} must be int8, is {:?}", d.dtype)));
    }
    let q = d.quant.as_ref().ok_or_else(|| NnFault::invalid(format!("{what} has no quantization")))?;
    let (s, z) = q.per_tensor(what)?;
    if !(s > 0.0) {
        return Err(NnFault::invalid(format!("{what} has scale {s}")));
    }
    if !(-128..=127).contains(&z) {
        return Err(NnFault::invalid(format!("{what} has zero point {z} outside int8")));
    }
    Ok((d, s, z))
}

fn shape4(d: &Desc, what: &str) -> Result<Shape4, NnFault> {
    match d.shape.as_slice() {
        &[n, h, w, c] => Ok(Shape4::new(n, h, w, c)),
        s => Err(NnFault::invalid(format!("{what} must be rank 4 (NHWC), has shape {s:?}"))),
    }
}

/// Constant int8 weights with symmetric-or-not zero points and per-channel scales on `axis`.
fn weights_i8(st: &TensorStore, key: TensorKey, what: &str, channels: usize, axis: usize) -> Result<(Vec<i8>, Vec<f32>, Vec<i32>), NnFault> {
    let d = st.desc(key)?;
    if d.dtype != DType::I8 {
        return Err(NnFault::invalid(format!("{what} must be int8, is {:?}", d.dtype)));
    }
    let q = d.quant.as_ref().ok_or_else(|| NnFault::invalid(format!("{what} has no quantization")))?;
    if q.scales.len() != 1 && (q.scales.len() != channels || q.axis != axis) {
        return Err(NnFault::invalid(format!("{what} has {} scales on axis {}; expected 1 or {channels} on axis {axis}", q.scales.len(), q.axis)));
    }
    let data = st.bytes(key)?.iter().map(|&b| b as i8).collect();
    Ok((data, q.scales.clone(), q.zero_points.clone()))
}

fn bias_i32(st: &TensorStore, key: Option<TensorKey>, channels: usize) -> Result<Option<Vec<i32>>, NnFault> {
    let Some(key) = key else { return Ok(None) };
    let d = st.desc(key)?;
    if d.dtype != DType::I32 || d.elements() != channels {
        return Err(NnFault::invalid(format!("bias must be int32 with {channels} values, is {:?} {:?}", d.dtype, d.shape)));
    }
    let bytes = st.bytes(key)?;
    Ok(Some(bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
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
fn channel_requant(s_in: f32, filter_scales: &[f32], s_out: f32, rounding: Rounding) -> Vec<Requant> {
    filter_scales.iter().map(|&fs| Requant::from_real(s_in as f64 * fs as f64 / s_out as f64, rounding)).collect()
}

fn symmetric(zero_points: &[i32], what: &str) -> Result<(), NnFault> {
    if zero_points.iter().any(|&z| z != 0) {
        return Err(NnFault::invalid(format!("int8 {what} must be symmetric (zero point 0)")));
    }
    Ok(())
}

impl PreparedOp {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Validate `op` against the tensors it names and build its kernel state.
    /// Charges copied weights to the quota; holds every operand.
    pub fn prepare(op: &OpDesc, st: &mut TensorStore, semantics: Semantics) -> Result<PreparedOp, NnFault> {
        let (name, kernel, inputs, output, mut held): (&'static str, Kernel, Vec<TensorKey>, TensorKey, Vec<TensorKey>) = match *op {
            OpDesc::Conv2d { input, filter, bias, output, window, activation } => {
                let rounding = semantics.conv();
                let (di, s_in, z_in) = act_i8(st, input, "conv2d input")?;
                let is = shape4(di, "conv2d input")?;
                let (dout, s_out, z_out) = act_i8(st, output, "conv2d output")?;
                let os = shape4(dout, "conv2d output")?;
                let fshape = shape4(st.desc(filter)?, "conv2d filter")?;
                if fshape.n != os.c {
                    return Err(NnFault::invalid(format!("filter has {} output channels, output has {}", fshape.n, os.c)));
                }
                let (f, fscales, fzps) = weights_i8(st, filter, "conv2d filter", os.c, 0)?;
                symmetric(&fzps, "conv2d filter")?;
                let (act_min, act_max) = activation_range(activation, s_out, z_out);
                let k = Conv2d::new(Conv2dSpec {
                    input: is,
                    output: os,
                    window: window_spec(window, fshape.h, fshape.w),
                    filter: f,
                    filter_in_c: fshape.c,
                    bias: bias_i32(st, bias, os.c)?,
                    requant: channel_requant(s_in, &fscales, s_out, rounding),
                    input_offset: -z_in,
                    output_offset: z_out,
                    act_min,
                    act_max,
                    rounding,
                })?;
                ("conv2d", Kernel::Conv2d(k), vec![input], output, [Some(filter), bias].into_iter().flatten().collect())
            }
            OpDesc::DepthwiseConv2d { input, filter, bias, output, window, depth_multiplier, activation } => {
                let rounding = semantics.conv();
                let (di, s_in, z_in) = act_i8(st, input, "depthwise input")?;
                let is = shape4(di, "depthwise input")?;
                let (dout, s_out, z_out) = act_i8(st, output, "depthwise output")?;
                let os = shape4(dout, "depthwise output")?;
                let fshape = shape4(st.desc(filter)?, "depthwise filter")?;
                if fshape.n != 1 || fshape.c != os.c {
                    return Err(NnFault::invalid(format!("depthwise filter must be [1,kh,kw,{}], is {fshape:?}", os.c)));
                }
                let (f, fscales, fzps) = weights_i8(st, filter, "depthwise filter", os.c, 3)?;
                symmetric(&fzps, "depthwise filter")?;
                let (act_min, act_max) = activation_range(activation, s_out, z_out);
                let k = DepthwiseConv2d::new(DepthwiseConv2dSpec {
                    input: is,
                    output: os,
                    window: window_spec(window, fshape.h, fshape.w),
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
                ("depthwise_conv2d", Kernel::DepthwiseConv2d(k), vec![input], output, [Some(filter), bias].into_iter().flatten().collect())
            }
            OpDesc::FullyConnected { input, weights, bias, output, activation } => {
                let rounding = semantics.fully_connected();
                let (di, s_in, z_in) = act_i8(st, input, "fully_connected input")?;
                let in_elems = di.elements();
                let (dout, s_out, z_out) = act_i8(st, output, "fully_connected output")?;
                let out_elems = dout.elements();
                let (units, depth) = match st.desc(weights)?.shape.as_slice() {
                    &[u, d] => (u, d),
                    s => return Err(NnFault::invalid(format!("weights must be [units, depth], are {s:?}"))),
                };
                if depth == 0 || in_elems % depth != 0 || out_elems != (in_elems / depth) * units {
                    return Err(NnFault::invalid(format!("input of {in_elems} and output of {out_elems} values do not fit weights [{units}, {depth}]")));
                }
                let (w, wscales, wzps) = weights_i8(st, weights, "fully_connected weights", units, 0)?;
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
                })?;
                ("fully_connected", Kernel::FullyConnected(k), vec![input], output, [Some(weights), bias].into_iter().flatten().collect())
            }
            OpDesc::AveragePool2d(p) | OpDesc::MaxPool2d(p) => {
                let avg = matches!(op, OpDesc::AveragePool2d(_));
                let name = if avg { "average_pool2d" } else { "max_pool2d" };
                let (di, s_in, z_in) = act_i8(st, p.input, "pool input")?;
                let is = shape4(di, "pool input")?;
                let (dout, s_out, z_out) = act_i8(st, p.output, "pool output")?;
                let os = shape4(dout, "pool output")?;
                if s_in != s_out || z_in != z_out {
                    return Err(NnFault::invalid("pooling input and output must share quantization"));
                }
                let (act_min, act_max) = activation_range(p.activation, s_out, z_out);
                let k = Pool2d::new(name, is, os, window_spec(p.window, p.filter_h as usize, p.filter_w as usize), act_min, act_max)?;
                (name, if avg { Kernel::AveragePool2d(k) } else { Kernel::MaxPool2d(k) }, vec![p.input], p.output, vec![])
            }
            OpDesc::Add { a, b, output, activation } => {
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
                })?;
                ("add", Kernel::Add(k), vec![a, b], output, vec![])
            }
            OpDesc::Softmax { input, output, beta } => {
                let (di, s_in, _) = act_i8(st, input, "softmax input")?;
                let (dout, s_out, z_out) = act_i8(st, output, "softmax output")?;
                if di.shape != dout.shape {
                    return Err(NnFault::invalid(format!("softmax shapes differ: {:?} vs {:?}", di.shape, dout.shape)));
                }
                if s_out != 1.0 / 256.0 || z_out != -128 {
                    return Err(NnFault::invalid("softmax output must have scale 1/256 and zero point -128"));
                }
                let depth = *di.shape.last().ok_or_else(|| NnFault::invalid("softmax of a scalar"))?;
                let outer = if depth == 0 { 0 } else { di.elements() / depth };
                ("softmax", Kernel::Softmax(Softmax::new(outer, depth, s_in, beta, s_out, z_out)?), vec![input], output, vec![])
            }
            OpDesc::Reshape { input, output } => {
                let (di, dout) = (st.desc(input)?, st.desc(output)?);
                if di.dtype != dout.dtype || di.byte_len()? != dout.byte_len()? {
                    return Err(NnFault::invalid(format!("reshape from {:?} {:?} to {:?} {:?} changes size or type", di.dtype, di.shape, dout.dtype, dout.shape)));
                }
                ("reshape", Kernel::Copy, vec![input], output, vec![])
            }
        };
        let weight_bytes = match &kernel {
            Kernel::Conv2d(k) => k.filter.len() + 4 * k.bias.len() + 8 * k.requant.len(),
            Kernel::DepthwiseConv2d(k) => k.filter.len() + 4 * k.bias.len() + 8 * k.requant.len(),
            Kernel::FullyConnected(k) => k.weights.len() + 4 * k.bias.len() + 8 * k.requant.len(),
            Kernel::Softmax(_) => 1024,
            _ => 0,
        } as u64;
        let charged = weight_bytes + OP_OVERHEAD;
        let mut spans = [st.span(output)?; 2];
        for (i, key) in inputs.iter().enumerate() {
            spans[i] = st.span(*key)?;
        }
        let out_span = st.span(output)?;
        let aliasing_reshape = matches!(kernel, Kernel::Copy) && spans[0] == out_span;
        if !aliasing_reshape && spans[..inputs.len()].iter().any(|s| s.overlaps(&out_span)) {
            return Err(NnFault::invalid(format!("{name}: the output overlaps an input")));
        }
        st.charge(charged, name)?;
        // Hold activations (constants are already copied; holding them is not needed).
        held.clear();
        held.extend(inputs.iter().copied());
        held.push(output);
        for k in &held {
            st.retain(*k)?;
        }
        Ok(PreparedOp { name, kernel, inputs: spans, output: out_span, held, charged })
    }

    /// Run on the store's current activations.
    pub fn run(&self, st: &mut TensorStore, ks: &KernelSet) -> Result<(), NnFault> {
        let [a, b] = self.inputs;
        let o = self.output;
        let r = match &self.kernel {
            Kernel::Conv2d(k) => st.with_operands([a], o, |[i], out| (ks.conv2d)(k, i, out))?,
            Kernel::DepthwiseConv2d(k) => st.with_operands([a], o, |[i], out| (ks.depthwise_conv2d)(k, i, out))?,
            Kernel::FullyConnected(k) => st.with_operands([a], o, |[i], out| (ks.fully_connected)(k, i, out))?,
            Kernel::AveragePool2d(k) => st.with_operands([a], o, |[i], out| (ks.average_pool2d)(k, i, out))?,
            Kernel::MaxPool2d(k) => st.with_operands([a], o, |[i], out| (ks.max_pool2d)(k, i, out))?,
            Kernel::Add(k) => st.with_operands([a, b], o, |[x, y], out| (ks.add)(k, x, y, out))?,
            Kernel::Softmax(k) => st.with_operands([a], o, |[i], out| (ks.softmax)(k, i, out))?,
            Kernel::Copy if a == o => Ok(()),
            Kernel::Copy => st.with_operands([a], o, |[i], out| {
                out.copy_from_slice(i);
                Ok::<(), KernelError>(())
            })?,
        };
        r.map_err(NnFault::from)
    }

    /// Give back the operands and the quota.
    pub fn release(self, st: &mut TensorStore) {
        for k in self.held {
            st.release(k);
        }
        st.uncharge(self.charged);
    }
}
