//! A pool of sandboxed instances of one plugin version, with a circuit
//! breaker: repeated traps make requests fail at once instead of burning a
//! fresh instance (and the CPU deadline) on every call.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Failure};
use crate::plugin::{Inference, InitConfig, Instance, Plugin};

/// When the circuit opens and for how long.
#[derive(Clone, Copy, Debug)]
pub struct CircuitPolicy {
    /// Traps in a row that open the circuit.
    pub consecutive_traps: u32,
    /// How long it stays open before one request is let through to probe.
    pub cooldown: Duration,
}

impl Default for CircuitPolicy {
    fn default() -> Self {
        CircuitPolicy {
            consecutive_traps: 5,
            cooldown: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Default)]
struct Circuit {
    traps_in_a_row: u32,
    open_until: Option<Instant>,
}

pub(crate) struct Pool {
    plugin: Plugin,
    config: InitConfig,
    idle: Mutex<Vec<Instance>>,
    /// Idle instances kept; more are made under load and dropped after.
    keep: usize,
    circuit: Mutex<Circuit>,
    policy: CircuitPolicy,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pool {
    /// A pool with one instance made now (so a broken init fails the deploy).
    pub(crate) fn new(
        plugin: Plugin,
        config: InitConfig,
        keep: usize,
        policy: CircuitPolicy,
    ) -> Result<(Self, Instance), Error> {
        let first = plugin.instantiate(config.clone())?;
        Ok((
            Pool {
                plugin,
                config,
                idle: Mutex::new(Vec::new()),
                keep: keep.max(1),
                circuit: Mutex::new(Circuit::default()),
                policy,
            },
            first,
        ))
    }

    pub(crate) fn give_back(&self, instance: Instance) {
        let mut idle = lock(&self.idle);
        if idle.len() < self.keep {
            idle.push(instance);
        }
    }

    /// A new instance, initialised, used by nothing else yet.
    pub(crate) fn fresh(&self) -> Result<Instance, Error> {
        self.admit()?;
        self.plugin.instantiate(self.config.clone())
    }

    /// Run one request on a given instance (a stream's own), under the
    /// circuit breaker.
    pub(crate) fn process_on(
        &self,
        instance: &mut Instance,
        input: &[u8],
    ) -> Result<Inference, Error> {
        self.admit()?;
        let result = instance.process(input);
        self.record(is_trap(&result));
        result
    }

    fn take(&self) -> Result<Instance, Error> {
        if let Some(i) = lock(&self.idle).pop() {
            return Ok(i);
        }
        self.plugin.instantiate(self.config.clone())
    }

    /// Refuse at once while the circuit is open; past the cool-down, let
    /// the call through as a probe.
    fn admit(&self) -> Result<(), Error> {
        let mut c = lock(&self.circuit);
        if let Some(until) = c.open_until {
            let now = Instant::now();
            if now < until {
                return Err(Error::Plugin {
                    plugin: self.plugin.id().clone(),
                    failure: Failure::CircuitOpen(until - now),
                });
            }
            // Half-open: let this request probe.
            c.open_until = None;
        }
        Ok(())
    }

    fn record(&self, trapped: bool) {
        let mut c = lock(&self.circuit);
        if trapped {
            c.traps_in_a_row += 1;
            if c.traps_in_a_row >= self.policy.consecutive_traps {
                c.open_until = Some(Instant::now() + self.policy.cooldown);
                c.traps_in_a_row = 0;
                tracing::warn!(plugin = %self.plugin.id(), "circuit opened after {} traps in a row", self.policy.consecutive_traps);
            }
        } else {
            c.traps_in_a_row = 0;
        }
    }

    /// Run one request on an idle (or new) instance.
    pub(crate) fn process(&self, input: &[u8]) -> Result<Inference, Error> {
        self.admit()?;
        let mut instance = self.take()?;
        let result = instance.process(input);
        self.record(is_trap(&result));
        // The instance replaced its own sandbox if it trapped; keep it.
        self.give_back(instance);
        result
    }

    /// Run several requests as one batch on one instance, a result each. If
    /// the batch traps, each request is retried alone, so that only the one
    /// that traps fails and its batch-mates are not lost.
    pub(crate) fn process_batch(&self, inputs: &[Vec<u8>]) -> Vec<Result<Inference, Error>> {
        let mut instance = match self.admit().and_then(|()| self.take()) {
            Ok(i) => i,
            Err(e) => {
                let failure = e
                    .failure()
                    .cloned()
                    .unwrap_or_else(|| Failure::Trap(e.to_string()));
                return inputs
                    .iter()
                    .map(|_| {
                        Err(Error::Plugin {
                            plugin: self.plugin.id().clone(),
                            failure: failure.clone(),
                        })
                    })
                    .collect();
            }
        };
        let results = match instance.process_batch(inputs) {
            Ok(results) => {
                self.record(results.iter().any(is_trap));
                results
            }
            Err(trap) => {
                tracing::warn!(plugin = %self.plugin.id(), "a batch of {} failed ({trap}); retrying each request alone", inputs.len());
                inputs
                    .iter()
                    .map(|input| {
                        let r = instance.process(input);
                        self.record(is_trap(&r));
                        r
                    })
                    .collect()
            }
        };
        self.give_back(instance);
        results
    }
}

fn is_trap(r: &Result<Inference, Error>) -> bool {
    matches!(r, Err(e) if e.failure().is_some_and(Failure::is_trap))
}
