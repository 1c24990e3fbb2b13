//! AVERAGE_POOL_2D and MAX_POOL_2D: int8, input and output quantized alike;
//! under onnxruntime's semantics, its QLinearAveragePool, which requantizes.

use gatehouse_kernels::elementwise::Qp;
use gatehouse_kernels::pooling::{AveragePoolOnnxruntime, average_pool2d_onnxruntime};
use gatehouse_kernels::reduce::{Mean, mean_scalar};
use gatehouse_kernels::{Activation, KernelSet, Pool2d, Rounding, activation_range};

use super::operand::{WindowArgs, act_i8, shape4, window_spec};
use super::{Built, Eval, Operands, Operator, Prep};
use crate::NnFault;
use crate::tensor::TensorKey;

/// A pooling window over an NHWC tensor.
#[derive(Clone, Copy, Debug)]
pub struct PoolArgs {
    pub input: TensorKey,
    pub output: TensorKey,
    pub filter_h: u32,
    pub filter_w: u32,
    pub window: WindowArgs,
    pub activation: Activation,
}

/// The mean of each window.
#[derive(Clone, Copy, Debug)]
pub struct AveragePool2d(pub PoolArgs);

/// The largest value of each window.
#[derive(Clone, Copy, Debug)]
pub struct MaxPool2d(pub PoolArgs);

impl Operator for AveragePool2d {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        prepare(&self.0, cx, true)
    }
}

impl Operator for MaxPool2d {
    fn prepare(&self, cx: &mut Prep<'_>) -> Result<Built, NnFault> {
        prepare(&self.0, cx, false)
    }
}

fn prepare(p: &PoolArgs, cx: &mut Prep<'_>, average: bool) -> Result<Built, NnFault> {
    let name = if average {
        "average_pool2d"
    } else {
        "max_pool2d"
    };
    let (di, s_in, z_in) = act_i8(cx.st, p.input, "pool input")?;
    let is = shape4(di, "pool input")?;
    let (dout, s_out, z_out) = act_i8(cx.st, p.output, "pool output")?;
    let os = shape4(dout, "pool output")?;
    let onnxruntime = average && cx.semantics.is_onnxruntime();
    // onnxruntime's QLinearAveragePool requantizes; TFLite's pools do not.
    if (s_in != s_out || z_in != z_out) && !onnxruntime {
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
    let (qi, qo) = (
        Qp {
            scale: s_in,
            zero_point: z_in,
        },
        Qp {
            scale: s_out,
            zero_point: z_out,
        },
    );
    let kernel = match (average, onnxruntime) {
        (false, _) => Kernel::Max(k),
        (true, false) => Kernel::Average(k),
        // onnxruntime computes a window over all of an unpadded input as
        // QLinearGlobalAveragePool, whose arithmetic MEAN reproduces.
        (true, true) if k.is_global() => {
            if (act_min, act_max) != (-128, 127) {
                return Err(NnFault::Unsupported(
                    "a fused activation on onnxruntime's average pool".into(),
                ));
            }
            let shape = [is.n, is.h, is.w, is.c];
            Kernel::Global(Mean::new(&shape, &[1, 2], qi, qo, Rounding::Nearest)?)
        }
        (true, true) => Kernel::Float(AveragePoolOnnxruntime::new(k, qi, qo, cx.semantics.uint8())),
    };
    Ok(Built::new(name, kernel, vec![p.input], p.output))
}

enum Kernel {
    Max(Pool2d),
    Average(Pool2d),
    /// onnxruntime's QLinearAveragePool.
    Float(AveragePoolOnnxruntime),
    /// onnxruntime's QLinearGlobalAveragePool.
    Global(Mean),
}

impl Eval for Kernel {
    fn eval(&self, ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        match self {
            Kernel::Max(k) => io.one(|i, out| (ks.max_pool2d)(k, i, out)),
            Kernel::Average(k) => io.one(|i, out| (ks.average_pool2d)(k, i, out)),
            Kernel::Float(k) => io.one(|i, out| average_pool2d_onnxruntime(k, i, out)),
            Kernel::Global(k) => io.one(|i, out| mean_scalar(k, i, out)),
        }
    }

    fn window_work(&self) -> u64 {
        match self {
            Kernel::Max(k) | Kernel::Average(k) => k.macs(),
            Kernel::Float(k) => k.macs(),
            Kernel::Global(_) => 0,
        }
    }
}
