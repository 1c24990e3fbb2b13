//! Loaded plugins and their instances.
//!
//! A [`Plugin`] is a compiled component with one `InstancePre` and the
//! descriptor it gave. An [`Instance`] is one sandbox: its own store, memory,
//! tensors and deadline. A trap discards the sandbox and the next call gets a
//! fresh one, initialized with the same configuration.

mod contained;
mod imports;
pub mod limits;
pub mod state;
pub use imports::Access;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::component::Resource;

use crate::bindings::{self, types as wt};
use crate::cache::{Source, compile, load_error};
use crate::engine::{Runtime, Shared};
use crate::error::{Error, Failure, PluginId};
use crate::nn_host::HostDeadline;
use crate::wasi::{self, LogSink, StateQuota, Tail};
use crate::wasi_nn::WasiNn;
use contained::contained;
use gatehouse_nn::{Budget, Plan};
pub use limits::{Grants, Limits};
use state::{InstanceState, WasiParts};

/// Kinds of input a plugin accepts, as in `gatehouse:plugin/types.input-kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    Wav,
    Image,
    RawTensor,
    LogMel,
}

impl InputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Wav => "wav",
            InputKind::Image => "image",
            InputKind::RawTensor => "raw-tensor",
            InputKind::LogMel => "log-mel",
        }
    }
}

/// What a plugin says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Descriptor {
    pub id: PluginId,
    pub summary: String,
    pub input_kinds: Vec<InputKind>,
    pub labels: Vec<String>,
}

/// Settings and model bytes handed to `init`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InitConfig {
    pub model: Option<Vec<u8>>,
    pub settings: Vec<(String, String)>,
}

/// A detection in a stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub t_s: f64,
    pub label: String,
    pub score: f32,
}

/// One result of `process`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inference {
    pub label: Option<String>,
    pub scores: Vec<(String, f32)>,
    pub score: Option<f64>,
    pub events: Vec<Event>,
    pub output: Option<Vec<u8>>,
}

/// What `Runtime::check` found in a component.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The plugin world its exports implement, if any.
    pub world: Option<&'static str>,
    pub exports: Vec<String>,
    /// Each import with what the runtime would do with it.
    pub imports: Vec<(String, Access)>,
}

/// How loading went, for operators and benchmarks.
#[derive(Clone, Copy, Debug)]
pub struct LoadInfo {
    pub source: Source,
    pub duration: Duration,
    pub component_bytes: usize,
}

struct PluginShared {
    runtime: Arc<Shared>,
    pre: bindings::PluginPre<InstanceState>,
    /// Where a `gatehouse:plugin@0.2.0` plugin's `batch` export is; `None`
    /// for a 0.1.0 plugin.
    batch: Option<bindings::batched::BatchedIndices>,
    descriptor: Descriptor,
    limits: Limits,
    load: LoadInfo,
    /// Where its stdout and stderr go, shared by its instances.
    sink: Arc<LogSink>,
    /// Its `state` directory, when granted.
    state: Option<Arc<StateQuota>>,
}

/// A compiled, described plugin. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    shared: Arc<PluginShared>,
}

impl Runtime {
    /// Load a plugin from a `.wasm` file.
    pub fn load_file(&self, path: &Path, limits: Limits) -> Result<Plugin, Error> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Error::Load {
            origin: origin.clone(),
            reason: format!("cannot read: {e}"),
        })?;
        self.load(&bytes, &origin, limits)
    }

    /// What a component targets and imports, and what the runtime would do
    /// with each import, without running any of it.
    pub fn check(&self, wasm: &[u8], origin: &str) -> Result<Checked, Error> {
        let sh = &self.shared;
        let component = match &sh.cache {
            Some(cache) => cache.load(&sh.engine, wasm, origin)?.0,
            None => compile(&sh.engine, wasm, origin)?,
        };
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(&sh.engine).map(|(n, _)| n.to_string()).collect();
        let has = |n: &str| exports.iter().any(|e| e == n);
        let world = if exports
            .iter()
            .any(|e| e.starts_with("gatehouse:plugin/batch@0.2."))
        {
            Some("gatehouse:plugin/batched@0.2.0")
        } else if ["describe", "init", "process", "stats"]
            .iter()
            .all(|n| has(n))
        {
            Some("gatehouse:plugin/plugin@0.1.0")
        } else {
            None
        };
        let imports = ty
            .imports(&sh.engine)
            .map(|(n, _)| (n.to_string(), imports::access(n)))
            .collect();
        Ok(Checked {
            world,
            exports,
            imports,
        })
    }

    /// Load a plugin: compile (or take from the cache), link, and ask it to describe itself.
    pub fn load(&self, wasm: &[u8], origin: &str, limits: Limits) -> Result<Plugin, Error> {
        let sh = &self.shared;
        if limits.memory_bytes > sh.config.max_memory_bytes {
            return Err(Error::Load {
                origin: origin.into(),
                reason: format!(
                    "memory limit {} exceeds the runtime's {}",
                    limits.memory_bytes, sh.config.max_memory_bytes
                ),
            });
        }
        let state = match &limits.grants.state {
            Some(grant) => Some(StateQuota::open(grant).map_err(|e| Error::Load {
                origin: origin.into(),
                reason: format!(
                    "cannot open its state directory {}: {e}",
                    grant.dir.display()
                ),
            })?),
            None => None,
        };
        let (component, source, duration) = match &sh.cache {
            Some(cache) => cache.load(&sh.engine, wasm, origin)?,
            None => {
                let t = Instant::now();
                let c = compile(&sh.engine, wasm, origin)?;
                (c, Source::Compiled, t.elapsed())
            }
        };
        // Imports the host does not have (`wasi:http`, a newer interface)
        // trap when called rather than refuse the whole component: a guest
        // may import what it never calls.
        let mut linker = sh.linker.clone();
        imports::stub(&mut linker, &component, &sh.engine).map_err(|e| load_error(origin, e))?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| load_error(origin, e))?;
        let batch = bindings::batched::BatchedIndices::new(&instance_pre).ok();
        let pre = bindings::PluginPre::new(instance_pre).map_err(|e| Error::Load {
            origin: origin.into(),
            reason: format!("does not implement the gatehouse:plugin@0.1.0 world: {e:#}"),
        })?;
        let placeholder = PluginId {
            name: origin.to_string(),
            version: "?".into(),
        };
        let sink = LogSink::new(placeholder.to_string());
        let mut store =
            new_store(sh, &placeholder, &limits, &sink, state.as_ref()).map_err(|reason| {
                Error::Load {
                    origin: origin.into(),
                    reason,
                }
            })?;
        store.set_epoch_deadline(sh.ticks(limits.init_deadline));
        store.data_mut().begin_call(limits.init_deadline);
        let describe = contained(|| {
            pre.instantiate(&mut store)
                .and_then(|b| b.call_describe(&mut store))
        });
        let d = describe.map_err(|e| Error::Load {
            origin: origin.into(),
            reason: format!("describe failed: {e:#}"),
        })?;
        if d.name.is_empty()
            || d.name.len() > 64
            || !d
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::Load {
                origin: origin.into(),
                reason: format!("plugin name {:?} must be 1-64 of [A-Za-z0-9_-]", d.name),
            });
        }
        let descriptor = Descriptor {
            id: PluginId {
                name: d.name,
                version: d.version,
            },
            summary: d.summary,
            input_kinds: d
                .input_kinds
                .into_iter()
                .map(|k| match k {
                    wt::InputKind::Wav => InputKind::Wav,
                    wt::InputKind::Image => InputKind::Image,
                    wt::InputKind::RawTensor => InputKind::RawTensor,
                    wt::InputKind::LogMel => InputKind::LogMel,
                })
                .collect(),
            labels: d.labels,
        };
        let load = LoadInfo {
            source,
            duration,
            component_bytes: wasm.len(),
        };
        let sink = LogSink::new(descriptor.id.to_string());
        Ok(Plugin {
            shared: Arc::new(PluginShared {
                runtime: sh.clone(),
                pre,
                batch,
                descriptor,
                limits,
                load,
                sink,
                state,
            }),
        })
    }
}

fn new_store(
    sh: &Arc<Shared>,
    id: &PluginId,
    limits: &Limits,
    sink: &Arc<LogSink>,
    state: Option<&Arc<StateQuota>>,
) -> Result<Store<InstanceState>, String> {
    let tail = Tail::default();
    let ctx = wasi::context(sink, &tail, state.map(|s| &**s))
        .map_err(|e| format!("cannot open its state directory: {e}"))?;
    let st = InstanceState::new(
        id.to_string(),
        sh.kernels,
        sh.threads.clone(),
        limits.memory_bytes,
        limits.tensor_bytes,
        sh.pace,
        WasiParts {
            ctx,
            tail,
            state: state.cloned(),
        },
        match &sh.config.nn_loader {
            Some(path) => WasiNn::lazy(Runtime { shared: sh.clone() }, path.clone(), limits),
            None => WasiNn::new(None),
        },
    );
    let mut store = Store::new(&sh.engine, st);
    store.limiter(|s| &mut s.limiter);
    store.epoch_deadline_trap();
    Ok(store)
}

impl Plugin {
    pub fn descriptor(&self) -> &Descriptor {
        &self.shared.descriptor
    }

    pub fn id(&self) -> &PluginId {
        &self.shared.descriptor.id
    }

    /// Rename the version of a plugin nothing else holds yet; false if shared.
    pub(crate) fn set_version(&mut self, version: String) -> bool {
        match Arc::get_mut(&mut self.shared) {
            Some(s) => {
                s.descriptor.id.version = version;
                true
            }
            None => false,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    pub fn load_info(&self) -> LoadInfo {
        self.shared.load
    }

    /// Bytes its `state` directory holds and its quota, when granted.
    pub fn state_usage(&self) -> Option<(u64, u64)> {
        self.shared.state.as_ref().map(|q| (q.used(), q.quota()))
    }

    /// Whether the plugin takes batches (`gatehouse:plugin@0.2.0`).
    pub fn batches(&self) -> bool {
        self.shared.batch.is_some()
    }

    fn fail(&self, failure: Failure) -> Error {
        Error::Plugin {
            plugin: self.id().clone(),
            failure,
        }
    }

    /// A fresh sandbox, initialized with `config`.
    pub fn instantiate(&self, config: InitConfig) -> Result<Instance, Error> {
        let live = self.fresh(&config)?;
        Ok(Instance {
            plugin: self.clone(),
            config,
            live: Some(live),
            replaced: 0,
        })
    }

    fn fresh(&self, config: &InitConfig) -> Result<Live, Error> {
        let sh = &self.shared;
        let began = Instant::now();
        let mut store = new_store(
            &sh.runtime,
            self.id(),
            &sh.limits,
            &sh.sink,
            sh.state.as_ref(),
        )
        .map_err(|e| self.fail(Failure::Trap(e)))?;
        store.set_epoch_deadline(sh.runtime.ticks(sh.limits.init_deadline));
        store.data_mut().begin_call(sh.limits.init_deadline);
        let linked = sh
            .pre
            .instance_pre()
            .instantiate(&mut store)
            .and_then(|instance| {
                let bindings = bindings::Plugin::new(&mut store, &instance)?;
                let batch = match &sh.batch {
                    Some(ix) => Some(ix.load(&mut store, &instance)?),
                    None => None,
                };
                Ok((bindings, batch))
            });
        let (bindings, batch) = match linked {
            Ok(b) => b,
            Err(e) => return Err(self.fail(classify(&store, e, sh.limits.init_deadline))),
        };
        let instantiated = Instant::now();
        let wit_config = wt::Config {
            model: config.model.clone(),
            settings: config
                .settings
                .iter()
                .map(|(k, v)| wt::Setting {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        };
        match contained(|| bindings.call_init(&mut store, &wit_config)) {
            Ok(Ok(())) => Ok(Live {
                store,
                bindings,
                batch,
                times: StartTimes {
                    instantiate: instantiated - began,
                    init: instantiated.elapsed(),
                },
            }),
            Ok(Err(e)) => Err(self.fail(guest_failure(e))),
            Err(e) => Err(self.fail(classify(&store, e, sh.limits.init_deadline))),
        }
    }
}

struct Live {
    store: Store<InstanceState>,
    bindings: bindings::Plugin,
    batch: Option<bindings::batched::Batched>,
    times: StartTimes,
}

/// How an instance's sandbox came to be.
#[derive(Clone, Copy, Debug)]
pub struct StartTimes {
    /// A store, the instance from the precompiled component (pooled
    /// memory), and its exports looked up.
    pub instantiate: Duration,
    /// The plugin's `init`: for a model plugin, parsing its model and
    /// recording its plan (weights packed on the host).
    pub init: Duration,
}

/// One sandboxed instance of a plugin. Not shared between threads at once;
/// make one per worker.
pub struct Instance {
    plugin: Plugin,
    config: InitConfig,
    live: Option<Live>,
    replaced: u32,
}

impl Instance {
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// How its current sandbox came to be; `None` while it has none.
    pub fn start_times(&self) -> Option<StartTimes> {
        self.live.as_ref().map(|l| l.times)
    }

    /// How many times a trapped sandbox was replaced.
    pub fn replacements(&self) -> u32 {
        self.replaced
    }

    /// Host tensor memory in use and its quota.
    pub fn tensor_usage(&self) -> Option<(u64, u64)> {
        self.live.as_ref().map(|l| {
            (
                l.store.data().nn.tensors.used(),
                l.store.data().nn.tensors.quota(),
            )
        })
    }

    /// The instance's whole memory: its linear memories as large as they
    /// have grown, plus the host tensor memory it holds. `None` before the
    /// instance exists (after a trap, until the next call).
    pub fn memory_bytes(&self) -> Option<u64> {
        self.live.as_ref().map(|l| {
            let st = l.store.data();
            st.limiter.linear_bytes as u64 + st.nn.tensors.used()
        })
    }

    fn live(&mut self) -> Result<&mut Live, Error> {
        if self.live.is_none() {
            self.live = Some(self.plugin.fresh(&self.config)?);
            self.replaced += 1;
        }
        // Just set above when it was empty.
        self.live
            .as_mut()
            .ok_or_else(|| self.plugin.fail(Failure::NotInitialized))
    }

    /// Run the plugin on one input.
    pub fn process(&mut self, input: &[u8]) -> Result<Inference, Error> {
        let deadline = self.plugin.shared.limits.deadline;
        let ticks = self.plugin.shared.runtime.ticks(deadline);
        let live = self.live()?;
        live.store.set_epoch_deadline(ticks);
        live.store.data_mut().begin_call(deadline);
        match contained(|| live.bindings.call_process(&mut live.store, input)) {
            Ok(r) => self.outcome(r),
            Err(trap) => Err(self.discard(trap, deadline)),
        }
    }

    fn outcome(&self, r: Result<wt::Inference, wt::PluginError>) -> Result<Inference, Error> {
        match r {
            Ok(inf) => Ok(Inference {
                label: inf.label,
                scores: inf.scores.into_iter().map(|s| (s.label, s.score)).collect(),
                score: inf.score,
                events: inf
                    .events
                    .into_iter()
                    .map(|e| Event {
                        t_s: e.t_s,
                        label: e.label,
                        score: e.score,
                    })
                    .collect(),
                output: inf.output,
            }),
            Err(e) => Err(self.plugin.fail(guest_failure(e))),
        }
    }

    /// Run the plugin on several inputs, one result each, in order: in one
    /// `process-batch` call where the plugin has it (the call's deadline is
    /// the per-call one times the inputs), else one `process` call each. A
    /// trap fails the call, replaces the sandbox and is the outer error;
    /// the caller decides whether to retry the inputs alone.
    pub fn process_batch(
        &mut self,
        inputs: &[Vec<u8>],
    ) -> Result<Vec<Result<Inference, Error>>, Error> {
        if !self.plugin.batches() || inputs.len() < 2 {
            return Ok(inputs.iter().map(|i| self.process(i)).collect());
        }
        let n = u32::try_from(inputs.len()).unwrap_or(u32::MAX);
        let deadline = self.plugin.shared.limits.deadline.saturating_mul(n);
        let ticks = self.plugin.shared.runtime.ticks(deadline);
        let live = self.live()?;
        live.store.set_epoch_deadline(ticks);
        live.store.data_mut().begin_call(deadline);
        let Some(batch) = &live.batch else {
            return Err(self.plugin.fail(Failure::NotInitialized));
        };
        match contained(|| {
            batch
                .gatehouse_plugin0_2_0_batch()
                .call_process_batch(&mut live.store, inputs)
        }) {
            Ok(results) if results.len() == inputs.len() => {
                Ok(results.into_iter().map(|r| self.outcome(r)).collect())
            }
            Ok(results) => Err(self.plugin.fail(Failure::Trap(format!(
                "process-batch returned {} results for {} inputs",
                results.len(),
                inputs.len()
            )))),
            Err(trap) => Err(self.discard(trap, deadline)),
        }
    }

    /// Replays the plan of the guest's latest `plan.invoke` on `data` from
    /// the host, without entering the sandbox: the same prepared operators,
    /// kernels and tensors, so the time it takes is the baseline for the cost
    /// of the boundary and the guest's glue (`gatehouse bench --native`).
    /// `None` until the guest has invoked a plan.
    pub fn invoke_native(&mut self, data: &[u8]) -> Option<Result<Vec<u8>, Error>> {
        let plugin = self.plugin.clone();
        let st = self.live.as_mut()?.store.data_mut();
        let last = st.nn.last_invoke?;
        let plan = Resource::<Plan>::new_borrow(last.plan);
        let result = match st.table.get(&plan) {
            Ok(plan) => plan
                .run_batch(
                    &mut st.nn.tensors,
                    st.nn.kernels,
                    &mut Budget::unlimited(),
                    last.input,
                    last.output,
                    data,
                )
                .map_err(|e| plugin.fail(Failure::Kernel(e.to_string()))),
            Err(e) => Err(plugin.fail(Failure::Kernel(e.to_string()))),
        };
        Some(result)
    }

    /// The plugin's counters (e.g. `arena-peak-bytes`).
    pub fn stats(&mut self) -> Result<Vec<(String, u64)>, Error> {
        let deadline = self.plugin.shared.limits.deadline;
        let ticks = self.plugin.shared.runtime.ticks(deadline);
        let live = self.live()?;
        live.store.set_epoch_deadline(ticks);
        live.store.data_mut().begin_call(deadline);
        match contained(|| live.bindings.call_stats(&mut live.store)) {
            Ok(s) => Ok(s.into_iter().map(|s| (s.name, s.value)).collect()),
            Err(trap) => Err(self.discard(trap, deadline)),
        }
    }

    /// Drop the trapped sandbox and make a fresh one for the next call. The
    /// returned error describes the trap; a failed re-instantiation is
    /// retried on the next call.
    fn discard(&mut self, trap: wasmtime::Error, deadline: Duration) -> Error {
        let failure = match &self.live {
            Some(live) => classify(&live.store, trap, deadline),
            None => Failure::Trap(format!("{trap:#}")),
        };
        self.live = None;
        match self.plugin.fresh(&self.config) {
            Ok(l) => {
                self.live = Some(l);
                self.replaced += 1;
            }
            Err(e) => {
                tracing::error!(plugin = %self.plugin.id(), "could not replace a trapped instance: {e}")
            }
        }
        tracing::warn!(plugin = %self.plugin.id(), "{failure}; instance replaced");
        self.plugin.fail(failure)
    }
}

fn guest_failure(e: wt::PluginError) -> Failure {
    match e {
        wt::PluginError::InvalidInput(m) => Failure::InvalidInput(m),
        wt::PluginError::InvalidConfig(m) => Failure::InvalidConfig(m),
        wt::PluginError::Kernel(m) => Failure::Kernel(m),
        wt::PluginError::NotInitialized => Failure::NotInitialized,
    }
}

fn classify(store: &Store<InstanceState>, e: wasmtime::Error, deadline: Duration) -> Failure {
    if matches!(
        e.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    ) {
        return Failure::Deadline(deadline);
    }
    if let Some(HostDeadline(what)) = e.downcast_ref::<HostDeadline>() {
        tracing::debug!(plugin = %store.data().label, "{what}");
        return Failure::Deadline(deadline);
    }
    let st = store.data();
    if st.limiter.denied {
        return Failure::MemoryLimit(st.limiter.max_bytes);
    }
    let mut msg = format!("{e:#}");
    let stderr = st.stderr_tail.take();
    if let Some(last) = &st.last_error {
        msg = format!("{last} ({msg})");
    } else if !stderr.is_empty() {
        // A guest without our log (Python, JavaScript) explains itself on
        // stderr: a traceback's last lines.
        msg = format!("{} ({msg})", stderr.join("\n"));
    }
    Failure::Trap(msg)
}
