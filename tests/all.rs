//! Cross-crate scenarios, one module per area, in one test binary (see
//! Cargo.toml). nextest still runs every test in its own process.

mod batching;
mod hostile;
mod javascript;
mod python;
mod registry;
mod runtime_plugins;
mod sandbox;
mod wasi;
