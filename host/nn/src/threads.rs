//! The threads one inference may share its layers over: the caller's own
//! thread plus a pool the host owns (never a plugin), shared by every
//! plugin of the runtime.
//!
//! A layer split for `n` threads is worked on by the calling thread and at
//! most `n - 1` helpers from the pool, so an inference never occupies more
//! than `n` threads, and one plugin cannot crowd out the others: each busy
//! plugin always has its own thread, the pool's threads serve the queued
//! layers first come, first served, from whichever plugins are busy, and
//! a part no helper came for is done by its plugin's own thread. Parts are
//! whole slabs of output rows, each computed exactly as the whole layer
//! computes it, so the result is the same bytes at any thread count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use gatehouse_kernels::dispatch::Split;
use gatehouse_kernels::{KernelError, Slab};

use crate::NnFault;
use crate::crew::Crew;

/// A handle on the runtime's threads; cheap to clone.
#[derive(Clone)]
pub struct Threads {
    count: usize,
    /// `count - 1` helpers; none for one thread.
    crew: Option<Arc<Crew>>,
    /// Replaces every kernel set's `Split::macs_per_byte` when set.
    split_macs_per_byte: Option<u64>,
}

/// The most threads a runtime asks for; far above any gateway's cores.
pub const MAX_THREADS: usize = 256;

impl Threads {
    /// One thread: every layer runs on the caller's thread.
    pub fn one() -> Threads {
        Threads {
            count: 1,
            crew: None,
            split_macs_per_byte: None,
        }
    }

    /// `count` threads: the caller's and a pool of `count - 1`.
    pub fn new(count: usize) -> Result<Threads, NnFault> {
        if count == 0 || count > MAX_THREADS {
            return Err(NnFault::invalid(format!(
                "{count} threads; between 1 and {MAX_THREADS} are possible"
            )));
        }
        if count == 1 {
            return Ok(Threads::one());
        }
        let crew = Crew::new(count - 1)
            .map_err(|e| NnFault::invalid(format!("cannot start {count} kernel threads: {e}")))?;
        Ok(Threads {
            count,
            crew: Some(Arc::new(crew)),
            split_macs_per_byte: None,
        })
    }

    /// These threads, splitting every layer of at least `macs_per_byte`
    /// multiply-accumulates per byte of activations that is big enough,
    /// whatever the kernel set's [`Split`] would ask: for an operator tuning a machine
    /// (`GATEHOUSE_SPLIT_MACS_PER_BYTE`), and for tests that must see every
    /// set's layers split. `None` leaves each set its own.
    pub fn splitting_at(self, macs_per_byte: Option<u64>) -> Threads {
        Threads {
            split_macs_per_byte: macs_per_byte,
            ..self
        }
    }

    /// How many threads one inference may use.
    pub fn count(&self) -> usize {
        self.count
    }

    /// How many parts a layer of `macs` multiply-accumulates over
    /// `pixels` output pixels, reading and writing `bytes` of activations,
    /// is worth under the kernel set's bounds (`split`).
    pub(crate) fn parts_for(&self, macs: u64, pixels: usize, bytes: usize, split: Split) -> usize {
        let per_byte = self.split_macs_per_byte.unwrap_or(split.macs_per_byte);
        if macs < per_byte.saturating_mul(bytes as u64) {
            return 1;
        }
        let worth = (macs / split.part_macs.max(1)).min((pixels / split.part_pixels.max(1)) as u64);
        (worth.min(self.count as u64) as usize).max(1)
    }

    /// Runs each slab on its part of `input`, writing its part of
    /// `output`, spread over the threads; an empty `slabs` runs nothing.
    pub(crate) fn run_slabs<K: Sync>(
        &self,
        slabs: &[Slab<K>],
        input: &[i8],
        output: &mut [i8],
        kernel: impl Fn(&K, &[i8], &mut [i8]) -> Result<(), KernelError> + Sync,
    ) -> Result<(), KernelError> {
        let mut parts = Vec::with_capacity(slabs.len());
        let (mut rest, mut at) = (output, 0);
        for s in slabs {
            // Slabs come in order and do not overlap: carve each one's
            // output from what is left.
            let gap = s.output.start.checked_sub(at);
            let fits = gap
                .zip(s.output.end.checked_sub(at))
                .filter(|&(_, e)| e <= rest.len());
            let (Some((gap, end)), Some(src)) = (fits, input.get(s.input.clone())) else {
                return Err(KernelError::new(
                    "slab",
                    "a slab reaches past its layer's operands",
                ));
            };
            let (mine, tail) = std::mem::take(&mut rest)[gap..].split_at_mut(end - gap);
            parts.push((&s.op, src, mine));
            rest = tail;
            at = s.output.end;
        }
        self.run(parts, |(op, src, out)| kernel(op, src, out))
    }

    /// Runs `f` on every part and returns when all are done: the first
    /// error if any failed. This thread and up to `count - 1` helpers from
    /// the pool each take the next part not yet taken, so when the pool is
    /// busy with other plugins this thread does the parts nobody came for,
    /// and an inference is never slower than on one thread by more than
    /// the wait for a helper that turns up with nothing left to do.
    pub(crate) fn run<T, E>(
        &self,
        parts: impl IntoIterator<Item = T>,
        f: impl Fn(T) -> Result<(), E> + Sync,
    ) -> Result<(), E>
    where
        T: Send,
        E: Send,
    {
        let Some(crew) = &self.crew else {
            return parts.into_iter().try_for_each(f);
        };
        let parts: Vec<Mutex<Option<T>>> = parts.into_iter().map(|p| Mutex::new(Some(p))).collect();
        let next = AtomicUsize::new(0);
        let failed: Mutex<Option<E>> = Mutex::new(None);
        let work = || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = parts.get(i) else { break };
                let part = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(Err(e)) = part.map(&f) {
                    failed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                }
            }
        };
        crew.run(self.count.min(parts.len()).saturating_sub(1), &work);
        match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Default for Threads {
    fn default() -> Self {
        Threads::one()
    }
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Threads")
            .field("count", &self.count)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_and_errors_come_back() {
        for n in [1, 2, 3] {
            let t = Threads::new(n).unwrap();
            assert_eq!(t.count(), n);
            let ran = AtomicUsize::new(0);
            let done: Result<(), ()> = t.run(0..10, |i| {
                ran.fetch_add(1 << i, Ordering::Relaxed);
                Ok(())
            });
            assert!(done.is_ok());
            assert_eq!(ran.load(Ordering::Relaxed), (1 << 10) - 1);
            let failed = t.run(0..10, |i| if i == 7 { Err(i) } else { Ok(()) });
            assert_eq!(failed, Err(7));
        }
        assert!(Threads::new(0).is_err());
        assert!(Threads::new(MAX_THREADS + 1).is_err());
    }

    #[test]
    fn only_layers_worth_it_are_split() {
        use gatehouse_kernels::dispatch::{AVX2, SPLIT, Split};
        let two = Threads::new(2).unwrap();
        // ResNet-8's 3x3 convs: 32x32x16 in and out, 2.4 M MACs, 72 a byte.
        let conv = (32 * 32 * 16 * 9 * 16, 32 * 32, 2 * 32 * 32 * 16);
        assert_eq!(two.parts_for(conv.0, conv.1, conv.2, SPLIT), 2);
        assert_eq!(Threads::one().parts_for(conv.0, conv.1, conv.2, SPLIT), 1);
        let eight = Threads::new(8).unwrap();
        assert_eq!(eight.parts_for(conv.0, conv.1, conv.2, SPLIT), 8);
        // A set that needs more work a byte (the tiles') keeps them whole,
        // unless the operator says otherwise.
        let tiles = Split {
            macs_per_byte: 512,
            ..SPLIT
        };
        assert_eq!(two.parts_for(conv.0, conv.1, conv.2, tiles), 1);
        let eager = two.clone().splitting_at(Some(0));
        assert_eq!(eager.parts_for(conv.0, conv.1, conv.2, tiles), 2);
        assert_eq!(eager.parts_for(SPLIT.part_macs, 1024, 1, tiles), 1);
        // MobileNet's pointwise 24x24x32 -> 32: 16 MACs per byte moved,
        // kept whole but on AVX2, which splits it.
        let pointwise = (24 * 24 * 32 * 32, 24 * 24, 2 * 24 * 24 * 32);
        assert_eq!(
            two.parts_for(pointwise.0, pointwise.1, pointwise.2, SPLIT),
            1
        );
        assert_eq!(
            two.parts_for(pointwise.0, pointwise.1, pointwise.2, AVX2.split),
            2
        );
        // VWW's last pointwise layers, 3x3 pixels of 256 -> 256: split on
        // AVX2, whose parts may be 4 pixels.
        let nine = (9 * 256 * 256, 9, 2 * 9 * 256);
        assert_eq!(two.parts_for(nine.0, nine.1, nine.2, AVX2.split), 2);
        assert_eq!(two.parts_for(nine.0, nine.1, nine.2, SPLIT), 1);
        // Small layers, and layers of few pixels, stay whole.
        assert_eq!(two.parts_for(SPLIT.part_macs, 1024, 1, SPLIT), 1);
        assert_eq!(two.parts_for(1 << 30, SPLIT.part_pixels, 1, SPLIT), 1);
        assert_eq!(two.parts_for(AVX2.split.part_macs, 1024, 1, AVX2.split), 1);
        assert_eq!(
            two.parts_for(1 << 30, AVX2.split.part_pixels, 1, AVX2.split),
            1
        );
    }
}
