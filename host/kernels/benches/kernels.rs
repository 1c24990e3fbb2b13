//! Each kernel on each set this CPU runs, at shapes taken from the MLPerf
//! Tiny models, with throughput in multiply-accumulates (criterion's
//! "elements" are MACs here; for ADD, elements).
//!
//! `cargo bench -p gatehouse-kernels` (pin with `taskset -c 1` for stable numbers).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gatehouse_kernels::add::{Add, AddSpec};
use gatehouse_kernels::conv::{Conv2d, Conv2dSpec};
use gatehouse_kernels::depthwise::{DepthwiseConv2d, DepthwiseConv2dSpec};
use gatehouse_kernels::dispatch;
use gatehouse_kernels::fully_connected::{FullyConnected, FullyConnectedSpec};
use gatehouse_kernels::geometry::{Padding, Shape4, WindowSpec};
use gatehouse_kernels::quant::{Requant, Rounding};

fn bytes(n: usize, seed: u64) -> Vec<i8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as i8
        })
        .collect()
}

fn window(k: usize, stride: usize) -> WindowSpec {
    WindowSpec {
        kernel_h: k,
        kernel_w: k,
        stride_h: stride,
        stride_w: stride,
        dilation_h: 1,
        dilation_w: 1,
        padding: Padding::Same,
    }
}

fn requant(n: usize) -> Vec<Requant> {
    (0..n)
        .map(|i| Requant::from_real(0.002 + i as f64 * 1e-5, Rounding::Double))
        .collect()
}

/// (name, input h=w, in channels, out channels, kernel, stride)
const CONVS: [(&str, usize, usize, usize, usize, usize); 3] = [
    ("ic_3x3_32x32x16", 32, 16, 16, 3, 1),
    ("vww_1x1_24x24x32_64", 24, 32, 64, 1, 1),
    ("kws_1x1_25x5x64", 25, 64, 64, 1, 1),
];

fn conv(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d");
    for (name, hw, ic, oc, k, s) in CONVS {
        let (h, w) = if name.starts_with("kws") {
            (25, 5)
        } else {
            (hw, hw)
        };
        let input = bytes(h * w * ic, 1);
        let out_h = h.div_ceil(s);
        let out_w = w.div_ceil(s);
        g.throughput(Throughput::Elements(
            (out_h * out_w * oc * k * k * ic) as u64,
        ));
        for ks in dispatch::available() {
            let kernel = Conv2d::new(Conv2dSpec {
                input: Shape4::new(1, h, w, ic),
                output: Shape4::new(1, out_h, out_w, oc),
                window: window(k, s),
                filter: bytes(oc * k * k * ic, 2),
                filter_in_c: ic,
                bias: Some(vec![100; oc]),
                requant: requant(oc),
                input_offset: 128,
                weights_offset: 0,
                output_offset: -128,
                act_min: -128,
                act_max: 127,
                rounding: Rounding::Double,
                layout: ks.layout,
            })
            .expect("conv spec");
            let mut out = vec![0i8; out_h * out_w * oc];
            g.bench_with_input(BenchmarkId::new(name, ks.name), &input, |b, x| {
                b.iter(|| (ks.conv2d)(&kernel, x, &mut out).expect("conv"))
            });
        }
    }
    g.finish();
}

fn depthwise(c: &mut Criterion) {
    let mut g = c.benchmark_group("depthwise_conv2d");
    for (name, hw, ch, s) in [
        ("vww_3x3_48x48x16", 48, 16, 1),
        ("vww_3x3_s2_48x48x16", 48, 16, 2),
        ("kws_3x3_25x5x64", 25, 64, 1),
    ] {
        let (h, w) = if name.starts_with("kws") {
            (25, 5)
        } else {
            (hw, hw)
        };
        let input = bytes(h * w * ch, 3);
        let (oh, ow) = (h.div_ceil(s), w.div_ceil(s));
        g.throughput(Throughput::Elements((oh * ow * ch * 9) as u64));
        let kernel = DepthwiseConv2d::new(DepthwiseConv2dSpec {
            input: Shape4::new(1, h, w, ch),
            output: Shape4::new(1, oh, ow, ch),
            window: window(3, s),
            filter: bytes(9 * ch, 4),
            depth_multiplier: 1,
            bias: Some(vec![10; ch]),
            requant: requant(ch),
            input_offset: 128,
            output_offset: -128,
            act_min: -128,
            act_max: 127,
            rounding: Rounding::Double,
        })
        .expect("depthwise spec");
        for ks in dispatch::available() {
            let mut out = vec![0i8; oh * ow * ch];
            g.bench_with_input(BenchmarkId::new(name, ks.name), &input, |b, x| {
                b.iter(|| (ks.depthwise_conv2d)(&kernel, x, &mut out).expect("depthwise"))
            });
        }
    }
    g.finish();
}

fn fully_connected(c: &mut Criterion) {
    let mut g = c.benchmark_group("fully_connected");
    for (name, depth, units) in [("ad_640x128", 640, 128), ("kws_64x12", 64, 12)] {
        let input = bytes(depth, 5);
        g.throughput(Throughput::Elements((depth * units) as u64));
        for ks in dispatch::available() {
            let kernel = FullyConnected::new(FullyConnectedSpec {
                batches: 1,
                depth,
                units,
                weights: bytes(depth * units, 6),
                bias: Some(vec![5; units]),
                requant: requant(1),
                input_offset: 3,
                weights_offset: 0,
                output_offset: 0,
                act_min: -128,
                act_max: 127,
                rounding: Rounding::Single,
                layout: ks.layout,
            })
            .expect("fc spec");
            let mut out = vec![0i8; units];
            g.bench_with_input(BenchmarkId::new(name, ks.name), &input, |b, x| {
                b.iter(|| (ks.fully_connected)(&kernel, x, &mut out).expect("fc"))
            });
        }
    }
    g.finish();
}

fn add(c: &mut Criterion) {
    let mut g = c.benchmark_group("add");
    let n = 32 * 32 * 16;
    let (a, b) = (bytes(n, 7), bytes(n, 8));
    g.throughput(Throughput::Elements(n as u64));
    let spec = AddSpec {
        shape1: vec![n],
        shape2: vec![n],
        out_shape: vec![n],
        scale1: 0.05,
        zero_point1: -3,
        scale2: 0.07,
        zero_point2: 5,
        out_scale: 0.1,
        out_zero_point: -1,
        act_min: -128,
        act_max: 127,
        rounding: Rounding::Double,
        table_from: None,
        uint8: false,
    };
    for ks in dispatch::available() {
        let kernel = Add::new(AddSpec {
            table_from: ks.add_table.then_some(gatehouse_kernels::add::TABLE_FROM),
            ..spec.clone()
        })
        .expect("add spec");
        let mut out = vec![0i8; n];
        g.bench_function(BenchmarkId::new("ic_32x32x16", ks.name), |bch| {
            bch.iter(|| (ks.add)(&kernel, &a, &b, &mut out).expect("add"))
        });
    }
    g.finish();
}

criterion_group!(benches, conv, depthwise, fully_connected, add);
criterion_main!(benches);
