//! `wasi:clocks/monotonic-clock` with a bound on waiting: a host call cannot
//! be interrupted, so a guest's `sleep` (a pollable from
//! `subscribe-duration` or `subscribe-instant`, then `poll`) must not outlast
//! the call's deadline. The guest's timers ring at its deadline at the
//! latest, and a wait that reaches the deadline ends the call with it.

use std::time::Instant;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::{
    self, Duration, Instant as WasiInstant,
};
use wasmtime_wasi::p2::bindings::sync::io::poll;

use crate::nn_host::HostDeadline;

/// The monotonic clock of one instance, as its current call sees it.
pub(crate) struct BoundedClock<'a> {
    pub(crate) clocks: WasiClocksCtxView<'a>,
    /// When the current call's deadline passes.
    pub(crate) ends: Instant,
}

impl BoundedClock<'_> {
    /// Nanoseconds left before the deadline.
    fn left(&self) -> u64 {
        let left = self.ends.saturating_duration_since(Instant::now());
        u64::try_from(left.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl monotonic_clock::Host for BoundedClock<'_> {
    fn now(&mut self) -> wasmtime::Result<WasiInstant> {
        monotonic_clock::Host::now(&mut self.clocks)
    }

    fn resolution(&mut self) -> wasmtime::Result<Duration> {
        monotonic_clock::Host::resolution(&mut self.clocks)
    }

    fn subscribe_instant(&mut self, when: WasiInstant) -> wasmtime::Result<Resource<DynPollable>> {
        let now = monotonic_clock::Host::now(&mut self.clocks)?;
        let wait = when.saturating_sub(now).min(self.left());
        monotonic_clock::Host::subscribe_duration(&mut self.clocks, wait)
    }

    fn subscribe_duration(&mut self, wait: Duration) -> wasmtime::Result<Resource<DynPollable>> {
        let wait = wait.min(self.left());
        monotonic_clock::Host::subscribe_duration(&mut self.clocks, wait)
    }
}

/// `wasi:io/poll` that ends the call when a wait reached the deadline: the
/// guest would be stopped at its next instruction anyway, and a wait that
/// returns into it could otherwise finish the call late.
pub(crate) struct DeadlinePoll<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) ends: Instant,
}

impl DeadlinePoll<'_> {
    fn in_time(&self) -> wasmtime::Result<()> {
        if Instant::now() >= self.ends {
            return Err(wasmtime::Error::new(HostDeadline(
                "waited in wasi:io/poll until the deadline".into(),
            )));
        }
        Ok(())
    }
}

impl poll::Host for DeadlinePoll<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        let ready = poll::Host::poll(self.table, pollables)?;
        self.in_time()?;
        Ok(ready)
    }
}

impl poll::HostPollable for DeadlinePoll<'_> {
    fn ready(&mut self, p: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(self.table, p)
    }

    fn block(&mut self, p: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::block(self.table, p)?;
        self.in_time()
    }

    fn drop(&mut self, p: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, p)
    }
}
