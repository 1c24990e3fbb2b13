//! The `gatehouse` command's scenarios, one module per area, linked into
//! one test binary: each of these links the whole runtime (wasmtime, tokio,
//! the brokers' clients), and linking it once instead of fourteen times was
//! minutes of CI. nextest still runs every test in its own process.

mod common;

mod admin;
mod bench;
mod capabilities;
mod conformance;
mod describe;
mod ecg;
mod exec;
mod fleet;
mod maintenance;
mod mqtt;
mod new;
mod onnx_models;
mod onnx_node;
mod op_coverage;
mod ota;
mod run_kws;
mod run_plugins;
mod serve;
mod smart_home;
mod stress;
