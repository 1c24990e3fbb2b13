//! Each plugin's health over the last reporting interval: requests, errors
//! and the 99th percentile latency, as the fleet's reported state gives
//! them. Prometheus keeps the totals; a rollout needs what happened since
//! the last report, so the window is taken and reset at each report.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Latencies kept per plugin and interval: enough for a p99 that means
/// something, bounded whatever the request rate.
const KEPT: usize = 4096;

#[derive(Default)]
struct Tally {
    requests: u64,
    errors: u64,
    /// The first [`KEPT`] latencies of the interval, then a ring over them.
    latencies_us: Vec<u32>,
}

/// One plugin's health over an interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub requests: u64,
    pub errors: u64,
    /// Over the requests of the interval (the last [`KEPT`] if more).
    pub p99_ms: Option<f64>,
}

#[derive(Default)]
pub struct Window {
    tallies: Mutex<HashMap<String, Tally>>,
}

impl Window {
    pub fn record(&self, plugin: &str, ok: bool, took: Duration) {
        let mut t = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        let tally = t.entry(plugin.to_string()).or_default();
        tally.requests += 1;
        tally.errors += u64::from(!ok);
        let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        if tally.latencies_us.len() < KEPT {
            tally.latencies_us.push(us);
        } else {
            let at = (tally.requests as usize) % KEPT;
            tally.latencies_us[at] = us;
        }
    }

    /// The interval's health per plugin; the next interval starts empty.
    pub fn take(&self) -> BTreeMap<String, Health> {
        let tallies = std::mem::take(&mut *self.tallies.lock().unwrap_or_else(|p| p.into_inner()));
        tallies
            .into_iter()
            .map(|(name, mut t)| {
                t.latencies_us.sort_unstable();
                let p99_ms = (!t.latencies_us.is_empty()).then(|| {
                    // The nearest-rank percentile: the smallest value with
                    // at least 99% of the samples at or below it.
                    let rank = (t.latencies_us.len() * 99).div_ceil(100).max(1);
                    f64::from(t.latencies_us[rank - 1]) / 1e3
                });
                (
                    name,
                    Health {
                        requests: t.requests,
                        errors: t.errors,
                        p99_ms,
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_counts_and_then_starts_again() {
        let w = Window::default();
        for ms in 1..=100u64 {
            w.record("kws", ms != 50, Duration::from_millis(ms));
        }
        w.record("ad", true, Duration::from_micros(1500));
        let h = w.take();
        assert_eq!(
            h["kws"],
            Health {
                requests: 100,
                errors: 1,
                p99_ms: Some(99.0)
            }
        );
        assert_eq!(h["ad"].p99_ms, Some(1.5));
        assert!(w.take().is_empty());
    }

    #[test]
    fn latencies_kept_stay_bounded() {
        let w = Window::default();
        for _ in 0..3 * KEPT {
            w.record("kws", true, Duration::from_millis(2));
        }
        let h = w.take();
        assert_eq!(h["kws"].requests, 3 * KEPT as u64);
        assert_eq!(h["kws"].p99_ms, Some(2.0));
    }
}
