//! The outer loops of the vector kernels, shared by every instruction set
//! that computes the same way (tract's habit: a generic driver, with the
//! per-architecture micro-kernels plugged in). Each set's entry point checks
//! the CPU, then hands its micro-kernels here as closures.
//!
//! - [`rows`]: conv and fully connected as dot products of an i16 patch with
//!   i16 filter rows (AVX2 `vpmaddwd`, NEON `smlal`);
//! - [`blocks`]: conv and fully connected as a broadcast GEMM over 16-row
//!   blocks of i8 weights (AVX-512 VNNI `vpdpbusd`, NEON `sdot`);
//! - [`channels`]: depthwise conv across channels, a row of pixels at a time.

pub mod blocks;
pub mod channels;
pub mod rows;
