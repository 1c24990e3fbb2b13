//! `hostile`: a test plugin that misbehaves on purpose, to prove the sandbox
//! holds. The `mode` setting picks the misbehaviour; `process` performs it.
//! It takes batches (`gatehouse:plugin/batched@0.2.0`), each input as
//! `process` would, so misbehaviour inside a batch is tested too.
//! Never deploy this.

use std::cell::RefCell;

use gatehouse_sdk::nn::{Dtype, Tensor, TensorDesc};
use gatehouse_sdk::{
    Batch, Config, Descriptor, Inference, InputKind, Plugin, PluginError, Stat,
    export_batched_plugin, log, setting,
};

struct Hostile;

thread_local! {
    static MODE: RefCell<String> = const { RefCell::new(String::new()) };
    static HOARD: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
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
                let t = Tensor::create(&TensorDesc::new(Dtype::Int8, &[4], None))
                    .map_err(|e| PluginError::Kernel(e.message()))?;
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
                    Err(e) => Err(PluginError::Kernel(e.message())),
                }
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            // std links WASI; the host grants none of it, so each of these traps.
            "wasi-env" => Ok(Inference {
                label: Some(std::env::vars().count().to_string()),
                ..Inference::empty()
            }),
            "wasi-file" => Ok(Inference {
                output: std::fs::read("/etc/passwd").ok(),
                ..Inference::empty()
            }),
            "wasi-clock" => Ok(Inference {
                score: Some(
                    std::time::SystemTime::now()
                        .elapsed()
                        .map(|d| d.as_secs_f64())
                        .unwrap_or(0.0),
                ),
                ..Inference::empty()
            }),
            other => Err(PluginError::InvalidConfig(format!(
                "unknown mode {other:?}"
            ))),
        }
    }

    fn stats() -> Vec<Stat> {
        vec![]
    }
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
