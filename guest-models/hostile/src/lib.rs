//! `hostile`: a test plugin that misbehaves on purpose, to prove the sandbox
//! holds. The `mode` setting picks the misbehaviour; `init` prepares what it
//! needs (so that a mode's `process` spends its deadline on the abuse
//! itself), and `process` performs it. Sizes come from settings, so a test
//! can scale an abuse to the machine. It takes batches
//! (`gatehouse:plugin/batched@0.2.0`), each input as `process` would, so
//! misbehaviour inside a batch is tested too. Never deploy this.
//!
//! Modes that ask the host for work report what the host answered: an
//! `nn-error` becomes a `kernel` plugin error carrying its message, so a
//! test can tell a refusal the plugin could handle from a trap.

use std::cell::RefCell;

use gatehouse_sdk::host_audio as ha;
use gatehouse_sdk::nn::{
    self, Activation, Dtype, ExecOptions, Op, Plan, Quantization, Tensor, TensorDesc, Window,
};
use gatehouse_sdk::{
    Batch, Config, Descriptor, Inference, InputKind, Plugin, PluginError, Stat,
    export_batched_plugin, log, setting,
};

struct Hostile;

/// What a mode prepared in `init`.
#[derive(Default)]
struct Prepared {
    plan: Option<Plan>,
    tensors: Vec<Tensor>,
    /// Bytes of one input of `plan.invoke`, and how many to send.
    input_len: usize,
    inputs: usize,
}

thread_local! {
    static MODE: RefCell<String> = const { RefCell::new(String::new()) };
    static HOARD: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static PREPARED: RefCell<Prepared> = RefCell::new(Prepared::default());
    static SETTINGS: RefCell<Config> = RefCell::new(Config { model: None, settings: vec![] });
}

fn number(config: &Config, key: &str, default: u32) -> Result<u32, PluginError> {
    match setting(config, key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| PluginError::InvalidConfig(format!("{key}={v:?} is not a number"))),
    }
}

fn host(e: nn::NnError) -> PluginError {
    PluginError::Kernel(e.message())
}

fn i8_desc(shape: &[u32]) -> TensorDesc {
    TensorDesc::new(Dtype::Int8, shape, Some(Quantization::per_tensor(0.05, 0)))
}

impl Plugin for Hostile {
    fn describe() -> Descriptor {
        Descriptor {
            name: "hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Sandbox test plugin: loops, hoards memory, forges handles (mode setting)"
                .into(),
            input_kinds: vec![InputKind::RawTensor],
            labels: vec![],
        }
    }

    fn init(config: Config) -> Result<(), PluginError> {
        log::install_panic_hook();
        let mode = setting(&config, "mode").unwrap_or("ok").to_string();
        if mode == "loop-in-init" {
            spin();
        }
        let prepared = match mode.as_str() {
            "amplify" => amplifier(&config)?,
            "long-host-call" => long_host_call(&config)?,
            _ => Prepared::default(),
        };
        PREPARED.with(|p| *p.borrow_mut() = prepared);
        SETTINGS.with(|c| *c.borrow_mut() = config);
        MODE.with(|m| *m.borrow_mut() = mode);
        Ok(())
    }

    fn process(input: Vec<u8>) -> Result<Inference, PluginError> {
        let mode = MODE.with(|m| m.borrow().clone());
        match mode.as_str() {
            "ok" => Ok(Inference {
                output: Some(input),
                ..Inference::empty()
            }),
            "loop" => spin(),
            // Recurses with a kilobyte of stack per call until the stack
            // (128 KiB, first in linear memory) runs out below address 0.
            "deep-recursion" => {
                let depth = recurse(0);
                Ok(Inference {
                    score: Some(depth as f64),
                    ..Inference::empty()
                })
            }
            // Echoes, but traps on an input whose first byte is 0xff.
            "trap-on-ff" if input.first() == Some(&0xff) => panic!("input starts with 0xff"),
            "trap-on-ff" => Ok(Inference {
                output: Some(input),
                ..Inference::empty()
            }),
            "alloc" => {
                // Grow linear memory a megabyte at a time, forever.
                loop {
                    HOARD.with(|h| h.borrow_mut().push(vec![1u8; 1 << 20]));
                }
            }
            "forge-handle" => {
                // A handle number this instance was never given.
                let forged = unsafe { Tensor::from_handle(0x00ab_cdef) };
                let bytes = forged.read();
                Ok(Inference {
                    output: Some(bytes),
                    ..Inference::empty()
                })
            }
            "stale-handle" => {
                let t = Tensor::create(&TensorDesc::new(Dtype::Int8, &[4], None)).map_err(host)?;
                let raw = t.take_handle();
                // Drop it through the host, then use the number again.
                drop(unsafe { Tensor::from_handle(raw) });
                let stale = unsafe { Tensor::from_handle(raw) };
                Ok(Inference {
                    output: Some(stale.read()),
                    ..Inference::empty()
                })
            }
            "huge-tensor" => {
                let desc = TensorDesc::new(Dtype::Int8, &[1 << 20, 1 << 20], None);
                match Tensor::create(&desc) {
                    Ok(_) => Ok(Inference::empty()),
                    Err(e) => Err(host(e)),
                }
            }
            "amplify" | "long-host-call" => invoke_prepared(),
            "huge-op" => huge_op(&input),
            "hoard-tensors" => hoard_tensors(),
            "tensor-churn" => tensor_churn(),
            "brim" => brim(),
            "brim-read" => brim_read(),
            "dsp-amplify" | "dsp-huge" => dsp_call(&mode),
            "dsp-hoard" => dsp_hoard(),
            "panic" => panic!("hostile plugin panicked on purpose"),
            // What WASI grants and denies, one line per attempt.
            "wasi-probe" => Ok(Inference {
                output: Some(wasi_probe().into_bytes()),
                ..Inference::empty()
            }),
            // Says why on stderr, then aborts (no panic, so no hook runs).
            "stderr-then-abort" => {
                eprintln!("vendor diagnostics: reason 42");
                std::process::abort()
            }
            // Sleeps an hour: a host call the epoch cannot interrupt.
            "wasi-sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(Inference::empty())
            }
            // Prints `lines` (100,000) lines to stdout and stderr, then answers.
            "wasi-print-flood" => {
                let lines = number(&SETTINGS.with(|c| c.borrow().clone()), "lines", 100_000)?;
                for i in 0..lines {
                    println!("flood line {i} {}", "x".repeat(100));
                    eprintln!("flood line {i}");
                }
                Ok(Inference::empty())
            }
            // Counts its calls in `/state/count` (needs the `state` grant).
            "state-count" => {
                let path = "/state/count";
                let n: u64 = match std::fs::read_to_string(path) {
                    Ok(t) => t.trim().parse().unwrap_or(0),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                    Err(e) => return Err(PluginError::Kernel(format!("read {path}: {e}"))),
                };
                std::fs::write(path, format!("{}\n", n + 1))
                    .map_err(|e| PluginError::Kernel(format!("write {path}: {e}")))?;
                Ok(Inference {
                    score: Some((n + 1) as f64),
                    ..Inference::empty()
                })
            }
            // Writes 64 KiB chunks to `/state/fill-N` files until refused;
            // reports the bytes it got in and the error.
            "state-fill" => {
                use std::io::Write;
                let mut written = 0u64;
                let mut file = 0;
                let err = 'fill: loop {
                    let mut f = match std::fs::File::create(format!("/state/fill-{file}")) {
                        Ok(f) => f,
                        Err(e) => break 'fill e,
                    };
                    for _ in 0..16 {
                        if let Err(e) = f.write_all(&[7u8; 64 << 10]).and_then(|_| f.flush()) {
                            break 'fill e;
                        }
                        written += 64 << 10;
                    }
                    file += 1;
                };
                Ok(Inference {
                    score: Some(written as f64),
                    label: Some(format!("{:?}: {err}", err.kind())),
                    ..Inference::empty()
                })
            }
            other => Err(PluginError::InvalidConfig(format!(
                "unknown mode {other:?}"
            ))),
        }
    }

    fn stats() -> Vec<Stat> {
        vec![]
    }
}

/// A result amplifier: an empty plan between a 1-byte input and an output
/// of `output-mib` (16) MiB, invoked with `inputs` (256) one-byte inputs,
/// asks the host for `inputs` copies of the output.
fn amplifier(config: &Config) -> Result<Prepared, PluginError> {
    let mib = number(config, "output-mib", 16)?;
    let input = Tensor::create(&i8_desc(&[1])).map_err(host)?;
    let output = Tensor::create(&i8_desc(&[mib << 20])).map_err(host)?;
    Ok(Prepared {
        plan: Some(Plan::new(ExecOptions::reference())),
        tensors: vec![input, output],
        input_len: 1,
        inputs: number(config, "inputs", 256)? as usize,
    })
}

/// A long host call: one fully connected layer of `units` × `depth`
/// (4096 × 4096, 16 MiB of weights) invoked on `inputs` (3000) inputs at once.
fn long_host_call(config: &Config) -> Result<Prepared, PluginError> {
    let units = number(config, "units", 4096)?;
    let depth = number(config, "depth", 4096)?;
    let weights = Tensor::create(&i8_desc(&[units, depth])).map_err(host)?;
    weights
        .write(0, &vec![3u8; units as usize * depth as usize])
        .map_err(host)?;
    let input = Tensor::create(&i8_desc(&[1, depth])).map_err(host)?;
    let output = Tensor::create(&i8_desc(&[1, units])).map_err(host)?;
    let plan = Plan::new(ExecOptions::reference());
    plan.push(&Op::FullyConnected(nn::FullyConnected {
        input: &input,
        weights: &weights,
        bias: None,
        output: &output,
        activation: Activation::None,
    }))
    .map_err(host)?;
    // The layer holds its own copy; the plugin's is dropped here.
    drop(weights);
    Ok(Prepared {
        plan: Some(plan),
        tensors: vec![input, output],
        input_len: depth as usize,
        inputs: number(config, "inputs", 3000)? as usize,
    })
}

/// `plan.invoke` of what `init` prepared, on its many inputs.
fn invoke_prepared() -> Result<Inference, PluginError> {
    PREPARED.with(|p| {
        let p = p.borrow();
        let (Some(plan), [input, output]) = (&p.plan, p.tensors.as_slice()) else {
            return Err(PluginError::NotInitialized);
        };
        let data = vec![1u8; p.input_len * p.inputs];
        let out = plan.invoke(input, &data, output).map_err(host)?;
        Ok(Inference {
            score: Some(out.len() as f64),
            ..Inference::empty()
        })
    })
}

/// One huge operator: a convolution whose every output reads a window of
/// `kernel` × `kernel` × `channels` taps (input 1 × `size` × `size` ×
/// `channels`, same padding, 16 output channels): small tensors, a huge
/// number of multiply-accumulates. The input bytes give the sizes as
/// `size,kernel,channels` in decimal (default `256,32,64`).
fn huge_op(input: &[u8]) -> Result<Inference, PluginError> {
    let text = String::from_utf8_lossy(input);
    let dims: Vec<u32> = text
        .trim()
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let [size, kernel, channels] = dims[..] else {
        return huge_op(b"256,32,64");
    };
    let x = Tensor::create(&i8_desc(&[1, size, size, channels])).map_err(host)?;
    let filter = Tensor::create(&i8_desc(&[16, kernel, kernel, channels])).map_err(host)?;
    let y = Tensor::create(&i8_desc(&[1, size, size, 16])).map_err(host)?;
    nn::execute(
        &Op::Conv2d(nn::Conv2d {
            input: &x,
            filter: &filter,
            bias: None,
            output: &y,
            window: Window {
                padding: nn::Padding::Same,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
            },
            activation: Activation::None,
        }),
        ExecOptions::reference(),
    )
    .map_err(host)?;
    Ok(Inference::empty())
}

/// Tiny tensors, kept, until the host refuses one: the count is the score.
fn hoard_tensors() -> Result<Inference, PluginError> {
    let mut kept = Vec::new();
    loop {
        match Tensor::create(&TensorDesc::new(Dtype::Int8, &[1], None)) {
            Ok(t) => kept.push(t),
            Err(e) => {
                return Ok(Inference {
                    label: Some(e.message()),
                    score: Some(kept.len() as f64),
                    ..Inference::empty()
                });
            }
        }
    }
}

/// A million `tensor.create` calls, each tensor dropped at once.
fn tensor_churn() -> Result<Inference, PluginError> {
    let desc = TensorDesc::new(Dtype::Int8, &[16], None);
    for _ in 0..1_000_000 {
        drop(Tensor::create(&desc).map_err(host)?);
    }
    Ok(Inference {
        score: Some(1e6),
        ..Inference::empty()
    })
}

/// Fill the tensor quota to the byte, then ask for a little more in every
/// way that has an error the plugin can handle. Each attempt is a score
/// labelled `what: outcome` (`ok` or the host's message); the label is the
/// quota left at the brim.
fn brim() -> Result<Inference, PluginError> {
    // Everything the attempts use is made first, while there is room.
    let x = Tensor::create(&i8_desc(&[1, 16])).map_err(host)?;
    let w = Tensor::create(&i8_desc(&[16, 16])).map_err(host)?;
    let y = Tensor::create(&i8_desc(&[1, 16])).map_err(host)?;
    let plan = Plan::new(ExecOptions::reference());
    let empty = Plan::new(ExecOptions::reference());
    let small = ha::FrontEnd::create(front_end(64, 64, None, None)).map_err(host)?;
    let fc = Op::FullyConnected(nn::FullyConnected {
        input: &x,
        weights: &w,
        bias: None,
        output: &y,
        activation: Activation::None,
    });
    // The filler's own slot costs some bytes beyond its data: find the
    // largest filler that fits by asking for a byte less each time.
    let usage = nn::usage();
    let mut want = usage.quota.saturating_sub(usage.used).min(u32::MAX as u64) as u32;
    let filler = loop {
        match Tensor::create(&TensorDesc::new(Dtype::Uint8, &[want], None)) {
            Ok(t) => break t,
            Err(_) if want > 0 => want -= 1,
            Err(e) => return Err(host(e)),
        }
    };
    let left = nn::usage();
    let outcome = |r: Result<(), nn::NnError>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.message(),
    };
    let attempts = [
        ("create", outcome(Tensor::create(&i8_desc(&[1])).map(drop))),
        ("view", outcome(filler.view(0, &i8_desc(&[1])).map(drop))),
        ("plan-push", outcome(plan.push(&fc).map(drop))),
        (
            "execute",
            outcome(nn::execute(&fc, ExecOptions::reference())),
        ),
        // An empty plan between x and y: only its 16 results are asked for.
        (
            "invoke-result",
            outcome(empty.invoke(&x, &[0u8; 256], &y).map(drop)),
        ),
        (
            "dsp-create",
            outcome(ha::FrontEnd::create(front_end(64, 64, None, None)).map(drop)),
        ),
        ("dsp-features", outcome(small.float(&[0.5; 4096]).map(drop))),
    ];
    drop(filler);
    Ok(Inference {
        label: Some(left.quota.saturating_sub(left.used).to_string()),
        scores: attempts
            .into_iter()
            .map(|(what, outcome)| gatehouse_sdk::LabelScore {
                label: format!("{what}: {outcome}"),
                score: 0.0,
            })
            .collect(),
        ..Inference::empty()
    })
}

/// A host front end: frames of `fft` points every `hop` samples, with
/// optional mel bands and DCT.
fn front_end(fft: u32, hop: u32, mel: Option<u32>, dct: Option<u32>) -> ha::Config {
    ha::Config {
        clip: None,
        peak_normalize: false,
        frame: fft,
        hop,
        fft,
        window: ha::Window::HannPeriodic,
        magnitude: ha::Magnitude::Power,
        mel: mel.map(|bands| ha::MelBands {
            bands,
            sample_rate: 16000.0,
            low_hz: 0.0,
            high_hz: 8000.0,
        }),
        log_offset: None,
        dct,
    }
}

/// `dsp-amplify`: every sample starts a 16,384-point frame of 8,193
/// values, 64 KiB of features per input sample. `dsp-huge`: the same
/// frames reduced to one value each, so the result is small but the work
/// (10^6 flops a frame) is not. `samples` (2^20) samples each.
fn dsp_call(mode: &str) -> Result<Inference, PluginError> {
    let n = number(&SETTINGS.with(|c| c.borrow().clone()), "samples", 1 << 20)?;
    let config = if mode == "dsp-amplify" {
        front_end(16384, 1, None, None)
    } else {
        front_end(16384, 1, Some(1), Some(1))
    };
    let fe = ha::FrontEnd::create(config).map_err(host)?;
    let out = fe.float(&vec![0.5; n as usize]).map_err(host)?;
    Ok(Inference {
        score: Some(out.len() as f64),
        ..Inference::empty()
    })
}

/// `dsp-hoard`: the largest front ends (34 MiB of tables each), kept until
/// the host refuses one; reports how many it got and the refusal.
fn dsp_hoard() -> Result<Inference, PluginError> {
    let mut kept = Vec::new();
    let refusal = loop {
        match ha::FrontEnd::create(front_end(16384, 16384, Some(512), Some(512))) {
            Ok(fe) => kept.push(fe),
            Err(e) => break e.message(),
        }
        if kept.len() > 1000 {
            break "never refused".into();
        }
    };
    Ok(Inference {
        label: Some(refusal),
        score: Some(kept.len() as f64),
        ..Inference::empty()
    })
}

/// Reading a tensor out copies it in the host, charged while it is held:
/// with the quota full, `read` (which has no error type) must trap.
fn brim_read() -> Result<Inference, PluginError> {
    let usage = nn::usage();
    let half = (usage.quota - usage.used) / 2;
    let big = Tensor::create(&TensorDesc::new(Dtype::Uint8, &[half as u32], None)).map_err(host)?;
    // Leave less than the tensor's size free.
    let _rest =
        Tensor::create(&TensorDesc::new(Dtype::Uint8, &[(half / 2) as u32], None)).map_err(host)?;
    let bytes = big.read();
    Ok(Inference {
        score: Some(bytes.len() as f64),
        ..Inference::empty()
    })
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 1024]);
    // Never true: depth only grows; the call is not a tail call because
    // the frame is read after it.
    if depth == u64::MAX {
        return depth;
    }
    recurse(depth + 1) + u64::from(std::hint::black_box(frame)[0])
}

fn spin() -> ! {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

impl Batch for Hostile {
    fn process_batch(inputs: Vec<Vec<u8>>) -> Vec<Result<Inference, PluginError>> {
        inputs
            .into_iter()
            .map(<Hostile as Plugin>::process)
            .collect()
    }
}

export_batched_plugin!(Hostile);

/// Tries what a vendor's code might try; a line per attempt, `ok: ...` or
/// `err: ...`, so a test can check each grant and denial.
fn wasi_probe() -> String {
    fn line<T: std::fmt::Debug, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> String {
        match r {
            Ok(v) => format!("{what} ok: {:.60}\n", format!("{v:?}")),
            Err(e) => format!("{what} err: {e}\n"),
        }
    }
    let mut out = String::new();
    out += &line("read-passwd", std::fs::read("/etc/passwd").map(|b| b.len()));
    out += &line("list-root", std::fs::read_dir("/").map(|d| d.count()));
    out += &line("list-dot", std::fs::read_dir(".").map(|d| d.count()));
    out += &line("write-tmp", std::fs::write("/tmp/gatehouse-probe", b"x"));
    out += &line(
        "state-dotdot",
        std::fs::read("/state/../etc/passwd").map(|b| b.len()),
    );
    out += &line(
        "state-link",
        std::fs::read("/state/etc/passwd").map(|b| b.len()),
    );
    out += &line("list-state", std::fs::read_dir("/state").map(|d| d.count()));
    out += &line("env-path", std::env::var("PATH"));
    out += &line(
        "env-count",
        match std::env::vars().count() {
            0 => Err("empty"),
            n => Ok(n),
        },
    );
    out += &line(
        "args",
        match std::env::args().count() {
            0 => Err("none"),
            n => Ok(n),
        },
    );
    out += &line("tcp-connect", std::net::TcpStream::connect("127.0.0.1:22"));
    out += &line("tcp-bind", std::net::TcpListener::bind("127.0.0.1:0"));
    out += &line("udp-bind", std::net::UdpSocket::bind("127.0.0.1:0"));
    out += &line(
        "dns",
        std::net::ToSocketAddrs::to_socket_addrs("localhost:80").map(|a| a.count()),
    );
    out += &line(
        "wall-clock",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH),
    );
    let t = std::time::Instant::now();
    out += &line("monotonic-clock", Ok::<_, String>(t.elapsed()));
    out += &line("random", random_hash());
    let mut stdin = String::new();
    out += &line(
        "stdin",
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut stdin),
    );
    out += &line(
        "stdout",
        std::io::Write::write_all(&mut std::io::stdout(), b"probe on stdout\n"),
    );
    out
}

/// A hash of a fixed value under std's `RandomState`, whose keys come from
/// WASI random: two sandboxes print the same number only if random repeats.
fn random_hash() -> Result<u64, String> {
    use std::hash::BuildHasher;
    Ok(std::collections::hash_map::RandomState::new().hash_one(42u32))
}
