//! The gateway: signed bundles from the store, served by the registry.
//!
//! Every change of what a plugin runs goes the same way: verify the bundle
//! (signature, trusted key, digests, policy, version order), load, init and
//! self-test it, store the blob, commit the plugin's record, and only then
//! swap it in. A failure at any step changes nothing; a power cut at any
//! step leaves a record that names a complete, verified bundle, which is
//! what a restart serves.

pub mod admin;
pub mod auth;
pub mod health;
pub mod listener;
pub mod metrics;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_ota::fault::FaultPoint;
use gatehouse_ota::{GatewayPolicy, PluginRecord, Pointer, Store, TrustStore, Verified};
use gatehouse_runtime::{
    DeploySpec, Expect, Grants, InitConfig, Limits, PluginId, Registry, SelfTest, Served,
    StateGrant,
};
use serde::Serialize;

use metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Bundle(#[from] gatehouse_ota::Error),
    #[error(transparent)]
    Runtime(#[from] gatehouse_runtime::Error),
    #[error("the bundle holds plugin {found:?}, not {expected:?}")]
    WrongName { expected: String, found: String },
    #[error("{0} has no previous version to roll back to")]
    NoPrevious(String),
}

/// What a deploy did.
#[derive(Clone, Debug, Serialize)]
pub struct DeployOutcome {
    pub plugin: String,
    pub version: String,
    pub replaced: Option<String>,
    /// Exactly this bundle was already active and serving.
    pub unchanged: bool,
    pub took_ms: f64,
}

/// A version the runtime took out of service by itself (its requests
/// failed after the swap), as the fleet agent hears of it.
#[derive(Clone, Debug)]
pub struct RolledBack {
    pub plugin: String,
    pub version: String,
    /// The bundle's sha256, when the store recorded it.
    pub digest: Option<String>,
    pub back_to: String,
}

/// One plugin as `GET /v1/plugins` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PluginView {
    pub name: String,
    /// The version serving requests, if any.
    pub serving: Option<String>,
    /// The version the store will serve after a restart.
    pub stored: Option<String>,
    pub digest: Option<String>,
    pub previous: Option<String>,
    pub swaps: u64,
    pub rollbacks: u64,
}

pub struct Gateway {
    registry: Arc<Registry>,
    store: Arc<Store>,
    trust: TrustStore,
    policy: GatewayPolicy,
    metrics: Arc<Metrics>,
    /// Serialises changes to the store and to which version serves.
    changing: Arc<Mutex<()>>,
    health: health::Window,
    rolled_back: tokio::sync::broadcast::Sender<RolledBack>,
}

fn lock(m: &Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How the runtime should run a verified bundle.
fn spec_for(v: &Verified, store: &Store) -> DeploySpec {
    let m = &v.manifest;
    // The policy has checked every capability asked for before this.
    let grants = Grants {
        state: m
            .capabilities
            .iter()
            .any(|c| c == "state")
            .then(|| StateGrant {
                dir: store.state_dir(&m.name),
                quota_bytes: u64::from(m.limits.state_kib) << 10,
            }),
    };
    let self_test = m.self_test.as_ref().and_then(|t| {
        let input = v.self_test_input()?.to_vec();
        let expect = match (&t.label, v.self_test_output()) {
            (Some(l), _) => Expect::Label(l.clone()),
            (None, Some(o)) => Expect::Output(o.to_vec()),
            (None, None) => Expect::Success,
        };
        Some(SelfTest { input, expect })
    });
    DeploySpec {
        config: InitConfig {
            model: None,
            settings: m.config.clone().into_iter().collect(),
        },
        limits: Limits {
            memory_bytes: (m.limits.memory_mib as usize) << 20,
            tensor_bytes: (m.limits.tensor_memory_mib as u64) << 20,
            deadline: Duration::from_millis(m.limits.deadline_ms.into()),
            grants,
            ..Limits::default()
        },
        self_test,
        identity: Some(PluginId {
            name: m.name.clone(),
            version: m.version.to_string(),
        }),
    }
}

impl Gateway {
    pub fn new(
        registry: Arc<Registry>,
        store: Store,
        trust: TrustStore,
        policy: GatewayPolicy,
        metrics: Arc<Metrics>,
    ) -> Arc<Gateway> {
        let store = Arc::new(store);
        let changing = Arc::new(Mutex::new(()));
        let (rolled_back, _) = tokio::sync::broadcast::channel(64);
        // An automatic rollback must survive a restart: make it the record.
        {
            let (store, changing, metrics) = (store.clone(), changing.clone(), metrics.clone());
            let tell = rolled_back.clone();
            registry.on_rollback(Box::new(move |bad: &PluginId, to: &PluginId| {
                metrics.rollback(&bad.name);
                let _g = lock(&changing);
                let record = store.record(&bad.name);
                let digest = match &record {
                    Ok(Some(rec)) if rec.active.version.to_string() == bad.version => {
                        Some(rec.active.digest.clone())
                    }
                    _ => None,
                };
                // Nobody listening (no fleet agent) is fine.
                let _ = tell.send(RolledBack {
                    plugin: bad.name.clone(),
                    version: bad.version.clone(),
                    digest,
                    back_to: to.version.clone(),
                });
                match record {
                    Ok(Some(rec)) => match rec.previous {
                        Some(prev) if prev.version.to_string() == to.version => {
                            let back = PluginRecord {
                                name: rec.name.clone(),
                                active: prev,
                                previous: None,
                            };
                            if let Err(e) = store.commit(&back) {
                                tracing::error!(plugin = %bad, "rolled back, but recording it failed: {e}; a restart would serve {bad} again");
                            }
                        }
                        _ => tracing::warn!(plugin = %bad, "rolled back to {to}, which the store does not record as previous"),
                    },
                    Ok(None) => {}
                    Err(e) => tracing::error!(plugin = %bad, "reading the store after a rollback: {e}"),
                }
            }));
        }
        Arc::new(Gateway {
            registry,
            store,
            trust,
            policy,
            metrics,
            changing,
            health: health::Window::default(),
            rolled_back,
        })
    }

    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// Versions the runtime rolls back by itself, from now on.
    pub fn rollbacks(&self) -> tokio::sync::broadcast::Receiver<RolledBack> {
        self.rolled_back.subscribe()
    }

    /// Each plugin's health since the last call.
    pub fn take_health(&self) -> std::collections::BTreeMap<String, health::Health> {
        self.health.take()
    }

    /// The sha256 of the bundle `name` serves, if it serves one from the store.
    pub fn active_digest(&self, name: &str) -> Result<Option<String>, GatewayError> {
        let Some(rec) = self.store.record(name)? else {
            return Ok(None);
        };
        let serving = self
            .registry
            .active(name)
            .is_some_and(|d| d.id().version == rec.active.version.to_string());
        Ok(serving.then_some(rec.active.digest))
    }

    /// Every check [`Gateway::deploy`] makes before it loads the bundle:
    /// signature, trusted key, name, policy and version order. Returns the
    /// signed version.
    pub fn vet(&self, bytes: &[u8], name: &str) -> Result<semver::Version, GatewayError> {
        let v = self.trust.verify(bytes)?;
        let m = &v.manifest;
        if m.name != name {
            return Err(GatewayError::WrongName {
                expected: name.into(),
                found: m.name.clone(),
            });
        }
        self.policy.check(m)?;
        let offered = Pointer {
            digest: gatehouse_ota::sha256_hex(bytes),
            version: m.version.clone(),
        };
        PluginRecord::admit(
            self.store.record(name)?.as_ref(),
            name,
            offered.clone(),
            false,
        )?;
        Ok(offered.version)
    }

    /// The Prometheus text, with the stream gauges read now.
    pub fn encode_metrics(&self) -> String {
        for p in self.registry.list() {
            if let Some((instances, dropped)) = self.registry.stream_counts(&p.name) {
                self.metrics.streams(&p.name, instances, dropped);
            }
        }
        self.metrics.encode()
    }

    /// Serve what the store records, as after a power cut: each plugin's
    /// active version, or its previous one if the active no longer verifies,
    /// loads or passes its self-test. Returns one line per plugin.
    pub fn restore(&self) -> Vec<String> {
        let mut report = Vec::new();
        let records = match self.store.records() {
            Ok(r) => r,
            Err(e) => return vec![format!("store unreadable: {e}")],
        };
        for rec in records {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("{e}");
                    report.push(e.to_string());
                    continue;
                }
            };
            match self.load_pointer(&rec.active) {
                Ok(prepared) => {
                    let d = self.registry.activate(prepared);
                    report.push(format!("{} restored", d.id));
                }
                Err(e) => {
                    tracing::error!(plugin = %rec.name, "active version {} does not start: {e}", rec.active.version);
                    let Some(prev) = rec.previous.clone() else {
                        report.push(format!("{} not served: {e}", rec.name));
                        continue;
                    };
                    match self.load_pointer(&prev) {
                        Ok(prepared) => {
                            let back = PluginRecord {
                                name: rec.name.clone(),
                                active: prev,
                                previous: None,
                            };
                            if let Err(e) = self.store.commit(&back) {
                                tracing::error!(plugin = %rec.name, "recording the fallback: {e}");
                            }
                            let d = self.registry.activate(prepared);
                            report.push(format!(
                                "{} restored (fell back from {})",
                                d.id, rec.active.version
                            ));
                        }
                        Err(e2) => report.push(format!(
                            "{} not served: {e}; previous {}: {e2}",
                            rec.name,
                            rec.previous
                                .map(|p| p.version.to_string())
                                .unwrap_or_default()
                        )),
                    }
                }
            }
        }
        match self.store.collect_garbage() {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} unreferenced bundles from the store"),
            Err(e) => tracing::warn!("store garbage collection: {e}"),
        }
        for line in &report {
            tracing::info!("{line}");
        }
        report
    }

    fn load_pointer(&self, p: &Pointer) -> Result<gatehouse_runtime::Prepared, GatewayError> {
        let bytes = self.store.read_blob(&p.digest)?;
        let v = self.trust.verify(&bytes)?;
        self.policy.check(&v.manifest)?;
        let origin = format!("store:{}", &p.digest[..12.min(p.digest.len())]);
        Ok(self
            .registry
            .prepare(v.component(), &origin, spec_for(&v, &self.store))?)
    }

    /// Verify, store and hot-swap a bundle. `expect_name` is the name the
    /// operator addressed (`PUT /v1/plugins/{name}`).
    pub fn deploy(
        &self,
        bytes: &[u8],
        origin: &str,
        expect_name: Option<&str>,
        force: bool,
    ) -> Result<DeployOutcome, GatewayError> {
        let start = Instant::now();
        let v = self.trust.verify(bytes)?;
        let m = &v.manifest;
        if let Some(n) = expect_name
            && n != m.name
        {
            return Err(GatewayError::WrongName {
                expected: n.into(),
                found: m.name.clone(),
            });
        }
        self.policy.check(m)?;
        let offered = Pointer {
            digest: gatehouse_ota::sha256_hex(bytes),
            version: m.version.clone(),
        };
        let outcome = |replaced: Option<String>, unchanged: bool| DeployOutcome {
            plugin: m.name.clone(),
            version: m.version.to_string(),
            replaced,
            unchanged,
            took_ms: start.elapsed().as_secs_f64() * 1e3,
        };
        let serving = |version: &semver::Version| {
            self.registry
                .active(&m.name)
                .is_some_and(|d| d.id().version == version.to_string())
        };
        // Refuse early, before the cost of a load; checked again under the lock.
        let current = self.store.record(&m.name)?;
        let admitted = PluginRecord::admit(current.as_ref(), &m.name, offered.clone(), force)?;
        if admitted.is_none() && serving(&m.version) {
            return Ok(outcome(None, true));
        }

        let prepared = self
            .registry
            .prepare(v.component(), origin, spec_for(&v, &self.store))?;

        let _g = lock(&self.changing);
        let current = self.store.record(&m.name)?;
        let record = PluginRecord::admit(current.as_ref(), &m.name, offered, force)?;
        if record.is_none() && serving(&m.version) {
            return Ok(outcome(None, true));
        }
        self.store.put_blob(bytes)?;
        if let Some(record) = &record {
            self.store.commit(record)?;
        }
        let d = self.registry.activate(prepared);
        if d.replaced.is_some() {
            self.metrics.swap(&m.name);
        }
        let _ = self.store.faults().hit(FaultPoint::Activated);
        Ok(outcome(d.replaced.map(|r| r.version), false))
    }

    /// Serve the previous version again, durably.
    pub fn rollback(&self, name: &str) -> Result<DeployOutcome, GatewayError> {
        let start = Instant::now();
        let _g = lock(&self.changing);
        let rec = self
            .store
            .record(name)?
            .ok_or_else(|| gatehouse_runtime::Error::NotDeployed(name.into()))?;
        let prev = rec
            .previous
            .clone()
            .ok_or_else(|| GatewayError::NoPrevious(name.into()))?;
        let back = PluginRecord {
            name: name.into(),
            active: prev.clone(),
            previous: None,
        };
        let warm = self
            .registry
            .list()
            .into_iter()
            .find(|s| s.name == name)
            .and_then(|s| s.previous)
            .is_some_and(|p| p.version == prev.version.to_string());
        let replaced = self.registry.active(name).map(|d| d.id().version.clone());
        if warm {
            self.store.commit(&back)?;
            self.registry.rollback(name)?;
        } else {
            // After a restart only the active version is loaded.
            let prepared = self.load_pointer(&prev)?;
            self.store.commit(&back)?;
            self.registry.activate(prepared);
            self.registry.forget_previous(name);
        }
        self.metrics.rollback(name);
        Ok(DeployOutcome {
            plugin: name.into(),
            version: prev.version.to_string(),
            replaced,
            unchanged: false,
            took_ms: start.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Stop serving a plugin and forget it.
    pub fn remove(&self, name: &str) -> Result<(), GatewayError> {
        let _g = lock(&self.changing);
        let stored = self.store.record(name)?.is_some();
        if stored {
            self.store.remove(name)?;
        }
        let removed = match self.registry.remove(name) {
            Ok(_) => Ok(()),
            Err(_) if stored => Ok(()),
            Err(e) => Err(e.into()),
        };
        // After the plugin stopped, so nothing writes there any more.
        if stored {
            self.store.remove_state(name)?;
        }
        removed
    }

    pub fn infer(&self, name: &str, input: &[u8]) -> Result<Served, gatehouse_runtime::Error> {
        let t = Instant::now();
        let r = self.registry.infer(name, input);
        self.count(name, &r, t);
        r
    }

    /// A piece of `stream`, to its own instance of the plugin.
    pub fn infer_stream(
        &self,
        name: &str,
        stream: &str,
        input: &[u8],
    ) -> Result<Served, gatehouse_runtime::Error> {
        let t = Instant::now();
        let r = self.registry.infer_stream(name, stream, input);
        self.count(name, &r, t);
        r
    }

    fn count(&self, name: &str, r: &Result<Served, gatehouse_runtime::Error>, since: Instant) {
        if !matches!(r, Err(gatehouse_runtime::Error::NotDeployed(_))) {
            let took = since.elapsed();
            self.metrics.request(name, r.is_ok(), took);
            self.health.record(name, r.is_ok(), took);
        }
    }

    pub fn list(&self) -> Vec<PluginView> {
        let mut views: std::collections::BTreeMap<String, PluginView> = Default::default();
        for s in self.registry.list() {
            views.insert(
                s.name.clone(),
                PluginView {
                    name: s.name,
                    serving: Some(s.active.version),
                    stored: None,
                    digest: None,
                    previous: s.previous.map(|p| p.version),
                    swaps: s.swaps,
                    rollbacks: s.rollbacks,
                },
            );
        }
        for r in self
            .store
            .records()
            .unwrap_or_default()
            .into_iter()
            .flatten()
        {
            let v = views.entry(r.name.clone()).or_insert_with(|| PluginView {
                name: r.name.clone(),
                serving: None,
                stored: None,
                digest: None,
                previous: None,
                swaps: 0,
                rollbacks: 0,
            });
            v.stored = Some(r.active.version.to_string());
            v.digest = Some(r.active.digest);
            v.previous = r.previous.map(|p| p.version.to_string());
        }
        views.into_values().collect()
    }
}
