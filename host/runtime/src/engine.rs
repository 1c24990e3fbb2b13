//! The shared engine: wasmtime configured for sandboxed plugins (pooling
//! allocator, epoch interruption), the linker with the host's imports, the
//! artifact cache, and the kernel set chosen once at start.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use gatehouse_kernels::{KernelSet, dispatch};
use gatehouse_nn::Threads;
use wasmtime::component::{HasSelf, Linker, ResourceType};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings;
use crate::cache::ArtifactCache;
use crate::error::Error;
use crate::nn_host::HasNn;
use crate::plugin::state::InstanceState;
use gatehouse_nn::{Pace, TensorKey};

/// How the runtime is set up.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where compiled artifacts are kept; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// Instances the pooling allocator reserves room for.
    pub max_instances: u32,
    /// Largest linear memory any instance may have; per-plugin caps sit below it.
    pub max_memory_bytes: usize,
    /// Granularity of CPU deadlines.
    pub epoch_tick: Duration,
    /// Threads one inference may split its big layers over: the calling
    /// thread and a pool of `threads - 1` the runtime owns, shared by
    /// every plugin. Results are the same bytes at any count.
    pub threads: usize,
    /// The plugin that loads `wasi:nn` models for plugins that import it
    /// (the bundled `tflite` plugin); without one their `graph.load` fails
    /// with `unsupported-operation`.
    pub nn_loader: Option<PathBuf>,
    /// The kernel set every plugin's operators run on, instead of the one
    /// `GATEHOUSE_KERNELS` names or the best this CPU runs; it must run on
    /// this CPU. For embedders and tests that pick a set in code.
    pub kernels: Option<&'static KernelSet>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            max_instances: 200,
            max_memory_bytes: 256 << 20,
            epoch_tick: Duration::from_millis(5),
            threads: 1,
            nn_loader: None,
            kernels: None,
        }
    }
}

/// Increments the engine's epoch every tick, so deadlines are counted in ticks.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<InstanceState>,
    pub(crate) cache: Option<ArtifactCache>,
    pub(crate) kernels: &'static KernelSet,
    /// How fast `kernels` run here, measured at start: host work is
    /// estimated with it against each plugin's deadline.
    pub(crate) pace: Pace,
    /// The kernel threads every plugin's plans share.
    pub(crate) threads: Threads,
    pub(crate) config: RuntimeConfig,
    _ticker: Ticker,
}

impl Shared {
    /// Epoch ticks that cover `d`, at least one.
    pub(crate) fn ticks(&self, d: Duration) -> u64 {
        (d.as_nanos() / self.config.epoch_tick.as_nanos().max(1)).max(1) as u64 + 1
    }
}

/// The host runtime. Cheap to clone; plugins loaded from it share its engine.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) shared: Arc<Shared>,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self, Error> {
        let kernels = match config.kernels {
            Some(k) if (k.supported)() => k,
            Some(k) => {
                return Err(Error::Engine(format!(
                    "the {} kernel set does not run on this CPU",
                    k.name
                )));
            }
            None => dispatch::from_env()?,
        };
        let threads = Threads::new(config.threads)
            .map_err(|e| Error::Engine(e.to_string()))?
            .splitting_at(split_from_env()?);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 2)
            .total_memories(config.max_instances)
            .total_tables(config.max_instances * 2)
            .max_memory_size(config.max_memory_bytes);
        let mut wc = Config::new();
        wc.wasm_component_model(true)
            .epoch_interruption(true)
            .concurrency_support(false)
            .parallel_compilation(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wc).map_err(|e| Error::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        let linked = (|| {
            use bindings::gatehouse::nn0_1_0::{ops, plan, tensors};
            use bindings::gatehouse::plugin0_1_0::{clock, log, types};
            tensors::add_to_linker::<_, HasNn>(&mut linker, InstanceState::nn_view)?;
            ops::add_to_linker::<_, HasNn>(&mut linker, InstanceState::nn_view)?;
            plan::add_to_linker::<_, HasNn>(&mut linker, InstanceState::nn_view)?;
            bindings::sequence::gatehouse::nn0_2_0::sequence::add_to_linker::<_, HasNn>(
                &mut linker,
                InstanceState::nn_view,
            )?;
            bindings::runtimes::gatehouse::nn0_3_0::runtimes::add_to_linker::<_, HasNn>(
                &mut linker,
                InstanceState::nn_view,
            )?;
            bindings::runtimes_uint8::gatehouse::nn0_4_0::runtimes::add_to_linker::<_, HasNn>(
                &mut linker,
                InstanceState::nn_view,
            )?;
            bindings::runtimes_uint8::gatehouse::nn0_4_0::more_ops::add_to_linker::<_, HasNn>(
                &mut linker,
                InstanceState::nn_view,
            )?;
            bindings::runtimes_uint8::gatehouse::nn0_4_0::dynamic::add_to_linker::<_, HasNn>(
                &mut linker,
                InstanceState::nn_view,
            )?;
            bindings::runtimes_uint8::gatehouse::nn0_4_0::linear_quant::add_to_linker::<_, HasNn>(
                &mut linker,
                InstanceState::nn_view,
            )?;
            crate::wasi_nn::add_to_linker(&mut linker, InstanceState::wasi_nn_view)?;
            bindings::dsp::gatehouse::dsp::audio::add_to_linker::<_, HasNn>(
                &mut linker,
                InstanceState::nn_view,
            )?;
            types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
            log::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
            clock::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
            crate::wasi::add_to_linker(&mut linker)
        })();
        linked.map_err(|e| Error::Engine(format!("{e:#}")))?;
        // Interfaces that `use` the tensor resource re-export its type. The
        // bindings leave those re-exports undefined, and stubbing unknown
        // imports as traps would then invent an unrelated resource type for
        // them; so name the real one in each interface that re-exports it.
        for iface in [
            "gatehouse:nn/ops@0.1.0",
            "gatehouse:nn/plan@0.1.0",
            "gatehouse:nn/sequence@0.2.0",
            "gatehouse:nn/runtimes@0.3.0",
            "gatehouse:nn/runtimes@0.4.0",
            "gatehouse:nn/more-ops@0.4.0",
        ] {
            linker
                .instance(iface)
                .and_then(|mut i| {
                    i.resource("tensor", ResourceType::host::<TensorKey>(), |_, _| Ok(()))
                })
                .map_err(|e| Error::Engine(format!("{e:#}")))?;
        }
        for iface in [
            "gatehouse:nn/sequence@0.2.0",
            "gatehouse:nn/runtimes@0.3.0",
            "gatehouse:nn/runtimes@0.4.0",
            "gatehouse:nn/more-ops@0.4.0",
        ] {
            linker
                .instance(iface)
                .and_then(|mut i| {
                    i.resource(
                        "plan",
                        ResourceType::host::<gatehouse_nn::Plan>(),
                        |_, _| Ok(()),
                    )
                })
                .map_err(|e| Error::Engine(format!("{e:#}")))?;
        }
        let cache = config
            .cache_dir
            .as_ref()
            .map(ArtifactCache::new)
            .transpose()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (engine, stop, tick) = (engine.clone(), stop.clone(), config.epoch_tick);
            std::thread::Builder::new()
                .name("gatehouse-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| Error::Engine(format!("cannot start the epoch thread: {e}")))?
        };
        Ok(Runtime {
            shared: Arc::new(Shared {
                engine,
                linker,
                cache,
                kernels,
                pace: Pace::measure(kernels),
                threads,
                config,
                _ticker: Ticker {
                    stop,
                    thread: Some(thread),
                },
            }),
        })
    }

    /// The kernel set every plugin of this runtime uses.
    pub fn kernels(&self) -> &'static KernelSet {
        self.shared.kernels
    }

    /// How many threads one inference may use.
    pub fn threads(&self) -> usize {
        self.shared.threads.count()
    }

    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }
}

/// `GATEHOUSE_SPLIT_MACS_PER_BYTE`: the least multiply-accumulates per byte
/// of activations worth splitting a layer over threads, for every kernel
/// set (each has its own otherwise; see `KernelSet::split`).
fn split_from_env() -> Result<Option<u64>, Error> {
    const ENV: &str = "GATEHOUSE_SPLIT_MACS_PER_BYTE";
    match std::env::var(ENV) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map(Some)
            .map_err(|_| Error::Engine(format!("{ENV}={v:?} is not a whole number"))),
        _ => Ok(None),
    }
}
