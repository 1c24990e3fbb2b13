//! The host's validation of every `gatehouse:nn` operator: a program of
//! tensor creations, views, writes, drops and operators (prepared and run
//! at once, or recorded in a plan and invoked), as a hostile plugin would
//! send them, with every shape, quantization, window and view made up.
//! Whatever comes, nothing panics, the quota is never overdrawn, and
//! dropping everything gives every byte back.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use gatehouse_kernels::{Activation, KernelSet, Padding, Semantics, dispatch};
use gatehouse_nn::ops::{self, OpDesc, PoolArgs, PreparedOp, UnaryKind, WindowArgs};
use gatehouse_nn::{Budget, DType, Desc, Pace, Plan, Quant, TensorKey, TensorStore};
use libfuzzer_sys::fuzz_target;

const QUOTA: u64 = 1 << 20;

#[derive(Arbitrary, Debug)]
struct Program {
    /// Which of this CPU's kernel sets runs it.
    set: u8,
    /// Whose arithmetic: TFLite's two, onnxruntime's int8 and uint8.
    semantics: u8,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
struct TensorArgs {
    dtype: u8,
    shape: Vec<u16>,
    quant: Option<(Vec<f32>, Vec<i32>, u8)>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Create(TensorArgs),
    View {
        base: u8,
        offset: u32,
        desc: TensorArgs,
    },
    Write {
        t: u8,
        offset: u32,
        data: Vec<u8>,
    },
    Release {
        t: u8,
    },
    Execute(Op),
    Push(Op),
    Run,
    Invoke {
        input: u8,
        output: u8,
        data: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
struct Win {
    same: bool,
    stride: (u8, u8),
    dilation: (u16, u16),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Conv {
        t: [u8; 4],
        bias: bool,
        w: Win,
        act: u8,
    },
    Depthwise {
        t: [u8; 4],
        bias: bool,
        w: Win,
        mult: u8,
        act: u8,
    },
    FullyConnected {
        t: [u8; 4],
        bias: bool,
        act: u8,
    },
    Pool {
        avg: bool,
        t: [u8; 2],
        filter: (u16, u16),
        w: Win,
        act: u8,
    },
    Add {
        t: [u8; 3],
        mul: bool,
        act: u8,
    },
    Softmax {
        t: [u8; 2],
        beta: f32,
    },
    Unary {
        kind: u8,
        t: [u8; 2],
    },
    Reduce {
        max: bool,
        t: [u8; 2],
        axes: Vec<u8>,
        keep: bool,
    },
    Pad {
        t: [u8; 2],
        paddings: Vec<(u16, u16)>,
    },
    Concat {
        inputs: Vec<u8>,
        output: u8,
        axis: u8,
    },
    Slice {
        t: [u8; 2],
        begin: Vec<i32>,
        strides: Vec<i32>,
        counts: Vec<u16>,
    },
    SpaceBatch {
        to_batch: bool,
        t: [u8; 2],
        block: (u16, u16),
        before: (u16, u16),
    },
    LeakyRelu {
        t: [u8; 2],
        alpha: f32,
    },
    Transpose {
        t: [u8; 2],
        perm: Vec<u8>,
    },
    /// Input, output, scale, zero point: the one operator of several outputs.
    DynamicQuantize {
        t: [u8; 4],
    },
    /// Input, output, scale, zero point; per axis or block.
    LinearQuant {
        dequantize: bool,
        t: [u8; 4],
        axis: u8,
        block: u16,
    },
}

fn desc(a: &TensorArgs) -> Desc {
    Desc {
        dtype: [DType::I8, DType::U8, DType::I32, DType::F32][a.dtype as usize % 4],
        shape: a.shape.iter().take(9).map(|&d| d as usize).collect(),
        quant: a.quant.as_ref().map(|(s, z, axis)| Quant {
            scales: s.iter().take(64).copied().collect(),
            zero_points: z.iter().take(64).copied().collect(),
            axis: *axis as usize,
        }),
    }
}

fn window(w: &Win) -> WindowArgs {
    WindowArgs {
        padding: if w.same {
            Padding::Same
        } else {
            Padding::Valid
        },
        stride_h: w.stride.0 as u32,
        stride_w: w.stride.1 as u32,
        dilation_h: w.dilation.0 as u32,
        dilation_w: w.dilation.1 as u32,
    }
}

fn activation(a: u8) -> Activation {
    [
        Activation::None,
        Activation::Relu,
        Activation::ReluN1To1,
        Activation::Relu6,
    ][a as usize % 4]
}

/// The op over the live tensors (by index, wrapping), or none when there are none.
fn op_desc(op: &Op, live: &[TensorKey]) -> Option<OpDesc> {
    if live.is_empty() {
        return None;
    }
    let k = |i: u8| live[i as usize % live.len()];
    Some(match op {
        Op::Conv { t, bias, w, act } => OpDesc::Conv2d(ops::Conv2d {
            input: k(t[0]),
            filter: k(t[1]),
            bias: bias.then(|| k(t[2])),
            output: k(t[3]),
            window: window(w),
            activation: activation(*act),
        }),
        Op::Depthwise {
            t,
            bias,
            w,
            mult,
            act,
        } => OpDesc::DepthwiseConv2d(ops::DepthwiseConv2d {
            input: k(t[0]),
            filter: k(t[1]),
            bias: bias.then(|| k(t[2])),
            output: k(t[3]),
            window: window(w),
            depth_multiplier: *mult as u32,
            activation: activation(*act),
        }),
        Op::FullyConnected { t, bias, act } => OpDesc::FullyConnected(ops::FullyConnected {
            input: k(t[0]),
            weights: k(t[1]),
            bias: bias.then(|| k(t[2])),
            output: k(t[3]),
            activation: activation(*act),
        }),
        Op::Pool {
            avg,
            t,
            filter,
            w,
            act,
        } => {
            let p = PoolArgs {
                input: k(t[0]),
                output: k(t[1]),
                filter_h: filter.0 as u32,
                filter_w: filter.1 as u32,
                window: window(w),
                activation: activation(*act),
            };
            if *avg {
                OpDesc::AveragePool2d(ops::AveragePool2d(p))
            } else {
                OpDesc::MaxPool2d(ops::MaxPool2d(p))
            }
        }
        Op::Add { t, mul, act } => {
            let (a, b, output, activation) = (k(t[0]), k(t[1]), k(t[2]), activation(*act));
            if *mul {
                OpDesc::Mul(ops::Mul {
                    a,
                    b,
                    output,
                    activation,
                })
            } else {
                OpDesc::Add(ops::Add {
                    a,
                    b,
                    output,
                    activation,
                })
            }
        }
        Op::Softmax { t, beta } => OpDesc::Softmax(ops::Softmax {
            input: k(t[0]),
            output: k(t[1]),
            beta: *beta,
        }),
        Op::Unary { kind, t } => OpDesc::Unary(ops::Unary {
            kind: [
                UnaryKind::Logistic,
                UnaryKind::Tanh,
                UnaryKind::HardSwish,
                UnaryKind::Relu,
                UnaryKind::Relu6,
                UnaryKind::ReluN1To1,
                UnaryKind::Quantize,
                UnaryKind::Dequantize,
                UnaryKind::Reshape,
            ][*kind as usize % 9],
            input: k(t[0]),
            output: k(t[1]),
        }),
        Op::Reduce { max, t, axes, keep } => {
            let axes = axes.iter().take(8).map(|&a| a as usize).collect();
            if *max {
                OpDesc::ReduceMax(ops::ReduceMax {
                    input: k(t[0]),
                    output: k(t[1]),
                    axes,
                })
            } else {
                OpDesc::Mean(ops::Mean {
                    input: k(t[0]),
                    output: k(t[1]),
                    axes,
                    keep_dims: *keep,
                })
            }
        }
        Op::Pad { t, paddings } => OpDesc::Pad(ops::Pad {
            input: k(t[0]),
            output: k(t[1]),
            paddings: paddings
                .iter()
                .take(9)
                .map(|&(b, a)| (b as usize, a as usize))
                .collect(),
        }),
        Op::Concat {
            inputs,
            output,
            axis,
        } => OpDesc::Concatenation(ops::Concatenation {
            inputs: inputs.iter().take(40).map(|&i| k(i)).collect(),
            output: k(*output),
            axis: *axis as usize,
        }),
        Op::Slice {
            t,
            begin,
            strides,
            counts,
        } => OpDesc::StridedSlice(ops::StridedSlice {
            input: k(t[0]),
            output: k(t[1]),
            begin: begin.iter().take(9).map(|&v| v as i64).collect(),
            strides: strides.iter().take(9).map(|&v| v as i64).collect(),
            counts: counts.iter().take(9).map(|&v| v as usize).collect(),
        }),
        Op::SpaceBatch {
            to_batch,
            t,
            block,
            before,
        } => {
            let (input, output) = (k(t[0]), k(t[1]));
            let block = [block.0 as usize, block.1 as usize];
            let before = [before.0 as usize, before.1 as usize];
            if *to_batch {
                OpDesc::SpaceToBatch(ops::SpaceToBatch {
                    input,
                    output,
                    block,
                    before,
                })
            } else {
                OpDesc::BatchToSpace(ops::BatchToSpace {
                    input,
                    output,
                    block,
                    before,
                })
            }
        }
        Op::LeakyRelu { t, alpha } => OpDesc::LeakyRelu(ops::LeakyRelu {
            input: k(t[0]),
            output: k(t[1]),
            alpha: *alpha,
        }),
        Op::Transpose { t, perm } => OpDesc::Transpose(ops::Transpose {
            input: k(t[0]),
            output: k(t[1]),
            perm: perm.iter().take(9).map(|&a| a as usize).collect(),
        }),
        Op::DynamicQuantize { t } => OpDesc::DynamicQuantize(ops::DynamicQuantize {
            input: k(t[0]),
            output: k(t[1]),
            scale: k(t[2]),
            zero_point: k(t[3]),
        }),
        Op::LinearQuant {
            dequantize,
            t,
            axis,
            block,
        } => OpDesc::LinearQuant(ops::LinearQuant {
            direction: if *dequantize {
                ops::Direction::Dequantize
            } else {
                ops::Direction::Quantize
            },
            input: k(t[0]),
            output: k(t[1]),
            scale: k(t[2]),
            zero_point: k(t[3]),
            axis: *axis as usize,
            block: *block as usize,
        }),
    })
}

fn paces() -> &'static Vec<(&'static KernelSet, Pace)> {
    static PACES: OnceLock<Vec<(&'static KernelSet, Pace)>> = OnceLock::new();
    PACES.get_or_init(|| {
        dispatch::available()
            .map(|ks| (ks, Pace::measure(ks)))
            .collect()
    })
}

fuzz_target!(|p: Program| {
    let sets = paces();
    let (ks, pace) = sets[p.set as usize % sets.len()];
    let semantics = [
        Semantics::TfliteReference,
        Semantics::TfliteMicro,
        Semantics::Onnxruntime,
        Semantics::OnnxruntimeUint8,
    ][p.semantics as usize % 4];
    let mut st = TensorStore::new(QUOTA);
    let mut live: Vec<TensorKey> = Vec::new();
    let mut plan = Plan::new(semantics);
    // A short deadline keeps each run quick; the budget refuses what will not fit.
    let budget = || Budget::until(Some(Instant::now() + Duration::from_millis(20)), pace);
    for step in p.steps.iter().take(64) {
        match step {
            Step::Create(a) => {
                if let Ok(key) = st.create(desc(a)) {
                    live.push(key);
                }
            }
            Step::View {
                base,
                offset,
                desc: a,
            } if !live.is_empty() => {
                let base = live[*base as usize % live.len()];
                if let Ok(key) = st.view(base, *offset as u64, desc(a)) {
                    live.push(key);
                }
            }
            Step::Write { t, offset, data } if !live.is_empty() => {
                let _ = st.write(live[*t as usize % live.len()], *offset as u64, data);
            }
            Step::Release { t } if !live.is_empty() => {
                let key = live.swap_remove(*t as usize % live.len());
                st.release(key);
            }
            Step::Execute(op) => {
                if let Some(d) = op_desc(op, &live) {
                    if let Ok(prepared) = PreparedOp::prepare(&d, &mut st, semantics, ks) {
                        if budget().admit(prepared.work(), || "op".into()).is_ok() {
                            let _ = prepared.run(&mut st, ks);
                        }
                        prepared.release(&mut st);
                    }
                }
            }
            Step::Push(op) => {
                if let Some(d) = op_desc(op, &live) {
                    let _ = plan.push(&d, &mut st, ks);
                }
            }
            Step::Run => {
                let _ = plan.run(&mut st, ks, &mut budget());
            }
            Step::Invoke {
                input,
                output,
                data,
            } if !live.is_empty() => {
                let (i, o) = (
                    live[*input as usize % live.len()],
                    live[*output as usize % live.len()],
                );
                let _ = plan.run_batch(&mut st, ks, &mut budget(), i, o, data);
            }
            _ => {}
        }
        assert!(st.used() <= QUOTA, "the quota was overdrawn: {}", st.used());
    }
    plan.release(&mut st);
    for key in live {
        st.release(key);
    }
    assert_eq!(
        st.used(),
        0,
        "dropping everything must give every byte back"
    );
});
