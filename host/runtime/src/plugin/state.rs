//! What a plugin instance's `Store` holds: its handle table, its nn state
//! (tensors, quota, deadline), its memory cap, its WASI context, and the host
//! services it imports (log and clock).

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_kernels::KernelSet;
use gatehouse_nn::Threads;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{clock, log, types};
use gatehouse_nn::Pace;

use crate::nn_host::{NnCtx, NnView};
use crate::wasi::{BoundedClock, DeadlinePoll, StateFs, StateQuota, Tail};
use crate::wasi_nn::{WasiNn, WasiNnView};

/// Per-call cap on log lines, so a chatty plugin cannot flood the host log.
const LOG_LINES_PER_CALL: u32 = 64;
/// Longest log line kept.
const LOG_LINE_BYTES: usize = 2048;

pub struct InstanceState {
    pub(crate) table: ResourceTable,
    pub(crate) nn: NnCtx,
    pub(crate) limiter: MemoryCap,
    /// `name@version` for log lines.
    pub(crate) label: String,
    started: Instant,
    log_lines: u32,
    /// The last error the plugin logged in this call: a panic message, usually.
    pub(crate) last_error: Option<String>,
    wasi: WasiCtx,
    /// The last lines the instance wrote to stderr.
    pub(crate) stderr_tail: Tail,
    /// The `state` directory's quota, when granted.
    state: Option<Arc<StateQuota>>,
    /// When the current call's deadline passes.
    call_ends: Instant,
    /// `wasi:nn`, for plugins that import it.
    pub(crate) wasi_nn: WasiNn,
}

/// What an instance's WASI is made of.
pub(crate) struct WasiParts {
    pub(crate) ctx: WasiCtx,
    pub(crate) tail: Tail,
    pub(crate) state: Option<Arc<StateQuota>>,
}

#[cfg(test)]
impl WasiParts {
    /// WASI with nothing granted, for host-function tests.
    pub(crate) fn nothing(label: &str) -> Self {
        let tail = Tail::default();
        let sink = crate::wasi::LogSink::new(label.into());
        WasiParts {
            ctx: crate::wasi::context(&sink, &tail, None).expect("no preopen to fail"),
            tail,
            state: None,
        }
    }
}

impl InstanceState {
    pub(crate) fn new(
        label: String,
        kernels: &'static KernelSet,
        threads: Threads,
        memory_bytes: usize,
        tensor_bytes: u64,
        pace: Pace,
        wasi: WasiParts,
        wasi_nn: WasiNn,
    ) -> Self {
        InstanceState {
            table: ResourceTable::new(),
            nn: NnCtx::new(kernels, threads, tensor_bytes, pace),
            limiter: MemoryCap {
                max_bytes: memory_bytes,
                denied: false,
                linear_bytes: 0,
            },
            label,
            started: Instant::now(),
            log_lines: 0,
            last_error: None,
            wasi: wasi.ctx,
            stderr_tail: wasi.tail,
            state: wasi.state,
            call_ends: Instant::now(),
            wasi_nn,
        }
    }

    /// What the filesystem host functions see.
    pub(crate) fn state_fs(&mut self) -> StateFs<'_> {
        StateFs {
            fs: WasiFilesystemCtxView {
                ctx: self.wasi.filesystem(),
                table: &mut self.table,
            },
            quota: self.state.clone(),
        }
    }

    /// What `wasi:io/poll` sees.
    pub(crate) fn deadline_poll(&mut self) -> DeadlinePoll<'_> {
        DeadlinePoll {
            table: &mut self.table,
            ends: self.call_ends,
        }
    }

    /// What the monotonic clock's host functions see.
    pub(crate) fn bounded_clock(&mut self) -> BoundedClock<'_> {
        BoundedClock {
            clocks: WasiClocksCtxView {
                ctx: self.wasi.clocks(),
                table: &mut self.table,
            },
            ends: self.call_ends,
        }
    }

    /// What the nn host functions see.
    pub(crate) fn nn_view(&mut self) -> NnView<'_> {
        NnView {
            nn: &mut self.nn,
            table: &mut self.table,
        }
    }

    /// What the `wasi:nn` host functions see.
    pub(crate) fn wasi_nn_view(&mut self) -> WasiNnView<'_> {
        WasiNnView {
            table: &mut self.table,
            nn: &mut self.wasi_nn,
        }
    }

    /// Reset per-call bookkeeping before entering the guest, whose call (and
    /// the host work it asks for) must end within `deadline`.
    pub(crate) fn begin_call(&mut self, deadline: Duration) {
        self.log_lines = 0;
        self.last_error = None;
        self.limiter.denied = false;
        self.stderr_tail.take();
        let now = Instant::now();
        // A batch's deadline may saturate; a year is as good as never.
        self.call_ends = now
            .checked_add(deadline)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400));
        if let Some(q) = &self.state {
            q.settle();
        }
        self.nn.begin_call_at(now, deadline);
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Linear-memory cap. Remembers a refusal so a following trap can be
/// reported as a memory-limit failure rather than an anonymous abort.
pub(crate) struct MemoryCap {
    pub(crate) max_bytes: usize,
    pub(crate) denied: bool,
    /// Every linear memory of the instance, as large as it has grown:
    /// wasmtime asks here for each memory's initial size too.
    pub(crate) linear_bytes: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.max_bytes && maximum.is_none_or(|m| desired <= m);
        if ok {
            self.linear_bytes += desired.saturating_sub(current);
        } else {
            self.denied = true;
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl log::Host for InstanceState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let mut message = message;
        if message.len() > LOG_LINE_BYTES {
            let mut cut = LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        if matches!(level, log::Level::Error) {
            self.last_error = Some(message.clone());
        }
        self.log_lines += 1;
        if self.log_lines > LOG_LINES_PER_CALL {
            return Ok(());
        }
        let plugin = self.label.as_str();
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

impl clock::Host for InstanceState {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(self.started.elapsed().as_nanos() as u64)
    }
}

impl types::Host for InstanceState {}
