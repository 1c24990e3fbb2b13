//! onnxruntime's fused integer kernels, byte for byte: the cases of
//! `tests/fixtures/onnxruntime/qlinear.json` (QLinearConv with int8 or with
//! uint8 activations and asymmetric uint8 filters, QLinearMatMul, QLinearAdd,
//! QLinearMul, QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax, QLinearAveragePool, QLinearConcat,
//! QLinearMatMul of two activations, QuantizeLinear and DequantizeLinear per axis and per block,
//! QuantizeLinear, DynamicQuantizeLinear and QLinearGlobalAveragePool run by onnxruntime 1.32's
//! optimized CPU session, with uint8 cases of QLinearAdd, QLinearMul and
//! QLinearAveragePool too; its `make.py` says how) on the host operators under
//! [`Semantics::Onnxruntime`] (uint8 cases shifted to int8, under
//! [`Semantics::OnnxruntimeUint8`]), on every kernel set of this CPU.
//!
//! ONNX's explicit pads become a PAD with the input's zero point and a
//! VALID window, as a loader lowers them: padding with the zero point adds
//! nothing to an accumulator, so the bits are the same.

use gatehouse_kernels::{Activation, Padding, Semantics, dispatch};
use serde_json::Value;

use super::*;
use crate::budget::Budget;
use crate::plan::Plan;
use crate::tensor::{DType, Desc, Quant, TensorKey, TensorStore};

const CASES: &str = include_str!("../../../../tests/fixtures/onnxruntime/qlinear.json");

fn ints(v: &Value) -> Vec<i64> {
    match v {
        Value::Array(a) => a.iter().flat_map(ints).collect(),
        Value::Number(n) => vec![n.as_i64().expect("an integer")],
        other => panic!("not a number: {other}"),
    }
}

fn floats(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().expect("a number") as f32],
        other => panic!("not a number: {other}"),
    }
}

/// Dimensions of a nested JSON array.
fn shape(v: &Value) -> Vec<usize> {
    let mut dims = vec![];
    let mut at = v;
    while let Value::Array(a) = at {
        dims.push(a.len());
        at = &a[0];
    }
    dims
}

fn f(v: &Value) -> f32 {
    v.as_f64().expect("a number") as f32
}

fn int8(shape: &[usize], scales: Vec<f32>, zero_point: i32, axis: usize) -> Desc {
    let zero_points = vec![zero_point; scales.len()];
    Desc {
        dtype: DType::I8,
        shape: shape.to_vec(),
        quant: Some(Quant {
            scales,
            zero_points,
            axis,
        }),
    }
}

fn tensor(st: &mut TensorStore, desc: Desc, data: &[u8]) -> TensorKey {
    let t = st.create(desc).expect("fits");
    st.write(t, 0, data).expect("fits");
    t
}

fn bytes_i8(v: &[i64]) -> Vec<u8> {
    v.iter().map(|&x| x as i8 as u8).collect()
}

/// NCHW (or OIHW) to NHWC (OHWI).
fn to_nhwc(v: &[i64], [_, c, h, w]: [usize; 4]) -> Vec<i64> {
    let mut out = vec![0; v.len()];
    for (i, &x) in v.iter().enumerate() {
        let (b, ch, y, xx) = (i / (c * h * w), i / (h * w) % c, i / w % h, i % w);
        out[((b * h + y) * w + xx) * c + ch] = x;
    }
    out
}

/// Records `ops` (built against `st`) as one plan and runs it on `ks`.
fn run(st: &mut TensorStore, ops: &[OpDesc], ks: &KernelSet) {
    run_under(Semantics::Onnxruntime, st, ops, ks)
}

/// A case's element type: uint8 ones (`"unsigned"`) reach the host as int8
/// by shifting every value and zero point by 128 (exact), as the ONNX
/// loader does, and run under onnxruntime's uint8 semantics.
fn form(c: &Value) -> (Semantics, i64) {
    if c["unsigned"].as_bool().unwrap_or(false) {
        (Semantics::OnnxruntimeUint8, 128)
    } else {
        (Semantics::Onnxruntime, 0)
    }
}

fn run_under(semantics: Semantics, st: &mut TensorStore, ops: &[OpDesc], ks: &KernelSet) {
    let mut plan = Plan::new(semantics);
    for op in ops {
        plan.push(op, st, ks).expect("prepares");
    }
    plan.run(st, ks, &mut Budget::unlimited()).expect("runs");
    plan.release(st);
}

fn read_i8(st: &TensorStore, t: TensorKey) -> Vec<i8> {
    st.bytes(t)
        .expect("live")
        .iter()
        .map(|&b| b as i8)
        .collect()
}

fn conv(c: &Value, ks: &KernelSet) -> (Vec<i8>, Vec<i8>) {
    let mut st = TensorStore::new(1 << 26);
    let [n, ic, h, w]: [usize; 4] = shape(&c["x"]).try_into().expect("NCHW");
    let [oc, icg, kh, kw]: [usize; 4] = shape(&c["w"]).try_into().expect("OIHW");
    let (stride, pads, dil) = (ints(&c["strides"]), ints(&c["pads"]), ints(&c["dilations"]));
    let group = c["group"].as_u64().expect("group") as usize;
    let (semantics, shift) = form(c);
    let zp = |k: &str| (c[k].as_i64().unwrap_or(0) - shift) as i32;
    let (xs, xz) = (f(&c["x_scale"]), zp("x_zero_point"));
    let (ys, yz) = (f(&c["y_scale"]), zp("y_zero_point"));
    let wz = zp("w_zero_point");
    let shifted = |v: &Value| -> Vec<i64> { ints(v).iter().map(|&x| x - shift).collect() };
    let x = to_nhwc(&shifted(&c["x"]), [n, ic, h, w]);
    let input = tensor(
        &mut st,
        int8(&[n, h, w, ic], vec![xs], xz, 0),
        &bytes_i8(&x),
    );
    let [top, left, bottom, right] = [0, 1, 2, 3].map(|i| pads[i] as usize);
    let (ph, pw) = (h + top + bottom, w + left + right);
    let padded = st
        .create(int8(&[n, ph, pw, ic], vec![xs], xz, 0))
        .expect("fits");
    let mut ops = vec![OpDesc::from(Pad {
        input,
        output: padded,
        paddings: vec![(0, 0), (top, bottom), (left, right), (0, 0)],
    })];
    let window = WindowArgs {
        padding: Padding::Valid,
        stride_h: stride[0] as u32,
        stride_w: stride[1] as u32,
        dilation_h: dil[0] as u32,
        dilation_w: dil[1] as u32,
    };
    let out_dim =
        |size: usize, k: usize, s: i64, d: i64| (size - (k - 1) * d as usize - 1) / s as usize + 1;
    let (oh, ow) = (
        out_dim(ph, kh, stride[0], dil[0]),
        out_dim(pw, kw, stride[1], dil[1]),
    );
    let output = st
        .create(int8(&[n, oh, ow, oc], vec![ys], yz, 0))
        .expect("fits");
    let bias: Vec<u8> = ints(&c["bias"])
        .iter()
        .flat_map(|&b| (b as i32).to_le_bytes())
        .collect();
    let bias = tensor(
        &mut st,
        Desc {
            dtype: DType::I32,
            shape: vec![oc],
            quant: None,
        },
        &bias,
    );
    let w_ohwi = to_nhwc(&shifted(&c["w"]), [oc, icg, kh, kw]);
    let scales = floats(&c["w_scales"]);
    // As the loader lowers it: an asymmetric depthwise filter runs as a
    // grouped convolution.
    if !(icg == 1 && group == ic && wz == 0) {
        let filter = tensor(
            &mut st,
            int8(&[oc, kh, kw, icg], scales, wz, 0),
            &bytes_i8(&w_ohwi),
        );
        ops.push(OpDesc::from(Conv2d {
            input: padded,
            filter,
            bias: Some(bias),
            output,
            window,
            activation: Activation::None,
        }));
    } else {
        // [oc, kh, kw, 1] is [1, kh, kw, oc] read in another order.
        let mut f = vec![0; oc * kh * kw];
        for (i, &v) in w_ohwi.iter().enumerate() {
            let (o, tap) = (i / (kh * kw), i % (kh * kw));
            f[tap * oc + o] = v;
        }
        let filter = tensor(&mut st, int8(&[1, kh, kw, oc], scales, 0, 3), &bytes_i8(&f));
        ops.push(OpDesc::from(DepthwiseConv2d {
            input: padded,
            filter,
            bias: Some(bias),
            output,
            window,
            depth_multiplier: (oc / ic) as u32,
            activation: Activation::None,
        }));
    }
    run_under(semantics, &mut st, &ops, ks);
    let got = read_i8(&st, output);
    let want = to_nhwc(&shifted(&c["y"]), [n, oc, oh, ow])
        .iter()
        .map(|&v| v as i8)
        .collect();
    (got, want)
}

/// QLinearAdd or QLinearMul, either operand broadcast: two int8 operands,
/// `op` building the operator from a, b and the output.
fn binary(
    c: &Value,
    ks: &KernelSet,
    op: fn(TensorKey, TensorKey, TensorKey) -> OpDesc,
) -> (Vec<i8>, Vec<i8>) {
    binary_under(form(c).0, c, ks, op)
}

fn binary_under(
    semantics: Semantics,
    c: &Value,
    ks: &KernelSet,
    op: fn(TensorKey, TensorKey, TensorKey) -> OpDesc,
) -> (Vec<i8>, Vec<i8>) {
    let mut st = TensorStore::new(1 << 24);
    let shift = form(c).1;
    let zp = |k: &str| (c[k].as_i64().expect("zp") - shift) as i32;
    let shifted = |v: &Value| -> Vec<i64> { ints(v).iter().map(|&x| x - shift).collect() };
    let mut operand = |v: &str, s: &str, z: &str| {
        let desc = int8(&shape(&c[v]), vec![f(&c[s])], zp(z), 0);
        tensor(&mut st, desc, &bytes_i8(&shifted(&c[v])))
    };
    let (a, b) = (
        operand("a", "a_scale", "a_zero_point"),
        operand("b", "b_scale", "b_zero_point"),
    );
    // As the ONNX loader passes them: B first where A is the scalar of
    // onnxruntime's spans (the innermost output dimension longer than 1
    // is one A broadcasts along). A product is the same either way.
    let (ad, yd) = (shape(&c["a"]), shape(&c["y"]));
    let ad = [vec![1; yd.len() - ad.len()], ad].concat();
    let swap = ad
        .iter()
        .zip(&yd)
        .rev()
        .find(|&(_, &o)| o > 1)
        .is_some_and(|(&a, _)| a == 1);
    let (a, b) = if swap { (b, a) } else { (a, b) };
    let desc = int8(
        &shape(&c["y"]),
        vec![f(&c["y_scale"])],
        zp("y_zero_point"),
        0,
    );
    let output = st.create(desc).expect("fits");
    run_under(semantics, &mut st, &[op(a, b, output)], ks);
    let want = shifted(&c["y"]).iter().map(|&v| v as i8).collect();
    (read_i8(&st, output), want)
}

fn add(a: TensorKey, b: TensorKey, output: TensorKey) -> OpDesc {
    OpDesc::from(Add {
        a,
        b,
        output,
        activation: Activation::None,
    })
}

fn mul(a: TensorKey, b: TensorKey, output: TensorKey) -> OpDesc {
    OpDesc::from(Mul {
        a,
        b,
        output,
        activation: Activation::None,
    })
}

/// QLinearSigmoid: LOGISTIC on a flat tensor.
fn sigmoid(c: &Value, ks: &KernelSet) -> (Vec<i8>, Vec<i8>) {
    lookup(c, ks, |input, output| {
        OpDesc::from(Unary {
            kind: UnaryKind::Logistic,
            input,
            output,
        })
    })
}

/// QLinearLeakyRelu on a flat tensor.
fn leaky_relu(c: &Value, ks: &KernelSet) -> (Vec<i8>, Vec<i8>) {
    let alpha = f(&c["alpha"]);
    lookup(c, ks, |input, output| {
        OpDesc::from(LeakyRelu {
            input,
            output,
            alpha,
        })
    })
}

/// An operator of one flat input and output quantized apart: a table.
fn lookup(
    c: &Value,
    ks: &KernelSet,
    op: impl Fn(TensorKey, TensorKey) -> OpDesc,
) -> (Vec<i8>, Vec<i8>) {
    let mut st = TensorStore::new(1 << 20);
    let (semantics, shift) = form(c);
    let zp = |k: &str| (c[k].as_i64().expect("zp") - shift) as i32;
    let shifted = |v: &Value| -> Vec<i64> { ints(v).iter().map(|&x| x - shift).collect() };
    let x = shifted(&c["x"]);
    let input = tensor(
        &mut st,
        int8(&[x.len()], vec![f(&c["x_scale"])], zp("x_zero_point"), 0),
        &bytes_i8(&x),
    );
    let output = st
        .create(int8(
            &[x.len()],
            vec![f(&c["y_scale"])],
            zp("y_zero_point"),
            0,
        ))
        .expect("fits");
    run_under(semantics, &mut st, &[op(input, output)], ks);
    (
        read_i8(&st, output),
        shifted(&c["y"]).iter().map(|&v| v as i8).collect(),
    )
}

/// QLinearSoftmax over the last axis, or over a 4-D tensor's channels,
/// which are the NHWC tensor's last.
fn softmax(c: &Value, ks: &KernelSet) -> (Vec<i8>, Vec<i8>) {
    let mut st = TensorStore::new(1 << 20);
    let zp = |k: &str| c[k].as_i64().expect("zp") as i32;
    let dims = shape(&c["x"]);
    let (x, y, host) = match <[usize; 4]>::try_from(dims.clone()) {
        Ok(d) => (
            to_nhwc(&ints(&c["x"]), d),
            to_nhwc(&ints(&c["y"]), d),
            vec![d[0], d[2], d[3], d[1]],
        ),
        Err(_) => (ints(&c["x"]), ints(&c["y"]), dims),
    };
    let input = tensor(
        &mut st,
        int8(&host, vec![f(&c["x_scale"])], zp("x_zero_point"), 0),
        &bytes_i8(&x),
    );
    let output = st
        .create(int8(&host, vec![f(&c["y_scale"])], zp("y_zero_point"), 0))
        .expect("fits");
    let op = OpDesc::from(Softmax {
        input,
        output,
        beta: 1.0,
    });
    run(&mut st, &[op], ks);
    (read_i8(&st, output), y.iter().map(|&v| v as i8).collect())
}

/// QLinearAveragePool: AVERAGE_POOL_2D on the NHWC tensor, SAME_UPPER being
/// TFLite's SAME.
fn avgpool(c: &Value, ks: &KernelSet) -> (Vec<i8>, Vec<i8>) {
    avgpool_under(form(c).0, c, ks)
}

fn avgpool_under(semantics: Semantics, c: &Value, ks: &KernelSet) -> (Vec<i8>, Vec<i8>) {
    let mut st = TensorStore::new(1 << 20);
    let shift = form(c).1;
    let zp = |k: &str| (c[k].as_i64().expect("zp") - shift) as i32;
    let shifted = |v: &Value| -> Vec<i64> { ints(v).iter().map(|&x| x - shift).collect() };
    let [n, ch, h, w]: [usize; 4] = shape(&c["x"]).try_into().expect("NCHW");
    let [_, _, oh, ow]: [usize; 4] = shape(&c["y"]).try_into().expect("NCHW");
    let (kernel, strides) = (ints(&c["kernel"]), ints(&c["strides"]));
    let input = tensor(
        &mut st,
        int8(
            &[n, h, w, ch],
            vec![f(&c["x_scale"])],
            zp("x_zero_point"),
            0,
        ),
        &bytes_i8(&to_nhwc(&shifted(&c["x"]), [n, ch, h, w])),
    );
    let output = st
        .create(int8(
            &[n, oh, ow, ch],
            vec![f(&c["y_scale"])],
            zp("y_zero_point"),
            0,
        ))
        .expect("fits");
    let padding = match c["auto_pad"].as_str() {
        Some("SAME_UPPER") => Padding::Same,
        Some("VALID") => Padding::Valid,
        other => panic!("auto_pad {other:?}"),
    };
    let op = OpDesc::from(AveragePool2d(PoolArgs {
        input,
        output,
        filter_h: kernel[0] as u32,
        filter_w: kernel[1] as u32,
        window: WindowArgs {
            padding,
            stride_h: strides[0] as u32,
            stride_w: strides[1] as u32,
            dilation_h: 1,
            dilation_w: 1,
        },
        activation: Activation::None,
    }));
    run_under(semantics, &mut st, &[op], ks);
    let want = to_nhwc(&shifted(&c["y"]), [n, ch, oh, ow]);
    (
        read_i8(&st, output),
        want.iter().map(|&v| v as i8).collect(),
    )
}

/// QLinearConcat: CONCATENATION of NHWC tensors along the NCHW axis moved.
fn concat(c: &Value, ks: &KernelSet) -> (Vec<i8>, Vec<i8>) {
    let mut st = TensorStore::new(1 << 20);
    let nhwc = |d: [usize; 4]| [d[0], d[2], d[3], d[1]];
    let mut inputs = vec![];
    for x in c["inputs"].as_array().expect("inputs") {
        let d: [usize; 4] = shape(&x["x"]).try_into().expect("NCHW");
        let zp = x["zero_point"].as_i64().expect("zp") as i32;
        let desc = int8(&nhwc(d), vec![f(&x["scale"])], zp, 0);
        inputs.push(tensor(
            &mut st,
            desc,
            &bytes_i8(&to_nhwc(&ints(&x["x"]), d)),
        ));
    }
    let d: [usize; 4] = shape(&c["y"]).try_into().expect("NCHW");
    let yz = c["y_zero_point"].as_i64().expect("zp") as i32;
    let output = st
        .create(int8(&nhwc(d), vec![f(&c["y_scale"])], yz, 0))
        .expect("fits");
    let axis = [0, 3, 1, 2][c["axis"].as_u64().expect("axis") as usize];
    let op = OpDesc::from(Concatenation {
        inputs,
        output,
        axis,
    });
    run(&mut st, &[op], ks);
    let want = to_nhwc(&ints(&c["y"]), d);
    (
        read_i8(&st, output),
        want.iter().map(|&v| v as i8).collect(),
    )
}

fn matmul(c: &Value, ks: &KernelSet) -> (Vec<i8>, Vec<i8>) {
    let mut st = TensorStore::new(1 << 24);
    let [rows, depth]: [usize; 2] = shape(&c["a"]).try_into().expect("2-D");
    let units = shape(&c["b"])[1];
    let (az, yz) = (
        c["a_zero_point"].as_i64().expect("zp") as i32,
        c["y_zero_point"].as_i64().expect("zp") as i32,
    );
    let input = tensor(
        &mut st,
        int8(&[rows, depth], vec![f(&c["a_scale"])], az, 0),
        &bytes_i8(&ints(&c["a"])),
    );
    // The weights of a fully connected layer are B transposed: [units, depth].
    let b = ints(&c["b"]);
    let bt: Vec<i64> = (0..units * depth)
        .map(|i| b[(i % depth) * units + i / depth])
        .collect();
    let weights = tensor(
        &mut st,
        int8(&[units, depth], floats(&c["b_scales"]), 0, 0),
        &bytes_i8(&bt),
    );
    let output = st
        .create(int8(&[rows, units], vec![f(&c["y_scale"])], yz, 0))
        .expect("fits");
    let fc = OpDesc::from(FullyConnected {
        input,
        weights,
        bias: None,
        output,
        activation: Activation::None,
    });
    run(&mut st, &[fc], ks);
    (
        read_i8(&st, output),
        ints(&c["y"]).iter().map(|&v| v as i8).collect(),
    )
}

/// A MatMul of two activations (QLinearMatMul): BATCH_MATMUL, uint8 cases
/// shifted to int8.
fn batch_matmul(c: &Value, ks: &KernelSet) -> (Vec<i8>, Vec<i8>) {
    let mut st = TensorStore::new(1 << 20);
    let (semantics, shift) = form(c);
    let zp = |k: &str| (c[k].as_i64().expect("zp") - shift) as i32;
    let mut operand = |k: &str| {
        let v: Vec<i64> = ints(&c[k]).iter().map(|&x| x - shift).collect();
        let desc = int8(
            &shape(&c[k]),
            vec![f(&c[format!("{k}_scale").as_str()])],
            zp(&format!("{k}_zero_point")),
            0,
        );
        tensor(&mut st, desc, &bytes_i8(&v))
    };
    let (lhs, rhs) = (operand("a"), operand("b"));
    let output = st
        .create(int8(
            &shape(&c["y"]),
            vec![f(&c["y_scale"])],
            zp("y_zero_point"),
            0,
        ))
        .expect("fits");
    let op = OpDesc::from(BatchMatMul {
        lhs,
        rhs,
        output,
        adj_x: false,
        adj_y: false,
    });
    run_under(semantics, &mut st, &[op], ks);
    (
        read_i8(&st, output),
        ints(&c["y"]).iter().map(|&v| (v - shift) as i8).collect(),
    )
}

/// QuantizeLinear or DequantizeLinear per axis or block, in the case's
/// own layout (the operator takes any); uint8 shifted to int8. A
/// dequantized case compares the float32 bytes.
fn linear_quant(c: &Value, ks: &KernelSet) -> (Vec<i8>, Vec<i8>) {
    let mut st = TensorStore::new(1 << 20);
    let (semantics, shift) = form(c);
    let dims: Vec<usize> = ints(&c["dims"]).iter().map(|&d| d as usize).collect();
    let pdims: Vec<usize> = ints(&c["param_dims"]).iter().map(|&d| d as usize).collect();
    let desc = |dtype, shape: &[usize]| Desc {
        dtype,
        shape: shape.to_vec(),
        quant: None,
    };
    let le = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    let shifted = |v: &Value| -> Vec<u8> {
        bytes_i8(&ints(v).iter().map(|&x| x - shift).collect::<Vec<_>>())
    };
    let scale = tensor(&mut st, desc(DType::F32, &pdims), &le(&floats(&c["scale"])));
    let zero_point = tensor(&mut st, desc(DType::I8, &pdims), &shifted(&c["zero_point"]));
    let (axis, block) = (
        c["axis"].as_u64().expect("axis") as usize,
        c["block"].as_u64().expect("block") as usize,
    );
    let dequantize = c["dequantize"].as_bool().expect("direction");
    let (direction, input, output) = if dequantize {
        let input = tensor(&mut st, desc(DType::I8, &dims), &shifted(&c["x"]));
        (
            Direction::Dequantize,
            input,
            st.create(desc(DType::F32, &dims)).expect("fits"),
        )
    } else {
        let input = tensor(&mut st, desc(DType::F32, &dims), &le(&floats(&c["x"])));
        (
            Direction::Quantize,
            input,
            st.create(desc(DType::I8, &dims)).expect("fits"),
        )
    };
    let op = OpDesc::from(LinearQuant {
        direction,
        input,
        output,
        scale,
        zero_point,
        axis,
        block,
    });
    run_under(semantics, &mut st, &[op], ks);
    let want: Vec<i8> = if dequantize {
        le(&floats(&c["y"])).iter().map(|&b| b as i8).collect()
    } else {
        ints(&c["y"]).iter().map(|&v| (v - shift) as i8).collect()
    };
    (read_i8(&st, output), want)
}

/// GlobalAveragePool: a MEAN over the spatial axes of the NHWC tensor.
fn mean(c: &Value, ks: &KernelSet) -> (Vec<i8>, Vec<i8>) {
    let mut st = TensorStore::new(1 << 20);
    let [n, ch, h, w]: [usize; 4] = shape(&c["x"]).try_into().expect("NCHW");
    let xz = c["x_zero_point"].as_i64().expect("zp") as i32;
    let yz = c["y_zero_point"].as_i64().expect("zp") as i32;
    let x = to_nhwc(&ints(&c["x"]), [n, ch, h, w]);
    let input = tensor(
        &mut st,
        int8(&[n, h, w, ch], vec![f(&c["x_scale"])], xz, 0),
        &bytes_i8(&x),
    );
    let output = st
        .create(int8(&[n, 1, 1, ch], vec![f(&c["y_scale"])], yz, 0))
        .expect("fits");
    let op = OpDesc::from(Mean {
        input,
        output,
        axes: vec![1, 2],
        keep_dims: true,
    });
    run(&mut st, &[op], ks);
    (
        read_i8(&st, output),
        ints(&c["y"]).iter().map(|&v| v as i8).collect(),
    )
}

fn quantize(c: &Value, ks: &KernelSet) -> (Vec<i8>, Vec<i8>) {
    let mut st = TensorStore::new(1 << 20);
    let x = floats(&c["x"]);
    let input = tensor(
        &mut st,
        Desc {
            dtype: DType::F32,
            shape: vec![x.len()],
            quant: None,
        },
        &x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>(),
    );
    let zp = c["zero_point"].as_i64().expect("zp") as i32;
    let output = st
        .create(int8(&[x.len()], vec![f(&c["scale"])], zp, 0))
        .expect("fits");
    let q = OpDesc::from(Unary {
        kind: UnaryKind::Quantize,
        input,
        output,
    });
    run(&mut st, &[q], ks);
    (
        read_i8(&st, output),
        ints(&c["y"]).iter().map(|&v| v as i8).collect(),
    )
}

/// DynamicQuantizeLinear: its three outputs (y as uint8, the scale's four
/// bytes, the zero point) as one byte string, the host's against the case's.
/// y is held as uint8 here and the zero point as int8 less 128, the two
/// forms the operator takes.
fn dynamic_quantize(c: &Value, ks: &KernelSet) -> (Vec<i8>, Vec<i8>) {
    let mut st = TensorStore::new(1 << 20);
    let x = floats(&c["x"]);
    let n = x.len();
    let desc = |dtype, n| Desc {
        dtype,
        shape: vec![n],
        quant: None,
    };
    let input = tensor(
        &mut st,
        desc(DType::F32, n),
        &x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>(),
    );
    let output = st.create(desc(DType::U8, n)).expect("fits");
    let scale = st.create(desc(DType::F32, 1)).expect("fits");
    let zero_point = st.create(desc(DType::I8, 1)).expect("fits");
    let op = OpDesc::from(DynamicQuantize {
        input,
        output,
        scale,
        zero_point,
    });
    run(&mut st, &[op], ks);
    let mut got = read_i8(&st, output);
    got.extend(read_i8(&st, scale));
    got.extend(read_i8(&st, zero_point).iter().map(|&z| z ^ i8::MIN));
    let mut want: Vec<i8> = ints(&c["y"]).iter().map(|&v| v as u8 as i8).collect();
    want.extend((f(&c["scale"])).to_le_bytes().map(|b| b as i8));
    want.push(c["zero_point"].as_i64().expect("zp") as u8 as i8);
    (got, want)
}

#[test]
fn every_case_is_onnxruntimes_bytes_on_every_kernel_set() {
    let doc: Value = serde_json::from_str(CASES).expect("the fixture is JSON");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 91, "the fixture lost its cases");
    for ks in dispatch::available() {
        for (i, c) in cases.iter().enumerate() {
            let (got, want) = match c["op"].as_str() {
                Some("conv") => conv(c, ks),
                Some("matmul") => matmul(c, ks),
                Some("batch_matmul") => batch_matmul(c, ks),
                Some("linear_quant") => linear_quant(c, ks),
                Some("quantize") => quantize(c, ks),
                Some("dynamic_quantize") => dynamic_quantize(c, ks),
                Some("mean") => mean(c, ks),
                Some("add") => binary(c, ks, add),
                Some("mul") => binary(c, ks, mul),
                Some("sigmoid") => sigmoid(c, ks),
                Some("leaky_relu") => leaky_relu(c, ks),
                Some("softmax") => softmax(c, ks),
                Some("avgpool") => avgpool(c, ks),
                Some("concat") => concat(c, ks),
                other => panic!("case {i}: unknown op {other:?}"),
            };
            assert_eq!(got.len(), want.len(), "case {i} on {}", ks.name);
            let wrong = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(
                wrong,
                0,
                "case {i} ({}) on {}: {wrong} of {} bytes differ",
                c["op"],
                ks.name,
                want.len()
            );
        }
    }
}

/// TFLite's rounding on the same cases differs somewhere: the fixture can
/// tell the two semantics apart, so the test above could fail.
#[test]
fn tflites_rounding_gives_other_bytes_on_these_cases() {
    let doc: Value = serde_json::from_str(CASES).expect("the fixture is JSON");
    let c = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["op"] == "quantize")
        .expect("a quantize case");
    let x = floats(&c["x"]);
    let q = gatehouse_kernels::elementwise::Qp {
        scale: f(&c["scale"]),
        zero_point: c["zero_point"].as_i64().expect("zp") as i32,
    };
    let input: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut tflite = vec![0i8; x.len()];
    gatehouse_kernels::elementwise::quantize_f32(q, &input, &mut tflite).expect("sizes agree");
    let want: Vec<i8> = ints(&c["y"]).iter().map(|&v| v as i8).collect();
    assert_ne!(
        tflite, want,
        "half-away and half-even rounding agree on every tie?"
    );

    // TFLite's LOGISTIC table (`exp`, rounding half away) against
    // QLinearSigmoid's on every int8 value of each sigmoid case.
    let mut differ = 0;
    for c in doc["cases"].as_array().expect("cases") {
        if c["op"] != "sigmoid" {
            continue;
        }
        let q = |s: &str, z: &str| gatehouse_kernels::elementwise::Qp {
            scale: f(&c[s]),
            zero_point: c[z].as_i64().expect("zp") as i32,
        };
        let lut = gatehouse_kernels::elementwise::Lut::logistic(
            q("x_scale", "x_zero_point"),
            q("y_scale", "y_zero_point"),
        );
        let want = ints(&c["y"]);
        differ += ints(&c["x"])
            .iter()
            .zip(&want)
            .filter(|&(&x, &y)| lut.table()[x as i8 as u8 as usize] as i64 != y)
            .count();
    }
    assert!(differ > 0, "TFLite's logistic table is onnxruntime's?");
}

/// The uint8 cases summed, multiplied or averaged on their int8-shifted
/// bytes (under the int8 semantics) give other bytes, so the uint8
/// semantics is needed and its check above could fail.
#[test]
fn uint8_cases_give_other_bytes_computed_on_int8() {
    let doc: Value = serde_json::from_str(CASES).expect("the fixture is JSON");
    let ks = dispatch::by_name("scalar").expect("every build has it");
    let mut differ = std::collections::BTreeMap::new();
    for c in doc["cases"].as_array().expect("cases") {
        if !c["unsigned"].as_bool().unwrap_or(false) {
            continue;
        }
        let int8 = Semantics::Onnxruntime;
        let (got, want) = match c["op"].as_str() {
            Some("add") => binary_under(int8, c, ks, add),
            Some("mul") => binary_under(int8, c, ks, mul),
            Some("avgpool") => avgpool_under(int8, c, ks),
            _ => continue,
        };
        let n = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        *differ.entry(c["op"].as_str().unwrap_or("?")).or_insert(0) += n;
    }
    for op in ["add", "mul", "avgpool"] {
        assert!(differ.get(op).is_some_and(|&n| n > 0), "{op}: {differ:?}");
    }
}

/// LEAKY_RELU is onnxruntime's alone so far: a plan under TFLite's
/// semantics refuses it by name.
#[test]
fn leaky_relu_is_refused_under_tflite() {
    let mut st = TensorStore::new(1 << 16);
    let x = tensor(&mut st, int8(&[4], vec![0.5], 0, 0), &[0; 4]);
    let y = st.create(int8(&[4], vec![0.5], 0, 0)).expect("fits");
    let op = OpDesc::from(LeakyRelu {
        input: x,
        output: y,
        alpha: 0.1,
    });
    let ks = dispatch::by_name("scalar").expect("every build has it");
    for s in [Semantics::TfliteReference, Semantics::TfliteMicro] {
        let e = Plan::new(s).push(&op, &mut st, ks).expect_err("refused");
        assert!(format!("{e}").contains("leaky_relu"), "{e}");
    }
    let mut plan = Plan::new(Semantics::Onnxruntime);
    plan.push(&op, &mut st, ks).expect("onnxruntime's");
    plan.release(&mut st);
}

/// ConvInteger: a conv2d into an int32 tensor gives the exact sums, with
/// a zero point per output channel; only under onnxruntime's semantics,
/// and without a bias.
#[test]
fn an_int32_conv_output_is_the_exact_sums_under_onnxruntime_only() {
    let mut st = TensorStore::new(1 << 20);
    let input = tensor(&mut st, int8(&[1, 1, 2, 2], vec![1.0], 1, 0), &[3, 5, 0, 0]);
    let filter = st
        .create(Desc {
            quant: Some(Quant {
                scales: vec![1.0; 2],
                zero_points: vec![0, 2],
                axis: 0,
            }),
            ..int8(&[2, 1, 1, 2], vec![1.0], 0, 0)
        })
        .expect("fits");
    st.write(filter, 0, &[1, 2, 3, 4]).expect("fits");
    let output = st
        .create(Desc {
            dtype: DType::I32,
            shape: vec![1, 1, 2, 2],
            quant: None,
        })
        .expect("fits");
    let op = |bias| {
        OpDesc::from(Conv2d {
            input,
            filter,
            bias,
            output,
            window: WindowArgs {
                padding: Padding::Valid,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
            },
            activation: Activation::None,
        })
    };
    let ks = dispatch::by_name("scalar").expect("every build has it");
    run(&mut st, &[op(None)], ks);
    let got: Vec<i32> = st
        .bytes(output)
        .expect("live")
        .chunks(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    // x − 1 is (2, 4) then (−1, −1); w − wz is (1, 2) for both channels:
    // 2 + 8 = 10 twice, then −1 − 2 = −3 twice.
    assert_eq!(got, [10, 10, -3, -3]);
    for s in [Semantics::TfliteReference, Semantics::TfliteMicro] {
        let e = Plan::new(s)
            .push(&op(None), &mut st, ks)
            .expect_err("refused");
        assert!(format!("{e}").contains("int32"), "{e}");
    }
    let bias = tensor(
        &mut st,
        Desc {
            dtype: DType::I32,
            shape: vec![2],
            quant: None,
        },
        &[0; 8],
    );
    let e = Plan::new(Semantics::Onnxruntime)
        .push(&op(Some(bias)), &mut st, ks)
        .expect_err("refused");
    assert!(format!("{e}").contains("no bias"), "{e}");
}

/// A filter zero point is onnxruntime's alone: TFLite's int8 conv takes
/// symmetric filters, and a plan under its semantics refuses another; so
/// do two different zero points in one filter under any semantics.
#[test]
fn a_filter_zero_point_is_taken_under_onnxruntime_only() {
    let conv = |st: &mut TensorStore, zero_points: Vec<i32>| {
        let input = tensor(st, int8(&[1, 2, 2, 2], vec![0.5], 0, 0), &[1; 8]);
        let filter = st
            .create(Desc {
                quant: Some(Quant {
                    scales: vec![0.25; 2],
                    zero_points,
                    axis: 0,
                }),
                ..int8(&[2, 1, 1, 2], vec![0.25], 0, 0)
            })
            .expect("fits");
        st.write(filter, 0, &[1, 2, 3, 4]).expect("fits");
        let output = st
            .create(int8(&[1, 2, 2, 2], vec![0.125], 0, 0))
            .expect("fits");
        let op = OpDesc::from(Conv2d {
            input,
            filter,
            bias: None,
            output,
            window: WindowArgs {
                padding: Padding::Valid,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
            },
            activation: Activation::None,
        });
        (op, output)
    };
    let mut st = TensorStore::new(1 << 20);
    for ks in dispatch::available() {
        let (op, output) = conv(&mut st, vec![-3, -3]);
        run(&mut st, &[op], ks);
        // (1+3)·1 + (2+3)·1 = 9 and (3+3) + (4+3) = 13, times 0.5·0.25/0.125 = 1.
        assert_eq!(
            read_i8(&st, output),
            [9, 13, 9, 13, 9, 13, 9, 13],
            "{}",
            ks.name
        );
    }
    let ks = dispatch::available().next().expect("a kernel set");
    for (semantics, zero_points, why) in [
        (Semantics::TfliteReference, vec![-3, -3], "symmetric"),
        (Semantics::TfliteMicro, vec![-3, -3], "symmetric"),
        (
            Semantics::Onnxruntime,
            vec![-3, 2],
            "one for the whole filter",
        ),
    ] {
        let (op, _) = conv(&mut st, zero_points);
        let e = Plan::new(semantics)
            .push(&op, &mut st, ks)
            .expect_err("refused");
        assert!(e.to_string().contains(why), "{semantics:?}: {e}");
    }
}

/// DynamicQuantizeLinear is onnxruntime's only; its outputs are checked
/// when it is prepared (sizes, types, no two the same tensor) and a value
/// without a range is an error when it runs, which leaves the host usable.
#[test]
fn dynamic_quantize_checks_its_operands() {
    let ks = dispatch::available().last().expect("a kernel set");
    let mut st = TensorStore::new(1 << 20);
    let desc = |dtype, n| Desc {
        dtype,
        shape: vec![n],
        quant: None,
    };
    let x = st.create(desc(DType::F32, 4)).expect("fits");
    let y = st.create(desc(DType::I8, 4)).expect("fits");
    let s = st.create(desc(DType::F32, 1)).expect("fits");
    let z = st.create(desc(DType::U8, 1)).expect("fits");
    let short = st.create(desc(DType::I8, 3)).expect("fits");
    let op = |output, scale, zero_point| {
        OpDesc::from(DynamicQuantize {
            input: x,
            output,
            scale,
            zero_point,
        })
    };
    let prepare = |st: &mut TensorStore, o: &OpDesc, sem| {
        PreparedOp::prepare(o, st, sem, ks).map(|p| p.release(st))
    };
    let unsupported = prepare(&mut st, &op(y, s, z), Semantics::TfliteReference);
    assert!(
        matches!(unsupported, Err(NnFault::Unsupported(_))),
        "{unsupported:?}"
    );
    for (bad, why) in [
        (op(short, s, z), "a y of another size"),
        (op(y, z, z), "a scale that is not float32"),
        (op(y, s, s), "a zero point that is not 8 bits"),
        (op(y, s, y), "a zero point of four elements"),
    ] {
        let r = prepare(&mut st, &bad, Semantics::Onnxruntime);
        assert!(matches!(r, Err(NnFault::Invalid(_))), "{why}: {r:?}");
    }
    // A one-element y and the zero point in one tensor: the kernel would
    // hold two mutable views of it.
    let x1 = st.create(desc(DType::F32, 1)).expect("fits");
    let one = st.create(desc(DType::I8, 1)).expect("fits");
    let same = OpDesc::from(DynamicQuantize {
        input: x1,
        output: one,
        scale: s,
        zero_point: one,
    });
    let r = prepare(&mut st, &same, Semantics::Onnxruntime);
    assert!(
        matches!(&r, Err(NnFault::Invalid(m)) if m.contains("overlaps")),
        "{r:?}"
    );
    let p =
        PreparedOp::prepare(&op(y, s, one), &mut st, Semantics::Onnxruntime, ks).expect("prepares");
    let floats = |v: [f32; 4]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    st.write(x, 0, &floats([1.0, f32::NAN, 0.0, -1.0]))
        .expect("fits");
    let e = p.run(&mut st, ks);
    assert!(
        matches!(&e, Err(NnFault::Invalid(m)) if m.contains("NaN")),
        "{e:?}"
    );
    st.write(x, 0, &floats([0.0, 2.0, -3.0, 1.34]))
        .expect("fits");
    p.run(&mut st, ks).expect("finite values run");
    assert_eq!(read_i8(&st, one), [(153u8 ^ 0x80) as i8]);
    p.release(&mut st);
}

/// QuantizeLinear per axis into int8 and back through DequantizeLinear in
/// one plan: each channel of an NHWC tensor at its own scale; then what
/// either refuses.
#[test]
fn linear_quant_takes_a_scale_per_channel_and_checks_its_operands() {
    let ks = dispatch::available().last().expect("a kernel set");
    let mut st = TensorStore::new(1 << 20);
    let desc = |dtype, shape: &[usize]| Desc {
        dtype,
        shape: shape.to_vec(),
        quant: None,
    };
    let floats = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    let x = tensor(
        &mut st,
        desc(DType::F32, &[1, 2, 1, 3]),
        &floats(&[1.0, 1.0, 1.0, -3.0, 5.0, 250.0]),
    );
    let q = st.create(desc(DType::I8, &[1, 2, 1, 3])).expect("fits");
    let back = st.create(desc(DType::F32, &[1, 2, 1, 3])).expect("fits");
    let scale = tensor(
        &mut st,
        desc(DType::F32, &[1, 1, 1, 3]),
        &floats(&[0.5, 0.25, 1.0]),
    );
    let zp = tensor(&mut st, desc(DType::I8, &[1, 1, 1, 3]), &[0, 10, 0xf6]);
    let quantize = |output, scale, zero_point, axis| {
        OpDesc::from(LinearQuant {
            direction: Direction::Quantize,
            input: x,
            output,
            scale,
            zero_point,
            axis,
            block: 1,
        })
    };
    let dequantize = OpDesc::from(LinearQuant {
        direction: Direction::Dequantize,
        input: q,
        output: back,
        scale,
        zero_point: zp,
        axis: 3,
        block: 1,
    });
    run(&mut st, &[quantize(q, scale, zp, 3), dequantize], ks);
    // Channel 0 at 0.5, channel 1 at 0.25 + 10, channel 2 at 1 − 10 (250
    // saturates to 127, which reads back as 137).
    assert_eq!(read_i8(&st, q), [2, 14, -9, -6, 30, 127]);
    let got: Vec<f32> = st
        .bytes(back)
        .expect("live")
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(got, [1.0, 1.0, 1.0, -3.0, 5.0, 137.0]);

    let prepare = |st: &mut TensorStore, o: &OpDesc, sem| {
        PreparedOp::prepare(o, st, sem, ks).map(|p| p.release(st))
    };
    let r = prepare(
        &mut st,
        &quantize(q, scale, zp, 3),
        Semantics::TfliteReference,
    );
    assert!(matches!(r, Err(NnFault::Unsupported(_))), "{r:?}");
    let zero = tensor(
        &mut st,
        desc(DType::F32, &[1, 1, 1, 3]),
        &floats(&[0.5, 0.0, 1.0]),
    );
    for (bad, why) in [
        (quantize(q, scale, zp, 4), "an axis past the rank"),
        (quantize(back, scale, zp, 3), "a float32 output"),
        (quantize(q, zp, zp, 3), "an int8 scale"),
        (quantize(q, scale, scale, 3), "a float32 zero point"),
        (quantize(q, zero, zp, 3), "a zero scale"),
    ] {
        let r = prepare(&mut st, &bad, Semantics::Onnxruntime);
        assert!(matches!(r, Err(NnFault::Invalid(_))), "{why}: {r:?}");
    }
}
