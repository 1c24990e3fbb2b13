//! AVERAGE_POOL_2D and MAX_POOL_2D: int8, input and output quantized alike.

use gatehouse_kernels::{Activation, KernelSet, Pool2d, activation_range};

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
    if average {
        cx.fixed_point("average_pool2d")?;
    }
    let name = if average {
        "average_pool2d"
    } else {
        "max_pool2d"
    };
    let (di, s_in, z_in) = act_i8(cx.st, p.input, "pool input")?;
    let is = shape4(di, "pool input")?;
    let (dout, s_out, z_out) = act_i8(cx.st, p.output, "pool output")?;
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
    Ok(Built::new(
        name,
        Kernel { pool: k, average },
        vec![p.input],
        p.output,
    ))
}

struct Kernel {
    pool: Pool2d,
    average: bool,
}

impl Eval for Kernel {
    fn eval(&self, ks: &KernelSet, io: Operands<'_>) -> Result<(), NnFault> {
        let run = if self.average {
            ks.average_pool2d
        } else {
            ks.max_pool2d
        };
        io.one(|i, out| run(&self.pool, i, out))
    }

    fn window_work(&self) -> u64 {
        self.pool.macs()
    }
}
