//! A window layer with, where it is big enough to gain, its output rows cut
//! into slabs that run on several threads ([`Threads`]).

use gatehouse_kernels::{KernelError, KernelSet, Shape4, Slab};

use crate::threads::Threads;

/// Bytes of a layer's input and output.
pub(super) fn io_bytes(input: Shape4, output: Shape4) -> usize {
    input
        .len()
        .unwrap_or(0)
        .saturating_add(output.len().unwrap_or(0))
}

pub(super) struct Sliced<K> {
    pub(super) whole: K,
    /// Empty when the layer runs whole, on the caller's thread.
    slabs: Vec<Slab<K>>,
    threads: Threads,
}

impl<K: Sync> Sliced<K> {
    /// `whole`, cut by `cut` into as many slabs as its `macs` over
    /// `pixels` output pixels, with `bytes` of input and output, are worth
    /// on `threads` with kernel set `ks`.
    pub(super) fn new(
        whole: K,
        (macs, pixels, bytes): (u64, usize, usize),
        threads: &Threads,
        ks: &KernelSet,
        cut: impl FnOnce(&K, usize) -> Result<Vec<Slab<K>>, KernelError>,
    ) -> Result<Self, KernelError> {
        let parts = threads.parts_for(macs, pixels, bytes, ks.split);
        let slabs = if parts > 1 {
            cut(&whole, parts)?
        } else {
            Vec::new()
        };
        Ok(Sliced {
            whole,
            slabs,
            threads: threads.clone(),
        })
    }

    pub(super) fn run(
        &self,
        input: &[i8],
        output: &mut [i8],
        kernel: impl Fn(&K, &[i8], &mut [i8]) -> Result<(), KernelError> + Sync,
    ) -> Result<(), KernelError> {
        if self.slabs.is_empty() {
            return kernel(&self.whole, input, output);
        }
        self.threads.run_slabs(&self.slabs, input, output, kernel)
    }

    /// What the slabs hold beyond the whole layer, each counted by `bytes`.
    pub(super) fn slab_bytes(&self, bytes: impl Fn(&K) -> usize) -> u64 {
        self.slabs.iter().map(|s| bytes(&s.op) as u64).sum()
    }
}
