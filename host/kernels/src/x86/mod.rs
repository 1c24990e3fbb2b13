//! x86-64 kernels. Each set is entered only through [`crate::dispatch`],
//! which checks the CPU first; the entry points re-check (a cached atomic
//! load) so calling one on a CPU without the feature falls back to scalar
//! instead of faulting.

pub mod add;
pub mod amx;
pub mod avx2;
pub mod avx512;
pub mod requant;
pub mod requant512;
