//! `wasi:cli/command` components that import `wasi:nn`: what `gatehouse
//! exec` runs, so that a guest written for wasmtime's wasi-nn runs here
//! unchanged. The guest gets its arguments, stdout and stderr passed
//! through, and `wasi:nn` ([`crate::wasi_nn`]); nothing else: no
//! environment, no stdin, no preopened directory, no sockets, no name
//! lookup. Its memory is capped and its CPU time bounded by a deadline.

use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{ResourceLimiter, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::engine::Runtime;
use crate::error::Error;
use crate::plugin::Plugin;
use crate::wasi_nn::{self, WasiNn, WasiNnView};

/// How a command runs.
pub struct CommandConfig {
    /// `argv`, the program's name first.
    pub args: Vec<String>,
    /// Cap on its linear memory.
    pub memory_bytes: usize,
    /// CPU deadline of the whole run.
    pub deadline: Duration,
    /// The plugin that loads `wasi:nn` models (the bundled `tflite` one);
    /// without it every `graph.load` fails with `unsupported-operation`.
    pub nn_loader: Option<Plugin>,
}

struct CommandState {
    wasi: WasiCtx,
    table: ResourceTable,
    nn: WasiNn,
    memory_bytes: usize,
}

impl WasiView for CommandState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl CommandState {
    fn nn_view(&mut self) -> WasiNnView<'_> {
        WasiNnView {
            table: &mut self.table,
            nn: &mut self.nn,
        }
    }
}

impl ResourceLimiter for CommandState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.memory_bytes && maximum.is_none_or(|m| desired <= m))
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

impl Runtime {
    /// Run the command component `wasm` to its end; returns its exit code.
    pub fn exec(&self, wasm: &[u8], origin: &str, config: CommandConfig) -> Result<i32, Error> {
        let load = |reason: String| Error::Load {
            origin: origin.to_string(),
            reason,
        };
        let engine = self.engine();
        let component = Component::new(engine, wasm).map_err(|e| load(format!("{e:#}")))?;
        let mut linker = Linker::<CommandState>::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| wasi_nn::add_to_linker(&mut linker, CommandState::nn_view))
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        let wasi = WasiCtxBuilder::new()
            .inherit_stdout()
            .inherit_stderr()
            .args(&config.args)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut store = Store::new(
            engine,
            CommandState {
                wasi,
                table: ResourceTable::new(),
                nn: WasiNn::new(config.nn_loader),
                memory_bytes: config.memory_bytes,
            },
        );
        store.limiter(|s| s);
        store.set_epoch_deadline(self.shared.ticks(config.deadline));
        let command = Command::instantiate(&mut store, &component, &linker)
            .map_err(|e| load(format!("not a wasi:cli/command this host can run: {e:#}")))?;
        match command.wasi_cli_run().call_run(&mut store) {
            Ok(Ok(())) => Ok(0),
            Ok(Err(())) => Ok(1),
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => Ok(exit.0),
                None if matches!(
                    e.downcast_ref::<wasmtime::Trap>(),
                    Some(wasmtime::Trap::Interrupt)
                ) =>
                {
                    Err(load(format!(
                        "stopped after its CPU deadline of {:?}",
                        config.deadline
                    )))
                }
                None => Err(load(format!("trapped: {e:#}"))),
            },
        }
    }
}
