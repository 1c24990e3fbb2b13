//! WASI preview 2 for plugins, with nothing ambient.
//!
//! Every plugin gets monotonic and wall clocks, random, an empty stdin, and
//! stdout and stderr that go to the operator's log under its name. It gets
//! no arguments, no environment, no preopened directory, no sockets and no
//! name lookup: those calls return WASI errors the guest can handle. What an
//! operator grants (see [`Grants`](crate::Grants)) is added to that one
//! capability at a time; today only `state`.
//!
//! Three of wasmtime-wasi's interfaces are wrapped, so that what a plugin
//! asks of WASI stays within its limits: the monotonic clock and polling
//! never let a guest wait past its deadline, and the filesystem charges the
//! state quota before a directory grows.

mod clock;
mod state;
mod stdio;

use std::io;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::bindings::sync::filesystem::types as fs;
use wasmtime_wasi::p2::bindings::sync::io::poll;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

pub(crate) use clock::{BoundedClock, DeadlinePoll};
pub use state::StateGrant;
pub(crate) use state::{StateFs, StateQuota};
pub(crate) use stdio::{LogSink, Tail};

use crate::plugin::state::InstanceState;
use stdio::{Channel, LogStdio};

/// Where the `state` capability appears in the guest.
pub const STATE_DIR: &str = "/state";

struct StateFsData;
impl HasData for StateFsData {
    type Data<'a> = StateFs<'a>;
}

struct DeadlinePollData;
impl HasData for DeadlinePollData {
    type Data<'a> = DeadlinePoll<'a>;
}

struct BoundedClockData;
impl HasData for BoundedClockData {
    type Data<'a> = BoundedClock<'a>;
}

/// Link WASI for plugins: wasmtime-wasi's synchronous preview 2, with the
/// filesystem and the monotonic clock replaced by their bounded wrappers.
pub(crate) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    fs::add_to_linker::<_, StateFsData>(linker, InstanceState::state_fs)?;
    monotonic_clock::add_to_linker::<_, BoundedClockData>(linker, InstanceState::bounded_clock)?;
    poll::add_to_linker::<_, DeadlinePollData>(linker, InstanceState::deadline_poll)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The WASI context of one instance.
pub(crate) fn context(
    sink: &Arc<LogSink>,
    tail: &Tail,
    state: Option<&StateQuota>,
) -> io::Result<WasiCtx> {
    let mut b = WasiCtxBuilder::new();
    b.stdout(LogStdio {
        sink: sink.clone(),
        channel: Channel::Stdout,
        tail: None,
    })
    .stderr(LogStdio {
        sink: sink.clone(),
        channel: Channel::Stderr,
        tail: Some(tail.clone()),
    })
    // Explicit, though the defaults agree today: a default that changes in
    // a wasmtime upgrade must not open the network.
    .allow_tcp(false)
    .allow_udp(false)
    .allow_ip_name_lookup(false)
    .socket_addr_check(|_, _| Box::pin(async { false }))
    // Plugin calls run on worker threads of their own; a file operation
    // may block that thread rather than hop to another.
    .allow_blocking_current_thread(true);
    if let Some(q) = state {
        b.preopened_dir(q.dir(), STATE_DIR, FsPerms::ReadWrite)
            .map_err(|e| io::Error::other(format!("{e:#}")))?;
    }
    Ok(b.build())
}
