//! Every kernel set this CPU runs, checked against the scalar reference on
//! random shapes, strides, dilations, paddings, offsets and multipliers.
//! (tract's habit: one generated property per kernel and per path.)

use proptest::prelude::*;

use crate::add::{Add, AddSpec, add_scalar};
use crate::conv::{Conv2d, Conv2dSpec, conv2d_scalar};
use crate::depthwise::{DepthwiseConv2d, DepthwiseConv2dSpec, depthwise_conv2d_scalar};
use crate::dispatch::{self, KernelSet};
use crate::fully_connected::{FullyConnected, FullyConnectedSpec, fully_connected_scalar};
use crate::geometry::{Padding, Shape4, WindowSpec};
use crate::pooling::{Pool2d, average_pool2d_scalar, max_pool2d_scalar};
use crate::quant::{Requant, Rounding};
use crate::slab::Slab;

fn sets() -> Vec<&'static KernelSet> {
    dispatch::available().collect()
}

fn requants(n: usize, seed: u32, rounding: Rounding) -> Vec<Requant> {
    (0..n)
        .map(|i| {
            Requant::from_real(
                0.0005 + ((seed as usize * 7 + i * 13) % 97) as f64 * 0.0007,
                rounding,
            )
        })
        .collect()
}

fn bytes(n: usize, seed: u64) -> Vec<i8> {
    // Mixed first: seeds that differ only in the low bit (`seed ^ 1`) must
    // still give different bytes.
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as i8
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Geo {
    n: usize,
    h: usize,
    w: usize,
    ic: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    same: bool,
}

fn geo() -> impl Strategy<Value = Geo> {
    (
        1usize..=2,
        1usize..=9,
        1usize..=9,
        1usize..=20,
        1usize..=4,
        1usize..=4,
        1usize..=3,
        1usize..=3,
        1usize..=2,
        1usize..=2,
        any::<bool>(),
    )
        .prop_map(|(n, h, w, ic, kh, kw, sh, sw, dh, dw, same)| Geo {
            n,
            h,
            w,
            ic,
            kh,
            kw,
            sh,
            sw,
            dh,
            dw,
            same,
        })
}

impl Geo {
    fn window(&self) -> WindowSpec {
        WindowSpec {
            kernel_h: self.kh,
            kernel_w: self.kw,
            stride_h: self.sh,
            stride_w: self.sw,
            dilation_h: self.dh,
            dilation_w: self.dw,
            padding: if self.same {
                Padding::Same
            } else {
                Padding::Valid
            },
        }
    }

    fn out(&self) -> Option<(usize, usize)> {
        let p = self.window().padding;
        let oh = WindowSpec::out_size(p, self.h, self.kh, self.sh, self.dh);
        let ow = WindowSpec::out_size(p, self.w, self.kw, self.sw, self.dw);
        (oh > 0 && ow > 0).then_some((oh, ow))
    }
}

/// Cuts a layer into 2, 3 and as many slabs as it has output rows, runs
/// every slab on its part of `input` into an output first filled with 0x55
/// (so that a gap between slabs shows), and checks that together they
/// write `want`, the whole layer's output, within their scratch bounds.
/// Only a one-image layer of two rows or more may split.
fn check_slabs<K>(
    set: &str,
    g: &Geo,
    slabs_of: impl Fn(usize) -> Vec<Slab<K>>,
    run: impl Fn(&K, &[i8], &mut [i8]) -> Result<(), crate::KernelError>,
    scratch: impl Fn(&K) -> (usize, usize),
    input: &[i8],
    want: &[i8],
) -> Result<(), TestCaseError> {
    let oh = g.out().map_or(0, |(oh, _)| oh);
    for parts in [2, 3, oh] {
        let slabs = slabs_of(parts);
        prop_assert_eq!(slabs.is_empty(), g.n > 1 || oh.min(parts) < 2);
        if slabs.is_empty() {
            continue;
        }
        let mut got = vec![0x55i8; want.len()];
        for s in &slabs {
            run(&s.op, &input[s.input.clone()], &mut got[s.output.clone()]).unwrap();
            let (held, bound) = scratch(&s.op);
            prop_assert!(held <= bound, "{set}: slab scratch {held} > {bound}");
        }
        prop_assert_eq!(&got, want, "{} in {} slabs on {:?}", set, parts, g);
    }
    Ok(())
}

/// Filter zero points: mostly TFLite's 0, sometimes onnxruntime's asymmetric ones.
fn weight_zero_points() -> impl Strategy<Value = i32> {
    prop_oneof![2 => Just(0), 1 => -128i32..=127]
}

#[allow(clippy::too_many_arguments)]
fn check_conv(
    g: Geo,
    oc: usize,
    seed: u64,
    zp: i32,
    wzp: i32,
    ozp: i32,
    rounding: Rounding,
    act: i32,
) -> Result<(), TestCaseError> {
    // Windows larger than the input give no output: not a case, draw again.
    let Some((oh, ow)) = g.out() else {
        return Err(TestCaseError::reject("empty output"));
    };
    let (act_min, act_max) = [
        (-128, 127),
        (ozp, 127),
        (ozp.max(-100), (ozp + 60).min(127)),
    ][act as usize];
    let spec = Conv2dSpec {
        input: Shape4::new(g.n, g.h, g.w, g.ic),
        output: Shape4::new(g.n, oh, ow, oc),
        window: g.window(),
        filter: bytes(oc * g.kh * g.kw * g.ic, seed),
        filter_in_c: g.ic,
        bias: Some(
            bytes(oc, seed ^ 5)
                .iter()
                .map(|&b| b as i32 * 100)
                .collect(),
        ),
        requant: requants(oc, seed as u32, rounding),
        input_offset: -zp,
        weights_offset: -wzp,
        output_offset: ozp,
        act_min,
        act_max,
        rounding,
        layout: Default::default(),
    };
    let k = Conv2d::new(spec.clone()).unwrap();
    let input = bytes(g.n * g.h * g.w * g.ic, seed ^ 9);
    let mut want = vec![0i8; g.n * oh * ow * oc];
    conv2d_scalar(&k, &input, &mut want).unwrap();
    for ks in sets() {
        let k = Conv2d::new(Conv2dSpec {
            layout: ks.layout,
            ..spec.clone()
        })
        .unwrap();
        let mut got = vec![0i8; want.len()];
        (ks.conv2d)(&k, &input, &mut got).unwrap();
        prop_assert_eq!(&got, &want, "{} conv2d on {:?}", ks.name, g);
        let (held, bound) = k.scratch_bytes();
        prop_assert!(held <= bound, "{} conv2d scratch {held} > {bound}", ks.name);
        check_slabs(
            ks.name,
            &g,
            |parts| k.slabs(parts).unwrap(),
            |k, i, o| (ks.conv2d)(k, i, o),
            |k| k.scratch_bytes(),
            &input,
            &want,
        )?;
        let charged = Conv2d::heap_bytes_for(
            spec.input,
            spec.output,
            spec.window,
            spec.filter_in_c,
            spec.weights_offset,
            ks.layout,
        );
        prop_assert_eq!(charged, Ok(k.heap_bytes()), "{} conv2d", ks.name);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_paths_match_the_reference(g in geo(), oc in 1usize..=13, seed in any::<u64>(), zp in -128i32..=127, wzp in weight_zero_points(), ozp in -128i32..=127, rounding in crate::quant::checks::roundings(), act in 0i32..3) {
        check_conv(g, oc, seed, zp, wzp, ozp, rounding, act)?;
    }

    /// Pointwise convolutions (1×1, stride 1, channels in groups of 4) read
    /// their patches in place in the block-GEMM sets; make sure of them. Up
    /// to 120 output channels: the AVX-512 GEMM takes blocks of 16 in
    /// groups of four, two and one, all three in one layer from 97 on.
    #[test]
    fn pointwise_conv2d_paths_match_the_reference(n in 1usize..=2, h in 1usize..=7, w in 1usize..=7, c4 in 1usize..=12, oc in 1usize..=120, seed in any::<u64>(), zp in -128i32..=127, wzp in weight_zero_points(), ozp in -128i32..=127, rounding in crate::quant::checks::roundings(), same in any::<bool>()) {
        let g = Geo { n, h, w, ic: 4 * c4, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, same };
        check_conv(g, oc, seed, zp, wzp, ozp, rounding, 0)?;
    }

    /// Windows whose kernel rows are whole groups of 4 bytes are read in
    /// place as one run per kernel row (ResNet's 3×3 convs): strides,
    /// vertical dilation, padding and batches over those runs.
    #[test]
    fn in_place_window_conv2d_paths_match_the_reference(n in 1usize..=2, h in 1usize..=8, w in 1usize..=8, c4 in 1usize..=6, kh in 1usize..=3, kw in 1usize..=3, sh in 1usize..=2, sw in 1usize..=2, dh in 1usize..=2, oc in 1usize..=72, seed in any::<u64>(), zp in -128i32..=127, wzp in weight_zero_points(), ozp in -128i32..=127, rounding in crate::quant::checks::roundings(), same in any::<bool>()) {
        let g = Geo { n, h, w, ic: 4 * c4, kh, kw, sh, sw, dh, dw: 1, same };
        check_conv(g, oc, seed, zp, wzp, ozp, rounding, 0)?;
    }

    /// Rows of output pixels as wide as a matrix tile or wider, and deep
    /// windows: the AMX set loads sixteen patches at one stride as a tile,
    /// 64 bytes of each run at a time and then the run's tail, for up to
    /// four blocks of channels at once (five blocks from 65 channels on);
    /// patches that straddle rows it copies side by side up to 1024 bytes
    /// deep (3·3·113 is deeper).
    #[test]
    fn tile_wide_conv2d_paths_match_the_reference(n in 1usize..=2, h in 1usize..=4, w in prop_oneof![Just(16usize), Just(32), 1usize..=40], ic in 1usize..=130, kh in 1usize..=3, kw in 1usize..=3, sh in 1usize..=2, sw in 1usize..=2, oc in 1usize..=72, seed in any::<u64>(), zp in -128i32..=127, wzp in weight_zero_points(), ozp in -128i32..=127, rounding in crate::quant::checks::roundings(), same in any::<bool>()) {
        let g = Geo { n, h, w: w * sw, ic, kh, kw, sh, sw, dh: 1, dw: 1, same };
        check_conv(g, oc, seed, zp, wzp, ozp, rounding, 0)?;
    }

    /// One-dimensional windows whose stride equals their dilation
    /// (streaming WW's columns over time): each pixel's window is the one
    /// before moved a tap, which the AVX-512 set reads as shared pairs of
    /// rows, 32 pixels a pass. Columns and rows up to 80 long cross that,
    /// with windows up to 16 taps, odd and even, and every batch.
    #[test]
    fn one_step_depthwise_paths_match_the_reference(n in 1usize..=2, len in 2usize..=80, k in 2usize..=16, ic in 1usize..=40, s in 1usize..=2, across in any::<bool>(), same in any::<bool>(), mult in 1usize..=2, seed in any::<u64>(), zp in -128i32..=127, ozp in -128i32..=127, rounding in crate::quant::checks::roundings()) {
        let k = k.min((len - 1) / s + 1);
        let g = if across {
            Geo { n, h: 1, w: len, ic, kh: 1, kw: k, sh: 1, sw: s, dh: 1, dw: s, same }
        } else {
            Geo { n, h: len, w: 1, ic, kh: k, kw: 1, sh: s, sw: 1, dh: s, dw: 1, same }
        };
        check_depthwise(g, mult, seed, zp, ozp, rounding)?;
    }

    #[test]
    fn depthwise_paths_match_the_reference(g in geo(), mult in 1usize..=2, seed in any::<u64>(), zp in -128i32..=127, ozp in -128i32..=127, rounding in crate::quant::checks::roundings()) {
        check_depthwise(g, mult, seed, zp, ozp, rounding)?;
    }

    /// 3×3 windows (MobileNet's and DS-CNN's) have their own register-held
    /// kernel in the AVX-512 set, taking pixels four at a time; random
    /// geometry rarely lands on one, so make sure of them, with rows long
    /// enough for whole groups and leftovers.
    #[test]
    fn three_by_three_depthwise_paths_match_the_reference(n in 1usize..=2, h in 3usize..=8, w in 3usize..=13, ic in 1usize..=40, sh in 1usize..=2, sw in 1usize..=2, dh in 1usize..=2, dw in 1usize..=2, same in any::<bool>(), seed in any::<u64>(), zp in -128i32..=127, ozp in -128i32..=127, rounding in crate::quant::checks::roundings()) {
        let g = Geo { n, h, w, ic, kh: 3, kw: 3, sh, sw, dh, dw, same };
        check_depthwise(g, 1, seed, zp, ozp, rounding)?;
    }
}

fn check_depthwise(
    g: Geo,
    mult: usize,
    seed: u64,
    zp: i32,
    ozp: i32,
    rounding: Rounding,
) -> Result<(), TestCaseError> {
    // Windows larger than the input give no output: not a case, draw again.
    let Some((oh, ow)) = g.out() else {
        return Err(TestCaseError::reject("empty output"));
    };
    let oc = g.ic * mult;
    let spec = DepthwiseConv2dSpec {
        input: Shape4::new(g.n, g.h, g.w, g.ic),
        output: Shape4::new(g.n, oh, ow, oc),
        window: g.window(),
        filter: bytes(g.kh * g.kw * oc, seed),
        depth_multiplier: mult,
        bias: Some(bytes(oc, seed ^ 3).iter().map(|&b| b as i32 * 50).collect()),
        requant: requants(oc, seed as u32, rounding),
        input_offset: -zp,
        output_offset: ozp,
        act_min: -128,
        act_max: 127,
        rounding,
    };
    let k = DepthwiseConv2d::new(spec).unwrap();
    let input = bytes(g.n * g.h * g.w * g.ic, seed ^ 11);
    let mut want = vec![0i8; g.n * oh * ow * oc];
    depthwise_conv2d_scalar(&k, &input, &mut want).unwrap();
    for ks in sets() {
        let mut got = vec![0i8; want.len()];
        (ks.depthwise_conv2d)(&k, &input, &mut got).unwrap();
        prop_assert_eq!(&got, &want, "{} depthwise on {:?}", ks.name, g);
        let (held, bound) = k.scratch_bytes();
        prop_assert!(
            held <= bound,
            "{} depthwise scratch {held} > {bound}",
            ks.name
        );
        check_slabs(
            ks.name,
            &g,
            |parts| k.slabs(parts).unwrap(),
            |k, i, o| (ks.depthwise_conv2d)(k, i, o),
            |k| k.scratch_bytes(),
            &input,
            &want,
        )?;
        let charged = DepthwiseConv2d::heap_bytes_for(k.input, k.output, g.window(), mult);
        prop_assert_eq!(charged, Ok(k.heap_bytes()), "{} depthwise", ks.name);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Weights of zero point 0 (every int8 model: symmetric weights) take
    /// the i8 block GEMM; half the cases have them. A layer runs `extra`
    /// rows beyond those it was prepared for, as a batched plan runs it,
    /// so groups of rows sharing weight loads (sixteen for AMX tiles) meet
    /// every remainder. Layers of 120 units or more reach the single-row
    /// GEMV's eight blocks at a time.
    #[test]
    fn fully_connected_paths_match_the_reference(batches in 1usize..=5, extra in 0usize..=40, depth in 1usize..=300, units in prop_oneof![1usize..=90, 120usize..=200], seed in any::<u64>(), zp in -128i32..=127, wzp in prop_oneof![Just(0i32), -20i32..=20], per_channel in any::<bool>(), rounding in crate::quant::checks::roundings()) {
        let spec = FullyConnectedSpec {
            batches,
            depth,
            units,
            weights: bytes(units * depth, seed),
            bias: Some(bytes(units, seed ^ 7).iter().map(|&b| b as i32 * 30).collect()),
            requant: requants(if per_channel { units } else { 1 }, seed as u32, rounding),
            input_offset: -zp,
            weights_offset: wzp,
            output_offset: 3,
            act_min: -128,
            act_max: 127,
            rounding,
            layout: Default::default(),
        };
        let k = FullyConnected::new(spec.clone()).unwrap();
        let rows = batches + extra;
        let input = bytes(rows * depth, seed ^ 13);
        let mut want = vec![0i8; rows * units];
        fully_connected_scalar(&k, &input, &mut want).unwrap();
        for ks in sets() {
            let k = FullyConnected::new(FullyConnectedSpec { layout: ks.layout, ..spec.clone() }).unwrap();
            let mut got = vec![0i8; want.len()];
            (ks.fully_connected)(&k, &input, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "{} fully connected {}x{}x{}", ks.name, rows, depth, units);
            // Once more with a single row: the scratch must not outgrow its bound.
            let mut one = vec![0i8; units];
            (ks.fully_connected)(&k, &input[..depth], &mut one).unwrap();
            prop_assert_eq!(&one[..], &want[..units]);
            let (held, bound) = k.scratch_bytes();
            prop_assert!(held <= bound, "{} fully connected scratch {held} > {bound}", ks.name);
            let charged = FullyConnected::heap_bytes_for(depth, units, wzp, ks.layout);
            prop_assert_eq!(charged, Ok(k.heap_bytes()), "{} fully connected", ks.name);
        }
    }

    /// Pools over random windows, channel counts past one chunk of sums,
    /// and activation clamps.
    #[test]
    fn average_pool_paths_match_the_reference(n in 1usize..=2, h in 1usize..=9, w in 1usize..=9, c in 1usize..=150, kh in 1usize..=4, kw in 1usize..=4, sh in 1usize..=3, sw in 1usize..=3, same in any::<bool>(), seed in any::<u64>(), act_min in -128i32..=0) {
        let g = Geo { n, h, w, ic: c, kh, kw, sh, sw, dh: 1, dw: 1, same };
        let Some((oh, ow)) = g.out() else { return Err(TestCaseError::reject("empty output")) };
        let k = Pool2d::new("pool", Shape4::new(n, h, w, c), Shape4::new(n, oh, ow, c), g.window(), act_min, 127);
        prop_assert!(k.is_ok(), "{:?}", k.err());
        let Ok(k) = k else { unreachable!() };
        let input = bytes(n * h * w * c, seed);
        let mut want = vec![0i8; n * oh * ow * c];
        // A window wholly in the padding is refused by both.
        let reference = average_pool2d_scalar(&k, &input, &mut want);
        for ks in sets() {
            let mut got = vec![0i8; want.len()];
            let r = (ks.average_pool2d)(&k, &input, &mut got);
            prop_assert_eq!(r.is_ok(), reference.is_ok());
            if r.is_ok() {
                prop_assert_eq!(&got, &want, "{} average pool on {:?}", ks.name, g);
            }
        }
    }

    /// Max pools over the same windows, with clamps from both sides.
    #[test]
    fn max_pool_paths_match_the_reference(n in 1usize..=2, h in 1usize..=9, w in 1usize..=9, c in 1usize..=150, kh in 1usize..=4, kw in 1usize..=4, sh in 1usize..=3, sw in 1usize..=3, same in any::<bool>(), seed in any::<u64>(), act_min in -128i32..=0, act_max in 0i32..=127) {
        let g = Geo { n, h, w, ic: c, kh, kw, sh, sw, dh: 1, dw: 1, same };
        let Some((oh, ow)) = g.out() else { return Err(TestCaseError::reject("empty output")) };
        let k = Pool2d::new("pool", Shape4::new(n, h, w, c), Shape4::new(n, oh, ow, c), g.window(), act_min, act_max);
        prop_assert!(k.is_ok(), "{:?}", k.err());
        let Ok(k) = k else { unreachable!() };
        let input = bytes(n * h * w * c, seed);
        let mut want = vec![0i8; n * oh * ow * c];
        max_pool2d_scalar(&k, &input, &mut want).unwrap();
        for ks in sets() {
            let mut got = vec![0i8; want.len()];
            (ks.max_pool2d)(&k, &input, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "{} max pool on {:?}", ks.name, g);
        }
    }

    #[test]
    fn add_paths_match_the_reference(len in 1usize..200, seed in any::<u64>(), s1 in 0.01f32..2.0, s2 in 0.01f32..2.0, so in 0.01f32..2.0, zps in (-128i32..128, -128i32..128, -128i32..128), rounding in crate::quant::checks::roundings(), relu in any::<bool>(), table in any::<bool>()) {
        let act_min = if relu { zps.2 } else { -128 };
        let spec = AddSpec { shape1: vec![len], shape2: vec![len], out_shape: vec![len], scale1: s1, zero_point1: zps.0, scale2: s2, zero_point2: zps.1, out_scale: so, out_zero_point: zps.2, act_min, act_max: 127, rounding, table_from: None, uint8: false };
        let k = Add::new(spec.clone()).unwrap();
        let (a, b) = (bytes(len, seed), bytes(len, seed ^ 1));
        let mut want = vec![0i8; len];
        add_scalar(&k, &a, &b, &mut want).unwrap();
        for ks in sets() {
            // Both of a set's paths: the table, and the computation for adds too small for one.
            let table_from = (ks.add_table && table).then_some(1);
            let k = Add::new(AddSpec { table_from, ..spec.clone() }).unwrap();
            let mut got = vec![0i8; len];
            (ks.add)(&k, &a, &b, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "{} add (table: {})", ks.name, table_from.is_some());
        }
    }

    /// ADD with numpy broadcasting: each of four dimensions is whole on
    /// one side, or 1 on one side and whole on the other.
    #[test]
    fn broadcast_add_paths_match_the_reference(dims in proptest::collection::vec((1usize..=5, 0u8..3), 1..=4), seed in any::<u64>(), zps in (-128i32..128, -128i32..128, -128i32..128), double in any::<bool>(), table in any::<bool>()) {
        let rounding = if double { Rounding::Double } else { Rounding::Single };
        let out_shape: Vec<usize> = dims.iter().map(|&(d, _)| d).collect();
        let side = |which: u8| -> Vec<usize> {
            dims.iter().map(|&(d, w)| if w == which { 1 } else { d }).collect()
        };
        let (shape1, shape2) = (side(1), side(2));
        let spec = AddSpec { shape1: shape1.clone(), shape2: shape2.clone(), out_shape: out_shape.clone(), scale1: 0.07, zero_point1: zps.0, scale2: 0.11, zero_point2: zps.1, out_scale: 0.13, out_zero_point: zps.2, act_min: -128, act_max: 127, rounding, table_from: None, uint8: false };
        let k = Add::new(spec.clone()).unwrap();
        let (a, b) = (bytes(shape1.iter().product(), seed), bytes(shape2.iter().product(), seed ^ 1));
        let mut want = vec![0i8; out_shape.iter().product()];
        add_scalar(&k, &a, &b, &mut want).unwrap();
        // By hand: every output element is the sum of the elements its index picks.
        for (i, w) in want.iter().enumerate() {
            let (mut ia, mut ib, mut rest) = (0usize, 0usize, i);
            let mut stride_o: usize = out_shape.iter().product();
            for (d, (&s1, &s2)) in out_shape.iter().zip(shape1.iter().zip(&shape2)) {
                stride_o /= d;
                let x = rest / stride_o;
                rest %= stride_o;
                ia = ia * s1 + if s1 == 1 { 0 } else { x };
                ib = ib * s2 + if s2 == 1 { 0 } else { x };
            }
            prop_assert_eq!(*w, k.one(a[ia], b[ib]), "element {}", i);
        }
        for ks in sets() {
            let table_from = (ks.add_table && table).then_some(1);
            let k = Add::new(AddSpec { table_from, ..spec.clone() }).unwrap();
            let mut got = vec![0i8; want.len()];
            (ks.add)(&k, &a, &b, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "{} broadcast add {:?} + {:?}", ks.name, shape1, shape2);
        }
    }
}

/// Whether the CPU has AMX-INT8 and the kernel turned its state on in
/// XCR0 (Linux does since 5.16), read apart from the set's own check.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn amx_enabled_by_the_os() -> bool {
    use std::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
    #[target_feature(enable = "xsave")]
    fn xcr0() -> u64 {
        // SAFETY: XSAVE is enabled for this function, and its caller
        // checked that the OS set CR4.OSXSAVE.
        unsafe { _xgetbv(0) }
    }
    let amx = (__cpuid_count(7, 0).edx >> 24) & 3 == 3;
    let osxsave = (__cpuid(1).ecx >> 27) & 1 == 1;
    // SAFETY: OSXSAVE means XGETBV runs (and XSAVE is there).
    amx && osxsave && (unsafe { xcr0() } >> 17) & 3 == 3
}

#[test]
fn this_machine_tests_more_than_the_reference_when_it_can() {
    let names: Vec<_> = sets().iter().map(|k| k.name).collect();
    assert!(names.contains(&"scalar"));
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        assert!(names.contains(&"avx2"), "{names:?}");
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512vnni") {
        assert!(names.contains(&"avx512"), "{names:?}");
    }
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if std::is_x86_feature_detected!("avx512vnni") && amx_enabled_by_the_os() {
        assert!(names.contains(&"amx"), "{names:?}");
    }
    #[cfg(target_arch = "aarch64")]
    assert!(names.contains(&"neon"), "{names:?}");
    #[cfg(target_arch = "aarch64")]
    if std::arch::is_aarch64_feature_detected!("dotprod") {
        assert!(names.contains(&"neon-dot"), "{names:?}");
    }
}
