//! `GET /metrics`: per plugin, requests, errors, a latency histogram, swaps
//! and rollbacks, in the Prometheus/OpenMetrics text format.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Plugin {
    plugin: String,
}

/// An MQTT route, by its topic filter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

type LatencyFamily = Family<Plugin, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<Plugin, Counter>,
    errors: Family<Plugin, Counter>,
    latency: LatencyFamily,
    swaps: Family<Plugin, Counter>,
    rollbacks: Family<Plugin, Counter>,
    mqtt_received: Family<Route, Counter>,
    mqtt_published: Family<Route, Counter>,
    mqtt_dropped: Family<Route, Counter>,
    stream_instances: Family<Plugin, Gauge>,
    streams_dropped: Family<Plugin, Gauge>,
}

/// 50 µs to about 1.6 s: a small model's call up to a deadline overrun.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(50e-6, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gatehouse");
        let requests = Family::default();
        let errors = Family::default();
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        let swaps = Family::default();
        let rollbacks = Family::default();
        registry.register("requests", "Requests served, by plugin", requests.clone());
        registry.register("errors", "Requests that failed, by plugin", errors.clone());
        registry.register(
            "request_duration_seconds",
            "Request latency, by plugin",
            latency.clone(),
        );
        registry.register("swaps", "Versions swapped in, by plugin", swaps.clone());
        registry.register(
            "rollbacks",
            "Rollbacks (by the operator or automatic), by plugin",
            rollbacks.clone(),
        );
        let (mqtt_received, mqtt_published, mqtt_dropped) =
            (Family::default(), Family::default(), Family::default());
        registry.register(
            "mqtt_received",
            "MQTT messages taken by a route, by its topic filter",
            mqtt_received.clone(),
        );
        registry.register(
            "mqtt_published",
            "Results (or errors) published for a route's messages",
            mqtt_published.clone(),
        );
        registry.register(
            "mqtt_dropped",
            "Messages dropped unanswered because the route's queue was full (the oldest go first)",
            mqtt_dropped.clone(),
        );
        let (stream_instances, streams_dropped) = (Family::default(), Family::default());
        registry.register(
            "stream_instances",
            "Streams (devices) holding an instance of their own, by plugin",
            stream_instances.clone(),
        );
        registry.register(
            "streams_dropped",
            "Streams whose instance was given to a newer stream beyond the limit (their state lost), by plugin, since it was deployed",
            streams_dropped.clone(),
        );
        Metrics {
            registry,
            stream_instances,
            streams_dropped,
            mqtt_received,
            mqtt_published,
            mqtt_dropped,
            requests,
            errors,
            latency,
            swaps,
            rollbacks,
        }
    }

    fn label(name: &str) -> Plugin {
        Plugin {
            plugin: name.to_string(),
        }
    }

    pub fn request(&self, name: &str, ok: bool, took: Duration) {
        let l = Self::label(name);
        self.requests.get_or_create(&l).inc();
        if !ok {
            self.errors.get_or_create(&l).inc();
        }
        self.latency.get_or_create(&l).observe(took.as_secs_f64());
    }

    pub fn swap(&self, name: &str) {
        self.swaps.get_or_create(&Self::label(name)).inc();
    }

    pub fn rollback(&self, name: &str) {
        self.rollbacks.get_or_create(&Self::label(name)).inc();
    }

    fn route(filter: &str) -> Route {
        Route {
            route: filter.to_string(),
        }
    }

    pub fn mqtt_received(&self, filter: &str) {
        self.mqtt_received.get_or_create(&Self::route(filter)).inc();
    }

    pub fn mqtt_published(&self, filter: &str) {
        self.mqtt_published
            .get_or_create(&Self::route(filter))
            .inc();
    }

    pub fn mqtt_dropped(&self, filter: &str) {
        self.mqtt_dropped.get_or_create(&Self::route(filter)).inc();
    }

    /// A plugin's streams now, and how many lost their instance so far.
    pub fn streams(&self, name: &str, instances: usize, dropped: u64) {
        let l = Self::label(name);
        self.stream_instances
            .get_or_create(&l)
            .set(i64::try_from(instances).unwrap_or(i64::MAX));
        self.streams_dropped
            .get_or_create(&l)
            .set(i64::try_from(dropped).unwrap_or(i64::MAX));
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_plugin() {
        let m = Metrics::new();
        m.request("kws", true, Duration::from_micros(80));
        m.request("kws", false, Duration::from_millis(3));
        m.swap("kws");
        m.rollback("kws");
        m.mqtt_dropped("sensors/+/audio");
        m.streams("wakeword", 3, 1);
        let text = m.encode();
        for line in [
            "gatehouse_requests_total{plugin=\"kws\"} 2",
            "gatehouse_errors_total{plugin=\"kws\"} 1",
            "gatehouse_swaps_total{plugin=\"kws\"} 1",
            "gatehouse_rollbacks_total{plugin=\"kws\"} 1",
            "gatehouse_request_duration_seconds_count{plugin=\"kws\"} 2",
            "gatehouse_request_duration_seconds_bucket{le=\"0.0001\",plugin=\"kws\"} 1",
            "gatehouse_mqtt_dropped_total{route=\"sensors/+/audio\"} 1",
            "gatehouse_stream_instances{plugin=\"wakeword\"} 3",
            "gatehouse_streams_dropped{plugin=\"wakeword\"} 1",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
