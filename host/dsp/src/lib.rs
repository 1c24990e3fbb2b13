//! Audio front ends following the MLPerf Tiny reference pipelines (each
//! module's comment summarises its pipeline), in plain Rust with no
//! WebAssembly: plugins compile them in through the SDK, and the host serves
//! [`front_end::FrontEnd`] to plugins as the `gatehouse:dsp/audio` kernels,
//! so the two compute the same numbers.

// Outside tests, nothing here unwraps: a panic on data from a plugin, a
// file or the network would take down the gateway. Clippy holds every
// change to that (`cargo clippy`).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod front_end;
pub mod lfbe;
pub mod logmel;
pub mod mel;
pub mod mfcc;
mod spectrum;
pub mod window;

pub use spectrum::Spectrum;
