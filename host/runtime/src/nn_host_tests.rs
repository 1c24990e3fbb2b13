//! One test per host function of `gatehouse:nn` and the plugin's own
//! imports, each called as a hostile plugin would: the bound its WIT doc
//! comment states holds. Memory is checked against the quota the store
//! charges (the scenario `tests/hostile.rs` measures the host's real
//! allocations for the same abuses); time against the call's deadline.

use std::time::{Duration, Instant};

use gatehouse_kernels::dispatch;
use wasmtime::component::Resource;

use gatehouse_nn::{NnFault, Pace, Plan, SLOT_OVERHEAD, TensorKey};

use crate::bindings::{NnCallError, clock, log, ops as wops, plan as wplan, tensors as wt};
use crate::plugin::state::{InstanceState, WasiParts};

const QUOTA: u64 = 1 << 20;

fn state() -> InstanceState {
    let ks = dispatch::available().last().expect("a kernel set");
    let mut st = InstanceState::new(
        "hostile@test".into(),
        ks,
        gatehouse_nn::Threads::one(),
        1 << 20,
        QUOTA,
        Pace::measure(ks),
        WasiParts::nothing("hostile@test"),
        crate::wasi_nn::WasiNn::new(None),
    );
    st.begin_call(Duration::from_secs(10));
    st
}

fn i8_desc(shape: &[u32]) -> wt::TensorDesc {
    wt::TensorDesc {
        dtype: wt::Dtype::Int8,
        shape: shape.to_vec(),
        quantization: Some(wt::Quantization {
            scales: vec![0.05],
            zero_points: vec![0],
            axis: 0,
        }),
    }
}

fn create(st: &mut InstanceState, shape: &[u32]) -> Result<Resource<TensorKey>, NnCallError> {
    wt::HostTensor::create(&mut st.nn_view(), i8_desc(shape))
}

fn borrow(t: &Resource<TensorKey>) -> Resource<TensorKey> {
    Resource::new_borrow(t.rep())
}

fn used(st: &mut InstanceState) -> u64 {
    wt::Host::usage(&mut st.nn_view()).expect("usage").used
}

fn quota_exceeded<T: std::fmt::Debug>(r: Result<T, NnCallError>) {
    assert!(
        matches!(r, Err(NnCallError::Nn(NnFault::QuotaExceeded(_)))),
        "{r:?}"
    );
}

#[test]
fn create_charges_data_slot_and_description_before_allocating() {
    let mut st = state();
    quota_exceeded(create(&mut st, &[1 << 30]));
    // A description can cost more than its data: a million per-channel scales.
    let scales = 1u32 << 18;
    let desc = wt::TensorDesc {
        dtype: wt::Dtype::Int8,
        shape: vec![scales],
        quantization: Some(wt::Quantization {
            scales: vec![0.1; scales as usize],
            zero_points: vec![0; scales as usize],
            axis: 0,
        }),
    };
    // 256 KiB of data and 2 MiB of description: over a 1 MiB quota.
    quota_exceeded(wt::HostTensor::create(&mut st.nn_view(), desc));
    assert_eq!(used(&mut st), 0);
    // Tiny tensors, kept: each costs its slot, so they end within the quota.
    let mut kept = Vec::new();
    while let Ok(t) = create(&mut st, &[1]) {
        kept.push(t);
    }
    assert!(used(&mut st) <= QUOTA);
    assert!(kept.len() as u64 <= QUOTA / SLOT_OVERHEAD, "{}", kept.len());
    for t in kept {
        wt::HostTensor::drop(&mut st.nn_view(), t).expect("drop");
    }
    assert_eq!(used(&mut st), 0, "drop gives back every byte");
}

#[test]
fn a_view_costs_a_slot_and_is_refused_at_the_brim() {
    let mut st = state();
    let arena = create(&mut st, &[1000]).expect("arena");
    let before = used(&mut st);
    let v =
        wt::HostTensor::view(&mut st.nn_view(), borrow(&arena), 10, i8_desc(&[5])).expect("view");
    assert!(used(&mut st) > before && used(&mut st) - before <= SLOT_OVERHEAD + 64);
    wt::HostTensor::drop(&mut st.nn_view(), v).expect("drop");
    let filler = fill(&mut st);
    quota_exceeded(wt::HostTensor::view(
        &mut st.nn_view(),
        borrow(&arena),
        0,
        i8_desc(&[1]),
    ));
    drop(filler);
}

/// Fills the quota to within a slot of the brim.
fn fill(st: &mut InstanceState) -> Resource<TensorKey> {
    let mut want = (QUOTA - used(st)) as u32;
    loop {
        match create(st, &[want]) {
            Ok(t) => return t,
            Err(_) => want -= 1,
        }
    }
}

#[test]
fn write_costs_nothing_and_refuses_past_the_end() {
    let mut st = state();
    let t = create(&mut st, &[16]).expect("tensor");
    let before = used(&mut st);
    let r = wt::HostTensor::write(&mut st.nn_view(), borrow(&t), 10, vec![1; 10]);
    assert!(
        matches!(r, Err(NnCallError::Nn(NnFault::Invalid(_)))),
        "{r:?}"
    );
    let r = wt::HostTensor::write(&mut st.nn_view(), borrow(&t), u64::MAX, vec![1]);
    assert!(
        matches!(r, Err(NnCallError::Nn(NnFault::Invalid(_)))),
        "{r:?}"
    );
    wt::HostTensor::write(&mut st.nn_view(), borrow(&t), 0, vec![7; 16]).expect("fits");
    assert_eq!(used(&mut st), before);
}

#[test]
fn read_is_charged_while_held_and_traps_when_it_does_not_fit() {
    let mut st = state();
    let half = QUOTA / 2 - 4096;
    let big = create(&mut st, &[half as u32]).expect("half the quota");
    let before = used(&mut st);
    assert_eq!(
        wt::HostTensor::read(&mut st.nn_view(), borrow(&big))
            .expect("fits")
            .len() as u64,
        half
    );
    assert_eq!(used(&mut st), before, "the copy's charge is returned");
    let _rest = create(&mut st, &[(QUOTA / 4) as u32]).expect("a quarter");
    let e =
        wt::HostTensor::read(&mut st.nn_view(), borrow(&big)).expect_err("no room for the copy");
    assert!(format!("{e}").contains("quota"), "{e}");
}

#[test]
fn desc_byte_len_usage_and_len_cost_nothing() {
    let mut st = state();
    let t = create(&mut st, &[2, 3]).expect("tensor");
    let before = used(&mut st);
    let d = wt::HostTensor::desc(&mut st.nn_view(), borrow(&t)).expect("desc");
    assert_eq!(d.shape, vec![2, 3]);
    assert_eq!(
        wt::HostTensor::byte_len(&mut st.nn_view(), borrow(&t)).expect("len"),
        6
    );
    let plan = wplan::HostPlan::new(&mut st.nn_view(), exec()).expect("plan");
    let after_plan = used(&mut st);
    assert!(after_plan > before, "a plan's bookkeeping is charged");
    assert_eq!(
        wplan::HostPlan::len(&mut st.nn_view(), Resource::new_borrow(plan.rep())).expect("len"),
        0
    );
    assert_eq!(used(&mut st), after_plan);
    wplan::HostPlan::drop(&mut st.nn_view(), plan).expect("drop plan");
    assert_eq!(used(&mut st), before);
}

fn exec() -> wops::ExecOptions {
    wops::ExecOptions {
        semantics: wops::Semantics::TfliteReference,
    }
}

fn plan_at_brim() -> (InstanceState, Resource<TensorKey>) {
    let mut st = state();
    let filler = fill(&mut st);
    (st, filler)
}

#[test]
fn a_plan_that_does_not_fit_traps() {
    let (mut st, _filler) = plan_at_brim();
    let e = wplan::HostPlan::new(&mut st.nn_view(), exec()).expect_err("no room for a plan");
    assert!(format!("{e}").contains("quota"), "{e}");
}

/// A fully connected layer of `units` × `depth` between fresh tensors.
struct Fc {
    x: Resource<TensorKey>,
    w: Resource<TensorKey>,
    y: Resource<TensorKey>,
}

impl Fc {
    fn new(st: &mut InstanceState, units: u32, depth: u32) -> Result<Fc, NnCallError> {
        Ok(Fc {
            x: create(st, &[1, depth])?,
            w: create(st, &[units, depth])?,
            y: create(st, &[1, units])?,
        })
    }

    fn op(&self) -> wops::Op {
        wops::Op::FullyConnected(wops::FullyConnected {
            input: borrow(&self.x),
            weights: borrow(&self.w),
            bias: None,
            output: borrow(&self.y),
            activation: wops::Activation::None,
        })
    }
}

#[test]
fn push_charges_the_prepared_operator_before_building_it() {
    let mut st = state();
    // 600 KiB of weights fit the quota once; their packed copy does not.
    let fc = Fc::new(&mut st, 600, 1024).expect("tensors");
    let base = used(&mut st);
    let plan = wplan::HostPlan::new(&mut st.nn_view(), exec()).expect("plan");
    let before = used(&mut st);
    quota_exceeded(wplan::HostPlan::push(
        &mut st.nn_view(),
        Resource::new_borrow(plan.rep()),
        fc.op(),
    ));
    assert_eq!(
        used(&mut st),
        before,
        "a refused push leaves nothing charged"
    );
    // A small layer is charged its weights and bookkeeping, and given back.
    let small = Fc::new(&mut st, 8, 8).expect("tensors");
    let at = used(&mut st);
    wplan::HostPlan::push(
        &mut st.nn_view(),
        Resource::new_borrow(plan.rep()),
        small.op(),
    )
    .expect("push");
    assert!(used(&mut st) > at);
    wplan::HostPlan::drop(&mut st.nn_view(), plan).expect("drop");
    for t in [small.x, small.w, small.y] {
        wt::HostTensor::drop(&mut st.nn_view(), t).expect("drop");
    }
    assert_eq!(
        used(&mut st),
        base,
        "dropping the plan and its tensors gives their charge back"
    );
}

#[test]
fn execute_is_charged_then_released_and_bounded_by_the_deadline() {
    let mut st = state();
    let fc = Fc::new(&mut st, 64, 256).expect("tensors");
    let before = used(&mut st);
    wops::Host::execute(&mut st.nn_view(), fc.op(), exec()).expect("runs");
    assert_eq!(used(&mut st), before, "nothing stays charged");
    // A window dilated past any memory is refused before anything is built.
    let x = create(&mut st, &[1, 1, 1, 1]).expect("x");
    let f = create(&mut st, &[1, 255, 255, 1]).expect("filter");
    let y = create(&mut st, &[1, 1, 1, 1]).expect("y");
    let huge = wops::Op::Conv2d(wops::Conv2d {
        input: borrow(&x),
        filter: borrow(&f),
        bias: None,
        output: borrow(&y),
        window: wops::Window {
            padding: wops::Padding::Same,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 60_000,
            dilation_w: 60_000,
        },
        activation: wops::Activation::None,
    });
    let at = used(&mut st);
    let r = wops::Host::execute(&mut st.nn_view(), huge, exec());
    assert!(
        matches!(
            r,
            Err(NnCallError::Nn(NnFault::QuotaExceeded(_)) | NnCallError::Nn(NnFault::Invalid(_)))
        ),
        "{r:?}"
    );
    assert_eq!(used(&mut st), at);
    // Past the deadline, even a small operator is not run.
    st.begin_call(Duration::ZERO);
    std::thread::sleep(Duration::from_millis(1));
    let r = wops::Host::execute(&mut st.nn_view(), fc.op(), exec());
    assert!(
        matches!(r, Err(NnCallError::Nn(NnFault::Deadline(_)))),
        "{r:?}"
    );
}

#[test]
fn run_and_invoke_stop_at_the_deadline_and_charge_their_results() {
    let mut st = state();
    let (units, depth) = (16, 4096);
    let fc = Fc::new(&mut st, units, depth).expect("tensors");
    let plan = wplan::HostPlan::new(&mut st.nn_view(), exec()).expect("plan");
    let p = || Resource::<Plan>::new_borrow(plan.rep());
    wplan::HostPlan::push(&mut st.nn_view(), p(), fc.op()).expect("push");
    wplan::HostPlan::run(&mut st.nn_view(), p()).expect("runs in time");
    let before = used(&mut st);
    // 10,000 inputs: 6.5 · 10^8 multiply-accumulates, more than 5 ms
    // allows on any set this runs on.
    st.begin_call(Duration::from_millis(5));
    let t = Instant::now();
    let data = vec![1; depth as usize * 10_000];
    let r = wplan::HostPlan::invoke(&mut st.nn_view(), p(), borrow(&fc.x), data, borrow(&fc.y));
    assert!(
        matches!(r, Err(NnCallError::Nn(NnFault::Deadline(_)))),
        "{:?}",
        r.map(|v| v.len())
    );
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(used(&mut st), before, "the result's charge is returned");
    st.begin_call(Duration::from_secs(10));
    // A result the quota cannot hold is refused before it is allocated.
    let amplified = vec![1; depth as usize * 65_536];
    quota_exceeded(wplan::HostPlan::invoke(
        &mut st.nn_view(),
        p(),
        borrow(&fc.x),
        amplified,
        borrow(&fc.y),
    ));
    let four = vec![1; depth as usize * 4];
    let out = wplan::HostPlan::invoke(&mut st.nn_view(), p(), borrow(&fc.x), four, borrow(&fc.y))
        .expect("four fit");
    assert_eq!(out.len(), 4 * units as usize);
    assert_eq!(used(&mut st), before);
    st.begin_call(Duration::ZERO);
    std::thread::sleep(Duration::from_millis(1));
    let r = wplan::HostPlan::run(&mut st.nn_view(), p());
    assert!(
        matches!(r, Err(NnCallError::Nn(NnFault::Deadline(_)))),
        "{r:?}"
    );
}

#[test]
fn log_keeps_2_kib_a_line_and_clock_costs_nothing() {
    let mut st = state();
    log::Host::log(&mut st, log::Level::Error, "x".repeat(1 << 20)).expect("log");
    let kept = st.last_error.as_ref().map_or(0, String::len);
    assert!(kept <= 2048 + 4, "kept {kept} bytes of a 1 MiB line");
    for _ in 0..10_000 {
        log::Host::log(&mut st, log::Level::Info, "flood".into()).expect("log");
    }
    let a = clock::Host::now(&mut st).expect("now");
    let b = clock::Host::now(&mut st).expect("now");
    assert!(b >= a);
    assert_eq!(used(&mut st), 0);
}

mod runtimes {
    use super::*;
    use crate::bindings::runtimes::gatehouse::nn0_3_0::runtimes as wrt;

    /// 0.3.0's plans are 0.1.0's: charged alike, and they take 0.1.0's
    /// operators. Under onnxruntime's semantics an operator whose
    /// arithmetic there is not reproduced is refused with `unsupported`
    /// (an error the guest can handle), and nothing stays charged.
    #[test]
    fn new_plan_takes_the_third_semantics_and_refuses_what_it_cannot_reproduce() {
        let (mut st, filler) = plan_at_brim();
        let e = wrt::Host::new_plan(&mut st.nn_view(), wrt::Semantics::Onnxruntime)
            .expect_err("no room for a plan");
        assert!(format!("{e}").contains("quota"), "{e}");
        wt::HostTensor::drop(&mut st.nn_view(), filler).expect("drop");

        let fc = Fc::new(&mut st, 8, 16).expect("tensors");
        let plan =
            wrt::Host::new_plan(&mut st.nn_view(), wrt::Semantics::Onnxruntime).expect("plan");
        let at =
            wplan::HostPlan::push(&mut st.nn_view(), Resource::new_borrow(plan.rep()), fc.op())
                .expect("a fully connected layer is one of onnxruntime's fused kernels");
        assert_eq!(at, 0);
        wplan::HostPlan::run(&mut st.nn_view(), Resource::new_borrow(plan.rep())).expect("runs");

        let before = used(&mut st);
        let tanh = wops::Op::Tanh(wops::Unary {
            input: borrow(&fc.y),
            output: borrow(&fc.y),
        });
        let r = wplan::HostPlan::push(&mut st.nn_view(), Resource::new_borrow(plan.rep()), tanh);
        assert!(
            matches!(&r, Err(NnCallError::Nn(NnFault::Unsupported(m))) if m.contains("onnxruntime")),
            "{r:?}"
        );
        assert_eq!(
            used(&mut st),
            before,
            "a refused push leaves nothing charged"
        );
        wplan::HostPlan::drop(&mut st.nn_view(), plan).expect("drop");
    }

    /// 0.4.0's fourth semantics: an addition of uint8 tensors given as
    /// int8 less 128 is summed on the uint8 values. The pair is one where
    /// the two sums round apart (onnxruntime 1.32 gives uint8 13).
    #[test]
    fn version_4_adds_uint8_activations_as_onnxruntime_does() {
        use crate::bindings::runtimes_uint8::gatehouse::nn0_4_0::runtimes as wrt4;
        let mut st = state();
        let mut tensor = |scale: f32, zero_point: i32, byte: Option<i8>| {
            let desc = wt::TensorDesc {
                quantization: Some(wt::Quantization {
                    scales: vec![scale],
                    zero_points: vec![zero_point - 128],
                    axis: 0,
                }),
                ..i8_desc(&[1])
            };
            let t = wt::HostTensor::create(&mut st.nn_view(), desc).expect("fits");
            if let Some(b) = byte {
                wt::HostTensor::write(&mut st.nn_view(), borrow(&t), 0, vec![b as u8])
                    .expect("fits");
            }
            t
        };
        let a = tensor(0.0041, 225, Some((218 - 128) as i8));
        let b = tensor(0.0343, 87, Some((30 - 128) as i8));
        let y = tensor(0.0436, 58, None);
        let add = || {
            wops::Op::Add(wops::Binary {
                a: borrow(&a),
                b: borrow(&b),
                output: borrow(&y),
                activation: wops::Activation::None,
            })
        };
        let mut sum = |s| {
            wrt4::Host::execute(&mut st.nn_view(), add(), s).expect("runs");
            wt::HostTensor::read(&mut st.nn_view(), borrow(&y)).expect("read")[0] as i8 as i32
        };
        assert_eq!(sum(wrt4::Semantics::OnnxruntimeUint8), 13 - 128);
        assert_eq!(
            sum(wrt4::Semantics::Onnxruntime),
            12 - 128,
            "int8 rounds apart"
        );
        let plan = wrt4::Host::new_plan(&mut st.nn_view(), wrt4::Semantics::OnnxruntimeUint8)
            .expect("plan");
        wplan::HostPlan::push(&mut st.nn_view(), Resource::new_borrow(plan.rep()), add())
            .expect("an addition is taken");
        wplan::HostPlan::drop(&mut st.nn_view(), plan).expect("drop");
    }

    /// 0.4.0's `more-ops`: a transpose moves bytes under any semantics; a
    /// leaky relu is onnxruntime's only; a bad permutation is the guest's
    /// error, not a trap.
    #[test]
    fn more_ops_transpose_and_leaky_relu() {
        use crate::bindings::runtimes_uint8::gatehouse::nn0_4_0::more_ops as wmore;
        use crate::bindings::runtimes_uint8::gatehouse::nn0_4_0::runtimes as wrt4;
        let mut st = state();
        let x = create(&mut st, &[2, 3]).expect("fits");
        wt::HostTensor::write(&mut st.nn_view(), borrow(&x), 0, vec![1, 2, 3, 4, 5, 0xfb])
            .expect("fits");
        let y = create(&mut st, &[3, 2]).expect("fits");
        let transpose = |perm: Vec<u32>| {
            wmore::Op::Transpose(wmore::Transpose {
                input: borrow(&x),
                output: borrow(&y),
                perm,
            })
        };
        wmore::Host::execute(
            &mut st.nn_view(),
            transpose(vec![1, 0]),
            wrt4::Semantics::TfliteMicro,
        )
        .expect("runs");
        let got = wt::HostTensor::read(&mut st.nn_view(), borrow(&y)).expect("read");
        assert_eq!(got, [1, 4, 2, 5, 3, 0xfb]);
        for bad in [vec![0, 0], vec![0], vec![0, 1, 2, 3, 4, 5, 6]] {
            let r = wmore::Host::execute(
                &mut st.nn_view(),
                transpose(bad),
                wrt4::Semantics::Onnxruntime,
            );
            assert!(matches!(r, Err(NnCallError::Nn(_))), "{r:?}");
        }

        // Scales 0.05 on both sides, alpha 0.5: -5 → -2.5 → -2 (half to even).
        let y = create(&mut st, &[2, 3]).expect("fits");
        let leaky = || {
            wmore::Op::LeakyRelu(wmore::LeakyRelu {
                input: borrow(&x),
                output: borrow(&y),
                alpha: 0.5,
            })
        };
        wmore::Host::execute(&mut st.nn_view(), leaky(), wrt4::Semantics::Onnxruntime)
            .expect("runs");
        let got = wt::HostTensor::read(&mut st.nn_view(), borrow(&y)).expect("read");
        assert_eq!(got, [1, 2, 3, 4, 5, (-2i8) as u8]);
        let r = wmore::Host::execute(&mut st.nn_view(), leaky(), wrt4::Semantics::TfliteReference);
        assert!(
            matches!(&r, Err(NnCallError::Nn(NnFault::Unsupported(_)))),
            "{r:?}"
        );
        let plan =
            wrt4::Host::new_plan(&mut st.nn_view(), wrt4::Semantics::Onnxruntime).expect("plan");
        let at = wmore::Host::push(&mut st.nn_view(), Resource::new_borrow(plan.rep()), leaky())
            .expect("pushed");
        assert_eq!(at, 0);
        wplan::HostPlan::drop(&mut st.nn_view(), plan).expect("drop");
    }

    /// 0.4.0's `dynamic`: DynamicQuantizeLinear fills its three outputs
    /// (ONNX's documented example); onnxruntime's only; a bad value is the
    /// guest's error, and the instance goes on.
    #[test]
    fn dynamic_quantize_fills_three_outputs() {
        use crate::bindings::runtimes_uint8::gatehouse::nn0_4_0::dynamic as wdyn;
        use crate::bindings::runtimes_uint8::gatehouse::nn0_4_0::runtimes as wrt4;
        let mut st = state();
        let plain = |dtype, n| wt::TensorDesc {
            dtype,
            shape: vec![n],
            quantization: None,
        };
        let mut make = |d| wt::HostTensor::create(&mut st.nn_view(), d).expect("fits");
        let x = make(plain(wt::Dtype::Float32, 6));
        let y = make(plain(wt::Dtype::Uint8, 6));
        let s = make(plain(wt::Dtype::Float32, 1));
        let z = make(plain(wt::Dtype::Uint8, 1));
        let floats = |v: [f32; 6]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
        let write = |st: &mut InstanceState, v| {
            wt::HostTensor::write(&mut st.nn_view(), borrow(&x), 0, floats(v)).expect("fits")
        };
        let op = || wdyn::DynamicQuantize {
            input: borrow(&x),
            output: borrow(&y),
            scale: borrow(&s),
            zero_point: borrow(&z),
        };
        write(&mut st, [0.0, 2.0, -3.0, -2.5, 1.34, 0.5]);
        wdyn::Host::execute(&mut st.nn_view(), op(), wrt4::Semantics::OnnxruntimeUint8)
            .expect("runs");
        let read = |st: &mut InstanceState, t| {
            wt::HostTensor::read(&mut st.nn_view(), borrow(t)).expect("read")
        };
        assert_eq!(read(&mut st, &y), [153, 255, 0, 26, 221, 179]);
        assert_eq!(read(&mut st, &s), (5.0f32 / 255.0).to_le_bytes());
        assert_eq!(read(&mut st, &z), [153]);
        let r = wdyn::Host::execute(&mut st.nn_view(), op(), wrt4::Semantics::TfliteMicro);
        assert!(
            matches!(&r, Err(NnCallError::Nn(NnFault::Unsupported(_)))),
            "{r:?}"
        );
        write(&mut st, [0.0, f32::INFINITY, 0.0, 0.0, 0.0, 0.0]);
        let r = wdyn::Host::execute(&mut st.nn_view(), op(), wrt4::Semantics::Onnxruntime);
        assert!(
            matches!(&r, Err(NnCallError::Nn(NnFault::Invalid(_)))),
            "{r:?}"
        );
        let plan =
            wrt4::Host::new_plan(&mut st.nn_view(), wrt4::Semantics::Onnxruntime).expect("plan");
        let at = wdyn::Host::push(&mut st.nn_view(), Resource::new_borrow(plan.rep()), op())
            .expect("pushed");
        assert_eq!(at, 0);
        wplan::HostPlan::drop(&mut st.nn_view(), plan).expect("drop");
    }

    /// QuantizeLinear in blocks through `linear-quant` (ONNX's blocked
    /// example's shape, [3, 4] in blocks of 2 along axis 1); onnxruntime's
    /// only; parameters that do not fit are the guest's error.
    #[test]
    fn linear_quant_takes_a_parameter_per_block() {
        use crate::bindings::runtimes_uint8::gatehouse::nn0_4_0::linear_quant as wlin;
        use crate::bindings::runtimes_uint8::gatehouse::nn0_4_0::runtimes as wrt4;
        let mut st = state();
        let plain = |dtype, shape: &[u32]| wt::TensorDesc {
            dtype,
            shape: shape.to_vec(),
            quantization: None,
        };
        let mut make = |d| wt::HostTensor::create(&mut st.nn_view(), d).expect("fits");
        let x = make(plain(wt::Dtype::Float32, &[3, 4]));
        let y = make(plain(wt::Dtype::Int8, &[3, 4]));
        let s = make(plain(wt::Dtype::Float32, &[3, 2]));
        let z = make(plain(wt::Dtype::Int8, &[3, 2]));
        let odd = make(plain(wt::Dtype::Float32, &[3, 3]));
        let floats = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
        for (t, bytes) in [
            (&x, floats(&[12.0; 12])),
            (&s, floats(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
            (&z, vec![0, 1, 0, 0xff, 0, 0]),
        ] {
            wt::HostTensor::write(&mut st.nn_view(), borrow(t), 0, bytes).expect("fits");
        }
        let op = |scale: &Resource<TensorKey>| {
            wlin::Op::Quantize(wlin::QuantizeLinear {
                input: borrow(&x),
                output: borrow(&y),
                params: wlin::Params {
                    scale: borrow(scale),
                    zero_point: borrow(&z),
                    axis: 1,
                    block_size: 2,
                },
            })
        };
        wlin::Host::execute(&mut st.nn_view(), op(&s), wrt4::Semantics::Onnxruntime).expect("runs");
        let got = wt::HostTensor::read(&mut st.nn_view(), borrow(&y)).expect("read");
        assert_eq!(got, [12, 12, 7, 7, 4, 4, 2, 2, 2, 2, 2, 2]);
        let r = wlin::Host::execute(&mut st.nn_view(), op(&s), wrt4::Semantics::TfliteReference);
        assert!(
            matches!(&r, Err(NnCallError::Nn(NnFault::Unsupported(_)))),
            "{r:?}"
        );
        let r = wlin::Host::execute(&mut st.nn_view(), op(&odd), wrt4::Semantics::Onnxruntime);
        assert!(
            matches!(&r, Err(NnCallError::Nn(NnFault::Invalid(_)))),
            "{r:?}"
        );
    }

    #[test]
    fn execute_runs_under_each_semantics() {
        let mut st = state();
        let fc = Fc::new(&mut st, 4, 32).expect("tensors");
        for s in [
            wrt::Semantics::TfliteReference,
            wrt::Semantics::TfliteMicro,
            wrt::Semantics::Onnxruntime,
        ] {
            wrt::Host::execute(&mut st.nn_view(), fc.op(), s).expect("runs");
        }
    }
}
