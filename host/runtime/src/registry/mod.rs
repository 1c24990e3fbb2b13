//! The plugin registry: plugin name → active version, swapped in place.
//!
//! Deploying compiles (or takes from the cache), instantiates and inits a
//! first instance, runs the self-test on it, then swaps the version in with
//! one atomic pointer store. Requests load the active version lock-free and
//! keep it alive while they run, so requests already running finish on the
//! old version, which is dropped when the last of them is done. After a swap
//! the new version is watched; if it fails too often it is rolled back to the
//! previous one automatically.

mod batcher;
mod health;
mod pool;
mod streams;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

pub use batcher::{BatchPolicy, BatchStats};
pub use health::HealthPolicy;
pub use pool::CircuitPolicy;

use crate::engine::Runtime;
use crate::error::{Error, PluginId};
use crate::plugin::{Inference, InitConfig, Limits, Plugin};
use batcher::Batcher;
use health::Health;
use pool::Pool;
use streams::Streams;

/// How deployments are run and watched.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Idle instances kept per version.
    pub pool_size: usize,
    pub health: HealthPolicy,
    pub circuit: CircuitPolicy,
    /// How requests to plugins that take batches are grouped.
    pub batching: BatchPolicy,
    /// Stream instances kept per plugin (see [`Registry::infer_stream`]);
    /// 0 means the default, 64.
    pub streams: usize,
}

/// What a deployment must show before it serves.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// The top-1 label.
    Label(String),
    /// The raw output bytes.
    Output(Vec<u8>),
    /// Only that `process` succeeds.
    Success,
}

/// A plugin's declared test: an input and what it must give.
#[derive(Clone, Debug, PartialEq)]
pub struct SelfTest {
    pub input: Vec<u8>,
    pub expect: Expect,
}

/// One deployment request.
#[derive(Clone, Debug, Default)]
pub struct DeploySpec {
    pub config: InitConfig,
    pub limits: Limits,
    pub self_test: Option<SelfTest>,
    /// The name and version the plugin was shipped as (a signed bundle's
    /// manifest). The component must call itself by that name; the version
    /// replaces the one it reports, since the shipped one is what operators
    /// deploy, roll back and audit by.
    pub identity: Option<PluginId>,
}

/// A version loaded, initialised and self-tested, not yet serving.
pub struct Prepared {
    deployment: Arc<Deployment>,
}

impl Prepared {
    pub fn id(&self) -> &PluginId {
        self.deployment.id()
    }
}

/// Called after an automatic rollback with (the version rolled back, the
/// version now serving), so the daemon can make it durable.
pub type RollbackHook = Box<dyn Fn(&PluginId, &PluginId) + Send + Sync>;

/// A version that is (or was) serving.
pub struct Deployment {
    plugin: Plugin,
    pool: Pool,
    /// For plugins that take batches, when the policy batches.
    batcher: Option<Batcher>,
    health: Health,
    deployed_at: Instant,
    first_served: OnceLock<Instant>,
    retired: std::sync::atomic::AtomicBool,
}

impl Deployment {
    pub fn id(&self) -> &PluginId {
        self.plugin.id()
    }

    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// When this version served its first request, if it has.
    pub fn first_served(&self) -> Option<Instant> {
        self.first_served.get().copied()
    }

    pub fn deployed_at(&self) -> Instant {
        self.deployed_at
    }

    /// Batches and requests run so far, for a plugin the registry batches.
    pub fn batching(&self) -> Option<BatchStats> {
        self.batcher.as_ref().map(Batcher::stats)
    }
}

struct Slot {
    active: ArcSwap<Deployment>,
    previous: Mutex<Option<Arc<Deployment>>>,
    /// Serialises deploys and rollbacks of one plugin (never requests).
    changing: Mutex<()>,
    swaps: std::sync::atomic::AtomicU64,
    rollbacks: std::sync::atomic::AtomicU64,
    /// Requests any version of the plugin gave a result for, success or failure.
    answered: std::sync::atomic::AtomicU64,
    streams: Streams,
}

/// What `list` reports per plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    pub active: PluginId,
    pub previous: Option<PluginId>,
    pub swaps: u64,
    pub rollbacks: u64,
    /// Requests answered (with a result or an error) by any of its versions,
    /// counted where the answers are made: what a client's own count can
    /// be checked against.
    pub answered: u64,
}

/// Outcome of a successful deploy.
#[derive(Clone, Debug)]
pub struct Deployed {
    pub id: PluginId,
    pub replaced: Option<PluginId>,
    /// From the deploy call to the swap.
    pub took: Duration,
}

/// A request on its way; [`wait`](Pending::wait) for its result. Dropped
/// unwaited, a queued request is withdrawn.
#[must_use = "a request's result is only accounted once it is received"]
pub struct Pending<'r>(Option<Stage<'r>>);

enum Stage<'r> {
    Done(Result<Served, Error>),
    Queued {
        registry: &'r Registry,
        slot: Arc<Slot>,
        deployment: Arc<Deployment>,
        started: Instant,
        ticket: batcher::Ticket,
    },
}

impl Pending<'_> {
    /// The result, running batches on this thread while it waits (see
    /// [`BatchPolicy`]).
    pub fn wait(mut self) -> Result<Served, Error> {
        match self.0.take() {
            Some(Stage::Done(r)) => r,
            Some(Stage::Queued {
                registry,
                slot,
                deployment,
                started,
                ticket,
            }) => {
                let result = match &deployment.batcher {
                    Some(b) => b.wait(ticket, |inputs| deployment.pool.process_batch(inputs)),
                    None => Err(Error::NotDeployed(deployment.id().name.clone())),
                };
                registry.finish(&slot, &deployment, result, started)
            }
            None => Err(Error::NotDeployed(String::new())),
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(Stage::Queued {
            deployment, ticket, ..
        }) = &self.0
            && let Some(b) = &deployment.batcher
        {
            b.abandon(*ticket);
        }
    }
}

/// One response, with the version that gave it.
#[derive(Clone, Debug)]
pub struct Served {
    pub id: PluginId,
    pub inference: Inference,
}

pub struct Registry {
    runtime: Runtime,
    policy: Policy,
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    on_rollback: OnceLock<RollbackHook>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    pub fn new(runtime: Runtime, policy: Policy) -> Self {
        Registry {
            runtime,
            policy,
            slots: RwLock::new(BTreeMap::new()),
            on_rollback: OnceLock::new(),
        }
    }

    /// Set the automatic-rollback hook (once).
    pub fn on_rollback(&self, hook: RollbackHook) {
        let _ = self.on_rollback.set(hook);
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Load, init, self-test and swap in a version. On any failure nothing
    /// changes and the error says why.
    pub fn deploy(&self, wasm: &[u8], origin: &str, spec: DeploySpec) -> Result<Deployed, Error> {
        let ready = self.prepare(wasm, origin, spec)?;
        Ok(self.activate(ready))
    }

    /// Everything a deploy does before the swap: load, init and self-test.
    /// Nothing serves it until [`Registry::activate`]; dropping it undoes it.
    /// The daemon records the version on disk between the two, so what it
    /// serves and what it restarts with agree.
    pub fn prepare(&self, wasm: &[u8], origin: &str, spec: DeploySpec) -> Result<Prepared, Error> {
        let start = Instant::now();
        let mut plugin = self.runtime.load(wasm, origin, spec.limits.clone())?;
        if let Some(want) = &spec.identity {
            let shipped = plugin.id().clone();
            let refused = |reason: String| Error::DeployRefused {
                plugin: shipped.clone(),
                reason,
            };
            if plugin.id().name != want.name {
                return Err(refused(format!(
                    "the component calls itself {:?} but was shipped as {:?}",
                    plugin.id().name,
                    want.name
                )));
            }
            if !plugin.set_version(want.version.clone()) {
                return Err(refused("the plugin is already shared".into()));
            }
        }
        let id = plugin.id().clone();
        let (pool, first) = Pool::new(
            plugin.clone(),
            spec.config.clone(),
            self.policy.pool_size,
            self.policy.circuit,
        )?;
        let mut first = first;
        if let Some(test) = &spec.self_test {
            let refused = |reason: String| Error::DeployRefused {
                plugin: id.clone(),
                reason,
            };
            let got = first
                .process(&test.input)
                .map_err(|e| refused(format!("self-test failed: {e}")))?;
            match &test.expect {
                Expect::Label(l) if got.label.as_deref() != Some(l.as_str()) => {
                    return Err(refused(format!(
                        "self-test expected label {l:?}, got {:?}",
                        got.label
                    )));
                }
                Expect::Output(o) if got.output.as_ref() != Some(o) => {
                    return Err(refused(format!(
                        "self-test output differs ({} bytes expected, {:?} got)",
                        o.len(),
                        got.output.as_ref().map(Vec::len)
                    )));
                }
                _ => {}
            }
        }
        pool.give_back(first);
        let batcher = (plugin.batches() && self.policy.batching.enabled())
            .then(|| Batcher::new(id.clone(), self.policy.batching.clone()));
        Ok(Prepared {
            deployment: Arc::new(Deployment {
                plugin,
                pool,
                batcher,
                health: Health::new(self.policy.health),
                deployed_at: start,
                first_served: OnceLock::new(),
                retired: Default::default(),
            }),
        })
    }

    /// Swap a prepared version in. Never fails: everything that can went
    /// wrong in [`Registry::prepare`].
    pub fn activate(&self, ready: Prepared) -> Deployed {
        let deployment = ready.deployment;
        let start = deployment.deployed_at;
        let id = deployment.id().clone();
        let name = id.name.clone();
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let replaced = match slots.get(&name).cloned() {
            Some(slot) => {
                drop(slots);
                let _changing = lock(&slot.changing);
                let old = slot.active.swap(deployment);
                *lock(&slot.previous) = Some(old.clone());
                slot.swaps
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Some(old.id().clone())
            }
            None => {
                slots.insert(
                    name.clone(),
                    Arc::new(Slot {
                        active: ArcSwap::new(deployment),
                        previous: Mutex::new(None),
                        changing: Mutex::new(()),
                        swaps: Default::default(),
                        answered: Default::default(),
                        rollbacks: Default::default(),
                        streams: Streams::new(match self.policy.streams {
                            0 => 64,
                            n => n,
                        }),
                    }),
                );
                None
            }
        };
        tracing::info!(plugin = %id, replaced = ?replaced.as_ref().map(|p| p.to_string()), "deployed");
        Deployed {
            id,
            replaced,
            took: start.elapsed(),
        }
    }

    /// Serve one request on the active version of `name`, on this thread
    /// when the plugin is idle (else it joins the queue of a batching one).
    pub fn infer(&self, name: &str, input: &[u8]) -> Result<Served, Error> {
        let slot = self
            .slot(name)
            .ok_or_else(|| Error::NotDeployed(name.to_string()))?;
        let deployment = slot.active.load_full();
        if let Some(b) = &deployment.batcher {
            let started = Instant::now();
            if let Some(r) = b.run_alone(|| deployment.pool.process(input)) {
                return self.finish(&slot, &deployment, r, started);
            }
        }
        self.start(slot, deployment, input).wait()
    }

    /// Serve one piece of stream `stream` on the active version of `name`,
    /// on that stream's own instance (see `streams.rs`). Pieces of one
    /// stream given one after another reach the plugin in that order;
    /// pieces of one stream given at once are served one at a time.
    pub fn infer_stream(&self, name: &str, stream: &str, input: &[u8]) -> Result<Served, Error> {
        let slot = self
            .slot(name)
            .ok_or_else(|| Error::NotDeployed(name.to_string()))?;
        let deployment = slot.active.load_full();
        let started = Instant::now();
        let result = slot
            .streams
            .instance(stream, &deployment)
            .and_then(|instance| deployment.pool.process_on(&mut lock(&instance), input));
        self.finish(&slot, &deployment, result, started)
    }

    /// Streams `name` holds an instance for, and how many lost their state
    /// (dropped for a new stream, or restarted on a new version).
    pub fn stream_counts(&self, name: &str) -> Option<(usize, u64)> {
        self.slot(name)
            .map(|s| (s.streams.len(), s.streams.restarted()))
    }

    /// Start one request on the active version of `name`. A plugin that
    /// takes batches queues it, to run with whatever else is queued; any
    /// other runs it now, on this thread. Many requests in flight from one
    /// thread (or task) is what lets batches form.
    pub fn submit(&self, name: &str, input: &[u8]) -> Pending<'_> {
        match self.slot(name) {
            Some(slot) => {
                let deployment = slot.active.load_full();
                self.start(slot, deployment, input)
            }
            None => Pending(Some(Stage::Done(Err(Error::NotDeployed(name.to_string()))))),
        }
    }

    fn start(&self, slot: Arc<Slot>, deployment: Arc<Deployment>, input: &[u8]) -> Pending<'_> {
        let started = Instant::now();
        match &deployment.batcher {
            Some(b) => {
                let ticket = b.submit(input.to_vec());
                Pending(Some(Stage::Queued {
                    registry: self,
                    slot,
                    deployment,
                    started,
                    ticket,
                }))
            }
            None => {
                let result = deployment.pool.process(input);
                Pending(Some(Stage::Done(self.finish(
                    &slot,
                    &deployment,
                    result,
                    started,
                ))))
            }
        }
    }

    /// Account a request's result to the version that gave it; roll back a
    /// version that turns unhealthy.
    fn finish(
        &self,
        slot: &Slot,
        deployment: &Arc<Deployment>,
        result: Result<Inference, Error>,
        started: Instant,
    ) -> Result<Served, Error> {
        let latency = started.elapsed();
        slot.answered
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if result.is_ok() {
            let _ = deployment.first_served.set(Instant::now());
        }
        if let Some(why) = deployment.health.record(result.is_ok(), latency) {
            self.roll_back_unhealthy(slot, deployment, &why);
        }
        result.map(|inference| Served {
            id: deployment.id().clone(),
            inference,
        })
    }

    fn roll_back_unhealthy(&self, slot: &Slot, bad: &Arc<Deployment>, why: &str) {
        if bad.retired.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let to = {
            let _changing = lock(&slot.changing);
            if !Arc::ptr_eq(&slot.active.load(), bad) {
                return;
            }
            let Some(previous) = lock(&slot.previous).take() else {
                tracing::error!(plugin = %bad.id(), "unhealthy ({why}) but there is no previous version to roll back to");
                return;
            };
            tracing::warn!(plugin = %bad.id(), to = %previous.id(), "rolled back automatically: {why}");
            let to = previous.id().clone();
            slot.active.store(previous);
            slot.rollbacks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            to
        };
        // Outside the slot lock: the hook takes the daemon's own locks, which
        // a deploy holds while it activates (and so takes the slot lock).
        if let Some(hook) = self.on_rollback.get() {
            hook(bad.id(), &to);
        }
    }

    /// Swap back to the previous version by hand.
    pub fn rollback(&self, name: &str) -> Result<PluginId, Error> {
        let slot = self
            .slot(name)
            .ok_or_else(|| Error::NotDeployed(name.to_string()))?;
        let _changing = lock(&slot.changing);
        let previous = lock(&slot.previous)
            .take()
            .ok_or_else(|| Error::DeployRefused {
                plugin: slot.active.load().id().clone(),
                reason: "there is no previous version to roll back to".into(),
            })?;
        let id = previous.id().clone();
        let old = slot.active.swap(previous);
        old.retired
            .store(true, std::sync::atomic::Ordering::Release);
        slot.rollbacks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(plugin = %old.id(), to = %id, "rolled back by the operator");
        Ok(id)
    }

    /// Drop the warm previous version of `name` (the store no longer
    /// records one to roll back to).
    pub fn forget_previous(&self, name: &str) {
        if let Some(slot) = self.slot(name) {
            let _changing = lock(&slot.changing);
            lock(&slot.previous).take();
        }
    }

    /// Stop serving `name`; requests running finish first on their own.
    pub fn remove(&self, name: &str) -> Result<PluginId, Error> {
        let slot = self
            .slots
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .ok_or_else(|| Error::NotDeployed(name.to_string()))?;
        Ok(slot.active.load().id().clone())
    }

    /// The active version of `name` (to watch when it first serves, say).
    pub fn active(&self, name: &str) -> Option<Arc<Deployment>> {
        self.slot(name).map(|s| s.active.load_full())
    }

    pub fn list(&self) -> Vec<Status> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .map(|(name, s)| Status {
                name: name.clone(),
                active: s.active.load().id().clone(),
                previous: lock(&s.previous).as_ref().map(|p| p.id().clone()),
                swaps: s.swaps.load(std::sync::atomic::Ordering::Relaxed),
                rollbacks: s.rollbacks.load(std::sync::atomic::Ordering::Relaxed),
                answered: s.answered.load(std::sync::atomic::Ordering::Relaxed),
            })
            .collect()
    }
}
