//! The gateway's side of the fleet: it takes the desired-state documents
//! retained on the broker, brings the plugins to them through the same
//! deploy path as the admin API, and publishes what it runs.
//!
//! A document is applied whole or not at all. First every bundle it
//! changes is pulled and checked: the registry must serve the digest the
//! document names, signed by a trusted key, with the version it names, not
//! older than what runs, and not a version this gateway rolled back. Only
//! then are they swapped in, one by one, each after its self-test; if one
//! fails, those already swapped go back. The broker is not trusted with
//! code: the worst a forged document can do is be refused and reported.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::v5::AsyncClient;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::LastWill;
use tokio::sync::mpsc;

use super::desired::{self, Desired, Want, gateway_topic, group_topic};
use super::ledger::{Ledger, Rejected, check_sequence};
use super::report::{PluginReport, Refusal, Reported, Status, now};
use crate::gateway::{Gateway, RolledBack};
use crate::mqtt::Control;

/// The documents the connection hands to the agent, by topic.
pub type Inbox = mpsc::UnboundedReceiver<(String, Bytes)>;

pub struct Agent {
    id: String,
    groups: Vec<String>,
    gateway: Arc<Gateway>,
    store: Arc<gatehouse_ota::Store>,
    kernels: String,
    inbox: mpsc::UnboundedSender<(String, Bytes)>,
    state: Mutex<State>,
}

struct State {
    ledger: Ledger,
    last_refusal: Option<Refusal>,
    last_report: Instant,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A change one document asks for, checked and ready to swap in.
struct Change {
    plugin: String,
    want: Want,
    bytes: Vec<u8>,
}

impl Agent {
    pub fn new(
        id: String,
        groups: Vec<String>,
        gateway: Arc<Gateway>,
        kernels: String,
    ) -> anyhow::Result<(Arc<Agent>, Inbox)> {
        let store = gateway.store();
        let ledger = Ledger::load(&store).map_err(anyhow::Error::msg)?;
        let (inbox, rx) = mpsc::unbounded_channel();
        let agent = Arc::new(Agent {
            id,
            groups,
            gateway,
            store,
            kernels,
            inbox,
            state: Mutex::new(State {
                ledger,
                last_refusal: None,
                last_report: Instant::now(),
            }),
        });
        Ok((agent, rx))
    }

    fn own_topic(&self) -> String {
        gateway_topic(&self.id, "desired")
    }

    fn status(&self, online: bool) -> Vec<u8> {
        serde_json::to_vec(&Status {
            gateway: self.id.clone(),
            online,
        })
        .unwrap_or_default()
    }

    /// Apply documents as they come, report every `interval` and after
    /// every change, and refuse for good a version the runtime rolled back.
    pub async fn run(self: Arc<Self>, client: AsyncClient, mut rx: Inbox, interval: Duration) {
        let mut rollbacks = self.gateway.rollbacks();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some((topic, payload)) = rx.recv() => self.on_document(&topic, &payload).await,
                rb = rollbacks.recv() => match rb {
                    Ok(rb) => self.on_rollback(rb),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("fleet: {n} rollback notices missed");
                    }
                    Err(_) => return,
                },
                _ = tick.tick() => {}
            }
            self.publish_report(&client).await;
        }
    }

    async fn on_document(&self, topic: &str, payload: &[u8]) {
        // An operator clearing the retained message: nothing to apply.
        if payload.is_empty() {
            return;
        }
        let doc = match Desired::parse(payload) {
            Ok(d) => d,
            Err(e) => return self.refuse(topic, None, e),
        };
        let sequence = doc.sequence;
        match self.apply(topic, doc).await {
            Ok(0) => tracing::debug!("fleet: {topic} #{sequence}: nothing to change"),
            Ok(n) => tracing::info!("fleet: {topic} #{sequence} applied ({n} plugins changed)"),
            Err(e) => self.refuse(topic, Some(sequence), e),
        }
    }

    fn refuse(&self, topic: &str, sequence: Option<u64>, reason: String) {
        tracing::warn!(
            "fleet: desired state {topic}{} refused, nothing changed: {reason}",
            sequence.map(|s| format!(" #{s}")).unwrap_or_default()
        );
        lock(&self.state).last_refusal = Some(Refusal {
            topic: topic.into(),
            sequence,
            reason,
            at: now(),
        });
    }

    fn on_rollback(&self, rb: RolledBack) {
        let reason = format!(
            "{}@{} failed its requests and was rolled back to {}; desired state naming it is refused",
            rb.plugin, rb.version, rb.back_to
        );
        tracing::warn!("fleet: {reason}");
        let mut st = lock(&self.state);
        if let Some(sha256) = rb.digest
            && st.ledger.is_rejected(&rb.plugin, &sha256).is_none()
        {
            st.ledger.rejected.push(Rejected {
                plugin: rb.plugin,
                version: rb.version,
                sha256,
            });
            if let Err(e) = st.ledger.save(&self.store) {
                tracing::error!("fleet: recording the rejected version: {e}");
            }
        }
        st.last_refusal = Some(Refusal {
            topic: "runtime".into(),
            sequence: None,
            reason,
            at: now(),
        });
    }

    /// Apply `doc` from `topic` whole, or nothing. Returns how many plugins changed.
    async fn apply(&self, topic: &str, doc: Desired) -> Result<usize, String> {
        let docs = {
            let st = lock(&self.state);
            check_sequence(&st.ledger, topic, &doc)?;
            let mut docs = st.ledger.applied.clone();
            docs.insert(topic.to_string(), doc.clone());
            docs
        };
        let wants: BTreeMap<String, Want> =
            desired::effective(&docs, &self.own_topic(), &self.groups)
                .into_iter()
                .map(|(name, (want, _))| (name.to_string(), want.clone()))
                .collect();
        let changes = self.check_all(&wants).await?;
        let changed = changes.len();
        self.swap_all(changes).await?;
        let mut st = lock(&self.state);
        st.ledger.applied.insert(topic.to_string(), doc);
        st.ledger
            .save(&self.store)
            .map_err(|e| format!("applied, but recording it failed: {e}"))?;
        Ok(changed)
    }

    /// Pull and check every bundle that differs from what serves.
    async fn check_all(&self, wants: &BTreeMap<String, Want>) -> Result<Vec<Change>, String> {
        let mut changes = Vec::new();
        for (plugin, want) in wants {
            let label = format!("{plugin}@{}", want.version);
            let gw = self.gateway.clone();
            let name = plugin.clone();
            let active =
                blocking(move || gw.active_digest(&name).map_err(|e| e.to_string())).await?;
            if active.as_deref() == Some(want.sha256.as_str()) {
                continue;
            }
            if let Some(r) = lock(&self.state).ledger.is_rejected(plugin, &want.sha256) {
                return Err(format!(
                    "{label}: this gateway rolled {}@{} back after it failed requests",
                    r.plugin, r.version
                ));
            }
            let bytes = gatehouse_ota::oci::pull(&want.oci)
                .await
                .map_err(|e| format!("{label}: {e}"))?;
            let digest = gatehouse_ota::sha256_hex(&bytes);
            if digest != want.sha256 {
                return Err(format!(
                    "{label}: {} serves a bundle with sha256 {digest}, not {}",
                    want.oci, want.sha256
                ));
            }
            let (gw, name, b) = (self.gateway.clone(), plugin.clone(), bytes);
            let (version, bytes) = blocking(move || match gw.vet(&b, &name) {
                Ok(v) => Ok((v, b)),
                Err(e) => Err(e.to_string()),
            })
            .await
            .map_err(|e| format!("{label}: {e}"))?;
            if version != want.version {
                return Err(format!("{label}: the signed bundle is version {version}"));
            }
            changes.push(Change {
                plugin: plugin.clone(),
                want: want.clone(),
                bytes,
            });
        }
        Ok(changes)
    }

    /// Swap each change in; if one fails, put back those already swapped.
    async fn swap_all(&self, changes: Vec<Change>) -> Result<(), String> {
        let mut done: Vec<(String, bool)> = Vec::new();
        for c in changes {
            let gw = self.gateway.clone();
            let label = format!("{}@{}", c.plugin, c.want.version);
            let had = self
                .gateway
                .list()
                .iter()
                .any(|p| p.name == c.plugin && p.serving.is_some());
            let plugin = c.plugin.clone();
            let r = blocking(move || {
                gw.deploy(&c.bytes, &c.want.oci, Some(&c.plugin), false)
                    .map_err(|e| e.to_string())
            })
            .await;
            match r {
                Ok(out) => {
                    tracing::info!(
                        "fleet: {}@{} serving{}",
                        out.plugin,
                        out.version,
                        out.replaced
                            .map(|r| format!(" (was {r})"))
                            .unwrap_or_default()
                    );
                    done.push((plugin, had));
                }
                Err(e) => {
                    for (plugin, had) in done.into_iter().rev() {
                        let gw = self.gateway.clone();
                        let undo = blocking(move || {
                            if had {
                                gw.rollback(&plugin).map(|_| ())
                            } else {
                                gw.remove(&plugin)
                            }
                            .map_err(|e| format!("{plugin}: {e}"))
                        })
                        .await;
                        if let Err(u) = undo {
                            tracing::error!("fleet: undoing a partial apply: {u}");
                        }
                    }
                    return Err(format!("{label}: {e}"));
                }
            }
        }
        Ok(())
    }

    fn report(&self) -> Reported {
        let health = self.gateway.take_health();
        let mut st = lock(&self.state);
        let interval_s = st.last_report.elapsed().as_secs_f64();
        st.last_report = Instant::now();
        let wants = desired::effective(&st.ledger.applied, &self.own_topic(), &self.groups);
        let mut plugins: BTreeMap<String, PluginReport> = self
            .gateway
            .list()
            .into_iter()
            .map(|p| {
                let report = PluginReport {
                    sha256: p.digest.filter(|_| p.serving == p.stored),
                    active: p.serving,
                    previous: p.previous,
                    desired: None,
                    health: health.get(&p.name).cloned().unwrap_or_default(),
                };
                (p.name, report)
            })
            .collect();
        for (name, (want, _)) in &wants {
            plugins.entry(name.to_string()).or_default().desired = Some(want.version.to_string());
        }
        Reported {
            gateway: self.id.clone(),
            groups: self.groups.clone(),
            at: now(),
            kernels: self.kernels.clone(),
            interval_s,
            applied: st
                .ledger
                .applied
                .iter()
                .map(|(t, d)| (t.clone(), d.sequence))
                .collect(),
            plugins,
            last_refusal: st.last_refusal.clone(),
            rejected: st.ledger.rejected.clone(),
        }
    }

    async fn publish_report(&self, client: &AsyncClient) {
        let report = self.report();
        let Ok(json) = serde_json::to_vec(&report) else {
            return;
        };
        let topic = gateway_topic(&self.id, "reported");
        if let Err(e) = client.publish(topic, QoS::AtLeastOnce, true, json).await {
            tracing::warn!("fleet: publishing the reported state: {e}");
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("task failed: {e}"))?
}

impl Control for Agent {
    fn filters(&self) -> Vec<String> {
        std::iter::once(self.own_topic())
            .chain(self.groups.iter().map(|g| group_topic(g)))
            .collect()
    }

    fn last_will(&self) -> Option<LastWill> {
        Some(LastWill::new(
            gateway_topic(&self.id, "status"),
            self.status(false),
            QoS::AtLeastOnce,
            true,
            None,
        ))
    }

    fn connected(&self, client: &AsyncClient) {
        let (client, topic, online) = (
            client.clone(),
            gateway_topic(&self.id, "status"),
            self.status(true),
        );
        tokio::spawn(async move {
            if let Err(e) = client.publish(topic, QoS::AtLeastOnce, true, online).await {
                tracing::warn!("fleet: publishing the online status: {e}");
            }
        });
    }

    fn take(&self, topic: &str, payload: Bytes) {
        let _ = self.inbox.send((topic.to_string(), payload));
    }
}
