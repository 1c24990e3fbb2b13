//! The outer loops of the vector kernels, shared by every instruction set
//! that computes the same way (tract's habit: a generic driver, with the
//! per-architecture micro-kernels plugged in). Each set's entry point checks
//! the CPU, then hands its micro-kernels here as closures.
//!
//! - [`rows`]: conv and fully connected over i16 weights, each pixel's
//!   patch gathered and widened (AVX2 `vpmaddwd` over pairs, NEON `smlal`
//!   over rows);
//! - [`pairs`]: conv over AVX2's pairs with windows read in place from the
//!   input widened once;
//! - [`blocks`]: conv and fully connected as a broadcast GEMM over 16-row
//!   blocks of i8 weights (AVX-512 VNNI `vpdpbusd`, NEON `sdot`);
//! - [`channels`]: depthwise conv across channels, a row of pixels at a time.

pub mod blocks;
pub mod channels;
#[cfg(target_arch = "x86_64")]
pub mod pairs;
pub mod rows;

/// Groups of up to `p` of `count` consecutive items (output pixels, or rows
/// of a batch) as `(first, n)`: whole groups of `p`, the last moved back to
/// overlap the one before rather than left short (its items computed twice
/// come out the same bytes), or one short group when `count < p`. A GEMM
/// that shares each weight load among `p` items then never runs fewer.
pub(crate) fn groups(count: usize, p: usize) -> impl Iterator<Item = (usize, usize)> {
    let p = p.max(1);
    let mut next = 0;
    std::iter::from_fn(move || {
        if next >= count {
            return None;
        }
        let first = if count >= p {
            next.min(count - p)
        } else {
            next
        };
        let n = (count - first).min(p);
        next = first + n;
        Some((first, n))
    })
}

#[cfg(test)]
mod tests {
    use super::groups;

    #[test]
    fn groups_cover_every_item_in_whole_groups() {
        for p in 1..=9 {
            for count in 0..40 {
                let g: Vec<_> = groups(count, p).collect();
                let mut seen = vec![false; count];
                for &(first, n) in &g {
                    assert!(n == p || (count < p && n == count), "{count} by {p}: {g:?}");
                    seen[first..first + n].iter_mut().for_each(|s| *s = true);
                }
                assert!(seen.iter().all(|&s| s), "{count} by {p}: {g:?}");
                assert_eq!(g.len(), count.div_ceil(p), "{count} by {p}");
            }
        }
    }
}
