//! aarch64 kernels.

pub mod dot;
pub mod neon;
