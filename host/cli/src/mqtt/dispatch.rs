//! Messages to plugins and results back: a bounded queue per route, split
//! into lanes that each answer one message at a time. A stream's messages
//! always take the same lane (by a hash of the stream's name), so they are
//! answered in the order they came, on the stream's own instance; other
//! messages take the shortest lane. A full lane drops its oldest message,
//! counted and logged once per interval.

use std::collections::VecDeque;
use std::hash::{Hash as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rumqttc::v5::AsyncClient;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::Infer;
use super::routes::Route;
use crate::gateway::metrics::Metrics;
use crate::output::inference_json;

/// How often dropped messages are reported in the log.
const DROP_REPORT: Duration = Duration::from_secs(5);

/// One message for one route.
struct Job {
    topic: String,
    levels: Vec<String>,
    publish: Arc<Publish>,
}

struct Lane {
    queue: Mutex<VecDeque<Job>>,
    ready: Notify,
}

struct RouteState {
    route: Route,
    lanes: Vec<Lane>,
    /// Messages each lane holds at most.
    lane_cap: usize,
    dropped: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Clone)]
pub(super) struct Dispatcher {
    routes: Arc<Vec<RouteState>>,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    /// Start each route's lanes; as many lanes as cores, each answering one
    /// message at a time.
    pub(super) fn start(
        gateway: String,
        routes: Vec<Route>,
        client: AsyncClient,
        infer: Infer,
        metrics: Arc<Metrics>,
    ) -> Dispatcher {
        let gateway: Arc<str> = gateway.into();
        let lanes = std::thread::available_parallelism().map_or(1, |n| n.get());
        let routes: Arc<Vec<RouteState>> = Arc::new(
            routes
                .into_iter()
                .map(|route| {
                    let n = lanes.min(route.queue);
                    RouteState {
                        lane_cap: route.queue.div_ceil(n),
                        lanes: (0..n)
                            .map(|_| Lane {
                                queue: Mutex::new(VecDeque::new()),
                                ready: Notify::new(),
                            })
                            .collect(),
                        route,
                        dropped: AtomicU64::new(0),
                    }
                })
                .collect(),
        );
        for r in 0..routes.len() {
            for l in 0..routes[r].lanes.len() {
                let answering = Answering {
                    gateway: gateway.clone(),
                    client: client.clone(),
                    infer: infer.clone(),
                    metrics: metrics.clone(),
                };
                let routes = routes.clone();
                tokio::spawn(async move { lane(&routes[r], &routes[r].lanes[l], answering).await });
            }
        }
        let reporting = routes.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(DROP_REPORT);
            let mut reported = vec![0u64; reporting.len()];
            loop {
                tick.tick().await;
                for (r, seen) in reporting.iter().zip(reported.iter_mut()) {
                    let now = r.dropped.load(Ordering::Relaxed);
                    if now > *seen {
                        tracing::warn!(
                            route = r.route.filter.as_str(),
                            plugin = r.route.plugin,
                            "MQTT: {} messages dropped (queue of {} full; {now} in all)",
                            now - *seen,
                            r.route.queue
                        );
                        *seen = now;
                    }
                }
            }
        });
        Dispatcher { routes, metrics }
    }

    /// Queue a message from the broker on every route it matches. Never waits.
    pub(super) fn take(&self, publish: Publish) {
        let topic = String::from_utf8_lossy(&publish.topic).into_owned();
        let publish = Arc::new(publish);
        let mut matched = false;
        for r in self.routes.iter() {
            let Some(levels) = r.route.filter.matches(&topic) else {
                continue;
            };
            matched = true;
            self.metrics.mqtt_received(r.route.filter.as_str());
            let lane = match r.route.stream.and_then(|s| levels.get(s - 1)) {
                Some(stream) => {
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    stream.hash(&mut h);
                    &r.lanes[(h.finish() % r.lanes.len() as u64) as usize]
                }
                None => r
                    .lanes
                    .iter()
                    .min_by_key(|l| lock(&l.queue).len())
                    .unwrap_or(&r.lanes[0]),
            };
            let job = Job {
                topic: topic.clone(),
                levels,
                publish: publish.clone(),
            };
            let dropped = {
                let mut q = lock(&lane.queue);
                q.push_back(job);
                (q.len() > r.lane_cap).then(|| q.pop_front())
            };
            if dropped.is_some() {
                r.dropped.fetch_add(1, Ordering::Relaxed);
                self.metrics.mqtt_dropped(r.route.filter.as_str());
            }
            lane.ready.notify_one();
        }
        if !matched {
            tracing::debug!(topic, "MQTT: a message no route takes");
        }
    }
}

/// What a lane answers with.
struct Answering {
    /// This gateway's id, in every result.
    gateway: Arc<str>,
    client: AsyncClient,
    infer: Infer,
    metrics: Arc<Metrics>,
}

/// Answer a lane's messages one at a time.
async fn lane(r: &RouteState, lane: &Lane, a: Answering) {
    loop {
        let job = lock(&lane.queue).pop_front();
        let Some(job) = job else {
            lane.ready.notified().await;
            continue;
        };
        let route = &r.route;
        let stream = route.stream.and_then(|s| job.levels.get(s - 1)).cloned();
        let payload: Bytes = job.publish.payload.clone();
        let (infer, plugin, key) = (a.infer.clone(), route.plugin.clone(), stream.clone());
        let answer =
            tokio::task::spawn_blocking(move || infer(&plugin, key.as_deref(), &payload)).await;
        let mut body = match answer {
            Ok(Ok(served)) => inference_json(&served.id, None, &served.inference),
            Ok(Err(e)) => json!({"plugin": route.plugin, "error": e.to_string()}),
            Err(e) => {
                json!({"plugin": route.plugin, "error": format!("the request task failed: {e}")})
            }
        };
        if let Value::Object(o) = &mut body {
            o.insert("topic".into(), json!(job.topic));
            o.insert("gateway".into(), json!(&*a.gateway));
            if let Some(s) = &stream {
                o.insert("stream".into(), json!(s));
            }
            let ts = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| (d.as_millis() as f64) / 1000.0);
            o.insert("ts".into(), json!(ts));
        }
        // MQTT 5 request/response: answer where the message asks, with its
        // correlation data.
        let asked = job.publish.properties.as_ref();
        let response_topic = asked.and_then(|p| p.response_topic.clone());
        let correlation = asked.and_then(|p| p.correlation_data.clone());
        let to = response_topic.unwrap_or_else(|| route.result.render(&job.levels));
        let props = PublishProperties {
            correlation_data: correlation,
            content_type: Some("application/json".into()),
            ..PublishProperties::default()
        };
        let sent = a
            .client
            .publish_with_properties(to.clone(), QoS::AtLeastOnce, false, body.to_string(), props)
            .await;
        match sent {
            Ok(()) => a.metrics.mqtt_published(route.filter.as_str()),
            Err(e) => tracing::error!("MQTT: publishing to {to}: {e}"),
        }
    }
}
