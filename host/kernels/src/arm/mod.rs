//! aarch64 kernels.

pub mod add;
pub mod dot;
pub mod neon;
