//! x86-64 kernels. Each set is entered only through [`crate::dispatch`],
//! which checks the CPU first; the entry points re-check (a cached atomic
//! load) so calling one on a CPU without the feature falls back to scalar
//! instead of faulting.

/// `$kernel::<NP>($args)` for `NP = $n` from 1 to 8 (8 for more): the
/// depthwise kernels hold their filter pairs in registers, so each count
/// gets its own straight-line code.
macro_rules! by_pairs {
    ($n:expr, $kernel:ident($($arg:expr),* $(,)?)) => {
        match $n {
            1 => $kernel::<1>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            3 => $kernel::<3>($($arg),*),
            4 => $kernel::<4>($($arg),*),
            5 => $kernel::<5>($($arg),*),
            6 => $kernel::<6>($($arg),*),
            7 => $kernel::<7>($($arg),*),
            _ => $kernel::<8>($($arg),*),
        }
    };
}

pub mod add;
pub mod amx;
pub mod avx2;
pub mod avx512;
pub mod requant;
pub mod requant512;
