//! Health of a freshly swapped-in version: outcomes and latencies during its
//! watch window, and the verdict that triggers an automatic rollback.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When a new version counts as unhealthy.
#[derive(Clone, Copy, Debug)]
pub struct HealthPolicy {
    /// How long after a swap the version is watched.
    pub window: Duration,
    /// Requests needed before a verdict (so one early failure does not roll back).
    pub min_requests: u32,
    /// Failed share (errors and traps) above which it is rolled back.
    pub max_error_rate: f64,
    /// p99 latency above which it is rolled back, if set.
    pub max_p99: Option<Duration>,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            window: Duration::from_secs(30),
            min_requests: 10,
            max_error_rate: 0.5,
            max_p99: None,
        }
    }
}

#[derive(Default)]
struct Window {
    ok: u32,
    failed: u32,
    latencies: Vec<Duration>,
}

/// Outcomes of one deployment inside its watch window.
pub(crate) struct Health {
    since: Instant,
    policy: HealthPolicy,
    window: Mutex<Window>,
}

impl Health {
    pub(crate) fn new(policy: HealthPolicy) -> Self {
        Health {
            since: Instant::now(),
            policy,
            window: Mutex::new(Window::default()),
        }
    }

    /// Record one request; returns why the version should be rolled back, if it should.
    pub(crate) fn record(&self, ok: bool, latency: Duration) -> Option<String> {
        if self.since.elapsed() > self.policy.window {
            return None;
        }
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            w.ok += 1;
        } else {
            w.failed += 1;
        }
        if w.latencies.len() < 100_000 {
            w.latencies.push(latency);
        }
        let n = w.ok + w.failed;
        if n < self.policy.min_requests {
            return None;
        }
        let rate = w.failed as f64 / n as f64;
        if rate > self.policy.max_error_rate {
            return Some(format!(
                "{} of {n} requests failed ({:.0}% > {:.0}%)",
                w.failed,
                rate * 100.0,
                self.policy.max_error_rate * 100.0
            ));
        }
        if let Some(max) = self.policy.max_p99 {
            let mut l = w.latencies.clone();
            l.sort_unstable();
            let p99 = l[((l.len() - 1) as f64 * 0.99).round() as usize];
            if p99 > max {
                return Some(format!(
                    "p99 latency {p99:?} over {n} requests exceeds {max:?}"
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let h = Health::new(HealthPolicy {
            window: Duration::from_secs(60),
            min_requests: 4,
            max_error_rate: 0.5,
            max_p99: Some(Duration::from_millis(10)),
        });
        let ms = Duration::from_millis;
        assert!(h.record(false, ms(1)).is_none()); // too few to judge
        assert!(h.record(false, ms(1)).is_none());
        assert!(h.record(true, ms(1)).is_none());
        assert!(
            h.record(false, ms(1))
                .unwrap()
                .contains("3 of 4 requests failed")
        );
        let slow = Health::new(HealthPolicy {
            window: Duration::from_secs(60),
            min_requests: 2,
            max_error_rate: 1.0,
            max_p99: Some(ms(10)),
        });
        assert!(slow.record(true, ms(1)).is_none());
        assert!(slow.record(true, ms(50)).unwrap().contains("p99"));
        let expired = Health::new(HealthPolicy {
            window: Duration::ZERO,
            min_requests: 1,
            max_error_rate: 0.0,
            max_p99: None,
        });
        std::thread::sleep(ms(2));
        assert!(expired.record(false, ms(1)).is_none());
    }
}
