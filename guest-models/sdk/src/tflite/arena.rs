//! The activation arena: one host buffer shared by every activation tensor,
//! with offsets planned so that tensors alive at the same time never share
//! bytes (TFLite Micro's greedy planner: largest first, lowest fitting offset).

/// A buffer to place: its size and the operators between which it must survive
/// (inclusive; the model input is "defined" at 0 and outputs live to the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    pub size: usize,
    pub first: usize,
    pub last: usize,
}

impl Lifetime {
    fn overlaps_in_time(&self, other: &Lifetime) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Offsets for each buffer, and the arena size they need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArenaPlan {
    pub offsets: Vec<usize>,
    pub peak: usize,
}

/// Place `buffers` in one arena, each offset a multiple of `align`.
pub fn plan(buffers: &[Lifetime], align: usize) -> ArenaPlan {
    let align = align.max(1);
    let mut order: Vec<usize> = (0..buffers.len()).collect();
    order.sort_by(|&a, &b| {
        buffers[b]
            .size
            .cmp(&buffers[a].size)
            .then(buffers[a].first.cmp(&buffers[b].first))
            .then(a.cmp(&b))
    });
    let mut offsets = vec![0usize; buffers.len()];
    let mut placed: Vec<usize> = Vec::with_capacity(buffers.len());
    let mut peak = 0;
    for &i in &order {
        let b = buffers[i];
        // Occupied ranges of buffers alive at the same time, by offset.
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| buffers[j].overlaps_in_time(&b) && buffers[j].size > 0)
            .map(|&j| (offsets[j], offsets[j] + buffers[j].size))
            .collect();
        busy.sort_unstable();
        let mut candidate = 0;
        for (start, end) in busy {
            if candidate + b.size <= start {
                break;
            }
            candidate = candidate.max(end.div_ceil(align) * align);
        }
        offsets[i] = candidate;
        peak = peak.max(candidate + b.size);
        placed.push(i);
    }
    ArenaPlan { offsets, peak }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(size: usize, first: usize, last: usize) -> Lifetime {
        Lifetime { size, first, last }
    }

    #[test]
    fn a_chain_ping_pongs_between_two_slots() {
        // t0 -> op0 -> t1 -> op1 -> t2 -> op2 -> t3
        let bufs = [lt(100, 0, 0), lt(100, 0, 1), lt(100, 1, 2), lt(100, 2, 3)];
        let p = plan(&bufs, 16);
        assert_eq!(p.peak, 112 + 100); // the second slot starts at 100 rounded up to 16
        assert_eq!(p.offsets[0], p.offsets[2]);
        assert_ne!(p.offsets[0], p.offsets[1]);
    }

    #[test]
    fn fills_gaps_with_smaller_buffers() {
        let bufs = [lt(100, 0, 5), lt(50, 0, 1), lt(50, 2, 3), lt(40, 0, 5)];
        let p = plan(&bufs, 1);
        // 100 + 50 (the two 50s share a slot) + 40.
        assert_eq!(p.peak, 190);
    }

    #[test]
    fn random_plans_never_overlap_live_buffers() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..200 {
            let n = 1 + rnd(30);
            let bufs: Vec<Lifetime> = (0..n)
                .map(|_| {
                    let first = rnd(20);
                    lt(rnd(1000), first, first + rnd(5))
                })
                .collect();
            let p = plan(&bufs, 16);
            for i in 0..n {
                assert_eq!(p.offsets[i] % 16, 0);
                assert!(p.offsets[i] + bufs[i].size <= p.peak);
                for j in 0..i {
                    let (a, b) = (bufs[i], bufs[j]);
                    if a.overlaps_in_time(&b) && a.size > 0 && b.size > 0 {
                        let disjoint = p.offsets[i] + a.size <= p.offsets[j]
                            || p.offsets[j] + b.size <= p.offsets[i];
                        assert!(disjoint, "{i} and {j} overlap: {bufs:?} {p:?}");
                    }
                }
            }
            // Never worse than giving every buffer its own slot.
            let total: usize = bufs.iter().map(|b| b.size.div_ceil(16) * 16).sum();
            assert!(p.peak <= total);
            // Never better than the most memory alive at one moment.
            let busiest = (0..30)
                .map(|t| {
                    bufs.iter()
                        .filter(|b| b.first <= t && t <= b.last)
                        .map(|b| b.size)
                        .sum::<usize>()
                })
                .max()
                .unwrap_or(0);
            assert!(p.peak >= busiest);
        }
    }
}
