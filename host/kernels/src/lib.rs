//! Int8 kernels with TensorFlow Lite's reference semantics.
//!
//! Each operator has a `Spec` (what the model says), a prepared form that
//! owns its weights and precomputed multipliers, and a scalar reference
//! function. Faster paths plug into [`dispatch::KernelSet`] and are tested
//! against the scalar reference. Nothing here knows about WebAssembly.

// Outside tests, nothing here unwraps: a panic on data from a plugin, a
// file or the network would take down the gateway. Clippy holds every
// change to that (`cargo clippy`).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod aligned;
mod error;

pub mod add;
#[cfg(target_arch = "aarch64")]
pub mod arm;
pub mod batch_matmul;
pub mod broadcast;
pub mod conv;
pub mod depthwise;
pub mod dispatch;
mod drive;
pub mod dynamic_quantize;
pub mod elementwise;
mod fixed16;
pub mod fully_connected;
pub mod geometry;
pub mod linear_quant;
#[cfg(test)]
mod litert_fixture;
pub mod lstm;
pub mod movement;
pub mod pack;
#[cfg(test)]
mod paths;
pub mod pooling;
pub mod quant;
pub mod reduce;
pub mod slab;
pub mod softmax;
#[cfg(target_arch = "x86_64")]
pub mod x86;

pub use add::{Add, AddSpec};
pub use batch_matmul::{BatchMatMul, BatchMatMulSpec};
pub use conv::{Conv2d, Conv2dSpec};
pub use depthwise::{DepthwiseConv2d, DepthwiseConv2dSpec};
pub use dispatch::KernelSet;
pub use error::KernelError;
pub use fully_connected::{FullyConnected, FullyConnectedSpec};
pub use geometry::{Padding, Shape4, Window, WindowSpec};
pub use lstm::{Lstm, LstmSpec};
pub use pooling::Pool2d;
pub use quant::{Activation, Requant, Rounding, Semantics, activation_range};
pub use slab::Slab;
pub use softmax::Softmax;
