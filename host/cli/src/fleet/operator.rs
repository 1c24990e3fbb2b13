//! The operator's side of the fleet: read what the gateways report, write
//! their desired state, and roll a version out in waves behind a canary.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event};
use tokio::sync::Notify;

use super::desired::{Desired, Want, gateway_topic};
use super::report::{Reported, Status};

/// Every topic under `gatehouse/v1/`: the retained ones arrive at once.
const ALL: &str = "gatehouse/v1/#";

/// A connection that keeps the latest message of every fleet topic.
pub struct Operator {
    client: AsyncClient,
    latest: Arc<Mutex<HashMap<String, (Instant, Bytes)>>>,
    /// Every report that came, in order: a soak sums their health.
    reports: Arc<Mutex<Vec<Reported>>>,
    changed: Arc<Notify>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Operator {
    /// Connect and take in the retained state of the whole fleet.
    pub async fn connect(
        url: &str,
        credentials: Option<&std::path::PathBuf>,
        ca: Option<&std::path::PathBuf>,
    ) -> anyhow::Result<Operator> {
        let id = format!("gatehouse-operator-{}", std::process::id());
        let opts = crate::mqtt::client_options(url, &id, credentials, ca)?;
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let latest: Arc<Mutex<HashMap<String, (Instant, Bytes)>>> = Default::default();
        let changed = Arc::new(Notify::new());
        let reports: Arc<Mutex<Vec<Reported>>> = Default::default();
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel::<anyhow::Result<()>>();
        {
            let (client, latest, changed) = (client.clone(), latest.clone(), changed.clone());
            let reports = reports.clone();
            tokio::spawn(async move {
                let mut subscribed_tx = Some(subscribed_tx);
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            let _ = client.subscribe(ALL, QoS::AtLeastOnce).await;
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            if let Some(tx) = subscribed_tx.take() {
                                let _ = tx.send(Ok(()));
                            }
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            let topic = String::from_utf8_lossy(&p.topic).into_owned();
                            if topic.ends_with("/reported")
                                && let Ok(r) = serde_json::from_slice::<Reported>(&p.payload)
                            {
                                lock(&reports).push(r);
                            }
                            lock(&latest).insert(topic, (Instant::now(), p.payload));
                            changed.notify_waiters();
                        }
                        Ok(_) => {}
                        Err(e) => {
                            if let Some(tx) = subscribed_tx.take() {
                                let _ = tx.send(Err(anyhow::anyhow!("{e}")));
                                return;
                            }
                            tracing::warn!("MQTT: {e}; reconnecting");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            });
        }
        tokio::time::timeout(Duration::from_secs(10), subscribed)
            .await
            .context("no answer from the broker within 10 s")?
            .context("the connection task ended")?
            .with_context(|| format!("connecting to {url}"))?;
        // Retained messages follow the subscription's acknowledgement.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Operator {
            client,
            latest,
            reports,
            changed,
        })
    }

    fn get(&self, topic: &str) -> Option<(Instant, Bytes)> {
        lock(&self.latest).get(topic).cloned()
    }

    /// The document retained on `topic`, if any.
    pub fn desired(&self, topic: &str) -> anyhow::Result<Option<Desired>> {
        match self.get(topic) {
            Some((_, b)) if !b.is_empty() => Desired::parse(&b)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("{topic}: {e}")),
            _ => Ok(None),
        }
    }

    /// The last report of gateway `id`, and when it came.
    pub fn reported(&self, id: &str) -> Option<(Instant, Reported)> {
        let (at, b) = self.get(&gateway_topic(id, "reported"))?;
        Some((at, serde_json::from_slice(&b).ok()?))
    }

    /// How many reports have come so far.
    pub fn reports_seen(&self) -> usize {
        lock(&self.reports).len()
    }

    /// The reports that came after the first `from`.
    pub fn reports_since(&self, from: usize) -> Vec<Reported> {
        lock(&self.reports)
            .get(from..)
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    /// Every gateway that ever reported or said its status, with both.
    pub fn gateways(&self) -> BTreeMap<String, (Option<Reported>, Option<Status>)> {
        let mut out: BTreeMap<String, (Option<Reported>, Option<Status>)> = BTreeMap::new();
        for (topic, (_, b)) in lock(&self.latest).iter() {
            let Some(rest) = topic.strip_prefix("gatehouse/v1/gateways/") else {
                continue;
            };
            let Some((id, leaf)) = rest.split_once('/') else {
                continue;
            };
            let e = out.entry(id.to_string()).or_default();
            match leaf {
                "reported" => e.0 = serde_json::from_slice(b).ok(),
                "status" => e.1 = serde_json::from_slice(b).ok(),
                _ => {}
            }
        }
        out.retain(|_, (r, s)| r.is_some() || s.is_some());
        out
    }

    /// Set `plugin` to `want` in the document on `topic`, with the next
    /// sequence number. Returns the document before and after.
    pub async fn set(
        &self,
        topic: &str,
        plugin: &str,
        want: Option<&Want>,
    ) -> anyhow::Result<(Option<Desired>, Desired)> {
        // A malformed document was refused by the gateways, which still
        // run what they applied before it: start from an empty one, which
        // leaves the plugins it does not name as they are.
        let before = self.desired(topic).unwrap_or_else(|e| {
            tracing::warn!("replacing the malformed document: {e:#}");
            None
        });
        let mut doc = before.clone().unwrap_or(Desired {
            sequence: 0,
            plugins: BTreeMap::new(),
        });
        match want {
            Some(w) => {
                doc.plugins.insert(plugin.to_string(), w.clone());
            }
            None => {
                doc.plugins.remove(plugin);
            }
        }
        self.put(topic, doc.clone()).await.map(|d| (before, d))
    }

    /// Publish `doc` on `topic`, retained, numbered after whatever that
    /// topic had and after what any gateway reports it applied from it (a
    /// broker that lost its retained messages must not leave the fleet
    /// refusing every new document as older).
    pub async fn put(&self, topic: &str, mut doc: Desired) -> anyhow::Result<Desired> {
        // Numbered after any document there, well-formed or not.
        let retained = self
            .get(topic)
            .and_then(|(_, b)| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["sequence"].as_u64())
            .unwrap_or(0);
        let applied = self
            .gateways()
            .values()
            .filter_map(|(r, _)| r.as_ref()?.applied.get(topic).copied())
            .max()
            .unwrap_or(0);
        doc.sequence = doc.sequence.max(retained).max(applied) + 1;
        let json = serde_json::to_vec(&doc)?;
        self.client
            .publish(topic, QoS::AtLeastOnce, true, json.clone())
            .await
            .with_context(|| format!("publishing {topic}"))?;
        // Our own message comes back through the subscription: wait for
        // it, so the next read sees it and numbers after it.
        let ok = self
            .wait(Duration::from_secs(10), |op| {
                op.get(topic).is_some_and(|(_, b)| b[..] == json[..])
            })
            .await;
        if !ok {
            bail!("the broker did not confirm {topic} within 10 s");
        }
        Ok(doc)
    }

    /// Wait until `done` holds (checked after every message) or `timeout`.
    pub async fn wait(&self, timeout: Duration, done: impl Fn(&Operator) -> bool) -> bool {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if done(self) {
                return true;
            }
            if tokio::time::timeout_at(end, notified).await.is_err() {
                return done(self);
            }
        }
    }
}

/// What a bundle in a registry is: its name and what desired state says of it.
pub async fn want_of(oci: &str) -> anyhow::Result<(String, Want)> {
    let bytes = gatehouse_ota::oci::pull(oci).await?;
    let bundle = gatehouse_ota::Bundle::parse(&bytes).with_context(|| oci.to_string())?;
    let text = std::str::from_utf8(bundle.manifest_bytes()).context("the manifest is not UTF-8")?;
    let m = gatehouse_ota::Manifest::parse(text)?;
    Ok((
        m.name,
        Want {
            oci: oci.to_string(),
            sha256: gatehouse_ota::sha256_hex(&bytes),
            version: m.version,
        },
    ))
}
