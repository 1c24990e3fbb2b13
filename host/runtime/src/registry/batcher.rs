//! Adaptive batching for plugins that take batches (`gatehouse:plugin/batched@0.2.0`).
//!
//! Requests to one deployment queue up. A caller waiting for a result runs
//! the next batch itself whenever fewer than `workers` batches are running:
//! it takes what is queued (as many as the latency budget allows, its own
//! requests and other callers'). So a lone request runs at once on its own
//! thread, as it would unbatched; a busy plugin runs what queued while the
//! previous batch ran. The batch size follows the load with no timer and no
//! thread of the batcher's own, and a caller with many requests in flight
//! (a dispatcher of sensor messages) runs them as one batch without handing
//! anything to another thread.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Failure, PluginId};
use crate::plugin::Inference;

/// How requests to a batching plugin are grouped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Largest batch; 1 turns batching off.
    pub max_batch: usize,
    /// What a request may take from queueing to its result. A request can
    /// wait for one batch to finish and then run in the next, so a batch is
    /// sized to take at most half of it, by the time per input measured so far.
    pub latency_budget: Duration,
    /// Batches that run at once, each on its own instance.
    pub workers: usize,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy {
            max_batch: 32,
            latency_budget: Duration::from_millis(20),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

impl BatchPolicy {
    pub fn enabled(&self) -> bool {
        self.max_batch > 1
    }
}

pub(crate) type Outcome = Result<Inference, Error>;

/// What a batcher has run so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub batches: u64,
    pub requests: u64,
}

/// A queued request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticket(u64);

#[derive(Default)]
struct Queue {
    waiting: VecDeque<(Ticket, Vec<u8>)>,
    done: BTreeMap<Ticket, Outcome>,
    /// Tickets whose callers left; their results are not kept.
    abandoned: Vec<Ticket>,
    running: usize,
    /// Callers asleep on `changed`: waking nobody costs no system call.
    sleepers: usize,
    next: u64,
    /// Mean time per input of recent batches, in nanoseconds; 0 until one ran.
    per_input_ns: f64,
    stats: BatchStats,
}

/// The queue of one deployment.
pub struct Batcher {
    plugin: PluginId,
    policy: BatchPolicy,
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Batcher {
    pub fn new(plugin: PluginId, policy: BatchPolicy) -> Self {
        Batcher {
            plugin,
            policy,
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Only plain data is under the lock, consistent even after a panic.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The batch size the budget allows at the measured cost per input.
    fn size(&self, q: &Queue) -> usize {
        let max = self.policy.max_batch.max(1);
        if q.per_input_ns <= 0.0 {
            return max;
        }
        let half = self.policy.latency_budget.as_nanos() as f64 / 2.0;
        ((half / q.per_input_ns) as usize).clamp(1, max)
    }

    pub fn stats(&self) -> BatchStats {
        self.lock().stats
    }

    /// Queue `input`; [`wait`](Self::wait) for its result.
    pub(crate) fn submit(&self, input: Vec<u8>) -> Ticket {
        let mut q = self.lock();
        let ticket = Ticket(q.next);
        q.next += 1;
        q.waiting.push_back((ticket, input));
        ticket
    }

    /// Run one request now, on this thread, when nothing is queued and a
    /// worker slot is free: a caller that waits at once on an idle plugin
    /// pays nothing for batching. `None` when it must queue.
    pub(crate) fn run_alone(&self, run: impl FnOnce() -> Outcome) -> Option<Outcome> {
        {
            let mut q = self.lock();
            if !q.waiting.is_empty() || q.running >= self.policy.workers.max(1) {
                return None;
            }
            q.running += 1;
        }
        let r = run();
        let mut q = self.lock();
        q.running -= 1;
        q.stats.batches += 1;
        q.stats.requests += 1;
        if q.sleepers > 0 {
            self.changed.notify_all();
        }
        Some(r)
    }

    /// The caller of `ticket` will not wait for it.
    pub(crate) fn abandon(&self, ticket: Ticket) {
        let mut q = self.lock();
        if let Some(at) = q.waiting.iter().position(|(t, _)| *t == ticket) {
            q.waiting.remove(at);
        } else if q.done.remove(&ticket).is_none() {
            q.abandoned.push(ticket);
        }
    }

    /// The result of `ticket`, running batches on this thread while a
    /// worker slot is free. `run` runs one batch: one result per input, in
    /// order.
    pub(crate) fn wait(&self, ticket: Ticket, run: impl Fn(&[Vec<u8>]) -> Vec<Outcome>) -> Outcome {
        let mut q = self.lock();
        loop {
            if let Some(r) = q.done.remove(&ticket) {
                return r;
            }
            if q.running < self.policy.workers.max(1) && !q.waiting.is_empty() {
                let n = self.size(&q).min(q.waiting.len());
                let (tickets, inputs): (Vec<Ticket>, Vec<Vec<u8>>) = q.waiting.drain(..n).unzip();
                q.running += 1;
                drop(q);
                let t = Instant::now();
                let results = run(&inputs);
                let took = t.elapsed();
                q = self.lock();
                q.running -= 1;
                q.stats.batches += 1;
                q.stats.requests += n as u64;
                let whole = results.len() == tickets.len();
                if whole {
                    let sample = took.as_nanos() as f64 / n as f64;
                    q.per_input_ns = if q.per_input_ns <= 0.0 {
                        sample
                    } else {
                        0.8 * q.per_input_ns + 0.2 * sample
                    };
                }
                // A broken `run` must not leave callers waiting forever.
                let mut results = results.into_iter();
                let mut mine = None;
                for t in tickets {
                    let r = match results.next() {
                        Some(r) if whole => r,
                        _ => Err(self.lost()),
                    };
                    if t == ticket {
                        mine = Some(r);
                    } else if let Some(at) = q.abandoned.iter().position(|a| *a == t) {
                        q.abandoned.swap_remove(at);
                    } else {
                        q.done.insert(t, r);
                    }
                }
                if q.sleepers > 0 {
                    self.changed.notify_all();
                }
                match mine {
                    Some(r) => return r,
                    None => continue,
                }
            }
            q.sleepers += 1;
            q = self.changed.wait(q).unwrap_or_else(|p| p.into_inner());
            q.sleepers -= 1;
        }
    }

    fn lost(&self) -> Error {
        Error::Plugin {
            plugin: self.plugin.clone(),
            failure: Failure::Trap("a batch lost its results".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn id() -> PluginId {
        PluginId {
            name: "echo".into(),
            version: "1".into(),
        }
    }

    fn policy(max_batch: usize, workers: usize) -> BatchPolicy {
        BatchPolicy {
            max_batch,
            latency_budget: Duration::from_secs(10),
            workers,
        }
    }

    fn echo(inputs: &[Vec<u8>]) -> Vec<Outcome> {
        inputs
            .iter()
            .map(|i| {
                Ok(Inference {
                    output: Some(i.clone()),
                    ..Default::default()
                })
            })
            .collect()
    }

    #[test]
    fn a_lone_request_runs_at_once_and_gets_its_own_result() {
        let b = Batcher::new(id(), policy(8, 1));
        let t = b.submit(vec![7]);
        let r = b.wait(t, |inputs| {
            assert_eq!(inputs.len(), 1);
            echo(inputs)
        });
        assert_eq!(r.unwrap().output, Some(vec![7]));
        assert_eq!(
            b.stats(),
            BatchStats {
                batches: 1,
                requests: 1
            }
        );
    }

    /// A caller with many requests in flight runs them as batches of at
    /// most the limit, and each ticket gets its own input back.
    #[test]
    fn requests_in_flight_form_batches_of_at_most_the_limit() {
        let b = Batcher::new(id(), policy(8, 1));
        let tickets: Vec<_> = (0..20u8).map(|i| (i, b.submit(vec![i]))).collect();
        let sizes = Mutex::new(Vec::new());
        for (i, t) in tickets {
            let r = b.wait(t, |inputs| {
                sizes.lock().unwrap().push(inputs.len());
                echo(inputs)
            });
            assert_eq!(r.unwrap().output, Some(vec![i]));
        }
        assert_eq!(sizes.into_inner().unwrap(), [8, 8, 4]);
    }

    /// Callers on many threads against one worker slot whose batches are
    /// slow: what queues while a batch runs forms the next one.
    #[test]
    fn callers_on_many_threads_share_batches() {
        let b = Arc::new(Batcher::new(id(), policy(8, 1)));
        let biggest = Arc::new(AtomicUsize::new(0));
        let callers = 24;
        let threads: Vec<_> = (0..callers)
            .map(|c| {
                let (b, biggest) = (b.clone(), biggest.clone());
                std::thread::spawn(move || {
                    let t = b.submit(vec![c as u8]);
                    let r = b.wait(t, |inputs| {
                        biggest.fetch_max(inputs.len(), Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(20));
                        echo(inputs)
                    });
                    assert_eq!(r.unwrap().output, Some(vec![c as u8]));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!((2..=8).contains(&biggest.load(Ordering::Relaxed)));
        let stats = b.stats();
        assert_eq!(stats.requests, callers as u64);
        assert!(stats.batches < callers as u64, "{stats:?}");
    }

    #[test]
    fn the_budget_caps_the_batch_by_the_measured_cost() {
        let b = Batcher::new(
            id(),
            BatchPolicy {
                latency_budget: Duration::from_millis(10),
                ..policy(64, 1)
            },
        );
        let mut q = b.lock();
        // 1 ms per input measured: half the budget holds 5.
        q.per_input_ns = 1e6;
        assert_eq!(b.size(&q), 5);
        q.per_input_ns = 1e9;
        assert_eq!(b.size(&q), 1);
    }

    #[test]
    fn a_batch_that_loses_results_fails_its_requests_instead_of_hanging() {
        let b = Batcher::new(id(), policy(8, 1));
        let (t1, t2) = (b.submit(vec![1]), b.submit(vec![2]));
        let r = b.wait(t1, |_| Vec::new());
        assert!(matches!(
            r,
            Err(Error::Plugin {
                failure: Failure::Trap(_),
                ..
            })
        ));
        let r = b.wait(t2, echo);
        assert!(r.is_err(), "the second request was in the lost batch");
    }

    #[test]
    fn a_request_runs_alone_only_on_an_idle_batcher() {
        let b = Batcher::new(id(), policy(8, 1));
        let r = b.run_alone(|| echo(&[vec![3]]).remove(0));
        assert_eq!(r.unwrap().unwrap().output, Some(vec![3]));
        let queued = b.submit(vec![4]);
        assert!(
            b.run_alone(|| unreachable!("something is queued"))
                .is_none()
        );
        assert!(b.wait(queued, echo).is_ok());
        assert_eq!(
            b.stats(),
            BatchStats {
                batches: 2,
                requests: 2
            }
        );
    }

    #[test]
    fn abandoned_requests_are_not_run_or_kept() {
        let b = Batcher::new(id(), policy(8, 1));
        let (t1, t2) = (b.submit(vec![1]), b.submit(vec![2]));
        b.abandon(t1);
        let r = b.wait(t2, |inputs| {
            assert_eq!(inputs, [vec![2]]);
            echo(inputs)
        });
        assert!(r.is_ok());
        assert!(b.lock().done.is_empty());
    }
}
