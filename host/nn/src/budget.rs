//! Host work done for a plugin, bounded by the plugin's deadline.
//!
//! Epoch interruption stops a guest's own instructions, but not a host
//! call it makes: a plan of heavy operators, a batch of thousands of
//! inputs, or one huge operator runs on the host's CPU until it returns. So
//! every operator is estimated before it runs, from its multiply-accumulates
//! and the elements it touches at the kernel set's measured [`Pace`], and a
//! host call whose next operator cannot finish before the deadline stops
//! there with the same deadline failure as a guest loop. A single operator
//! too big for the time left is refused before it starts, instead of being
//! interrupted after.

use std::time::{Duration, Instant};

use gatehouse_kernels::movement::{self, StridedSlice};
use gatehouse_kernels::{FullyConnected, FullyConnectedSpec, KernelSet, Requant, Rounding};

use crate::NnFault;

/// What an operator costs: multiply-accumulates (conv, depthwise, fully
/// connected, pooling windows) and elements read or written (the rest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    pub macs: u64,
    pub elements: u64,
}

impl Work {
    /// The same work done `n` times.
    pub fn times(self, n: usize) -> Work {
        Work {
            macs: self.macs.saturating_mul(n as u64),
            elements: self.elements.saturating_mul(n as u64),
        }
    }
}

/// How fast a kernel set works, measured when the runtime starts, with a
/// margin: an estimate should come out above the time the work takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// Picoseconds per multiply-accumulate.
    ps_per_mac: u64,
    /// Picoseconds per element of a data-movement or elementwise operator.
    ps_per_element: u64,
}

/// Estimates are the measured time times this: operators that spill out of
/// the caches, and a busy machine, run slower than the measurement.
const MARGIN: u64 = 4;

impl Pace {
    /// Times a fully connected layer (one million MACs, weights in L2) and
    /// a strided slice (the slowest per element of the data movers) on `ks`.
    pub fn measure(ks: &KernelSet) -> Pace {
        let (depth, units, rows) = (512usize, 256usize, 8usize);
        let fc = FullyConnected::new(FullyConnectedSpec {
            batches: rows,
            depth,
            units,
            weights: (0..depth * units)
                .map(|i| (i * 7 % 255) as u8 as i8)
                .collect(),
            bias: None,
            requant: vec![Requant::from_real(0.001, Rounding::Double)],
            input_offset: 3,
            weights_offset: 0,
            output_offset: -1,
            act_min: -128,
            act_max: 127,
            rounding: Rounding::Double,
            layout: ks.layout,
        });
        let input: Vec<i8> = (0..rows * depth)
            .map(|i| (i * 13 % 251) as u8 as i8)
            .collect();
        let mut output = vec![0i8; rows * units];
        let mac_ns = fc.ok().and_then(|fc| {
            fastest(|| (ks.fully_connected)(&fc, &input, &mut output).is_ok())
                .map(|t| t.as_nanos() as f64 / (rows * depth * units) as f64)
        });
        let (side, elements) = (256usize, 128 * 128);
        let slice = StridedSlice::new(&[side, side], &[0, 1], &[2, 2], &[128, 128], 1);
        let src = vec![7u8; side * side];
        let mut dst = vec![0u8; elements];
        let element_ns = slice.ok().and_then(|k| {
            fastest(|| movement::strided_slice(&k, &src, &mut dst).is_ok())
                .map(|t| t.as_nanos() as f64 / (2 * elements) as f64)
        });
        let ps = |ns: Option<f64>, fallback: f64| {
            ((ns.unwrap_or(fallback) * 1000.0 * MARGIN as f64).ceil() as u64).max(1)
        };
        Pace {
            ps_per_mac: ps(mac_ns, 2.0),
            ps_per_element: ps(element_ns, 10.0),
        }
    }

    /// A pace that estimates everything as free (no deadline can be passed
    /// by an estimate), for host work that has no deadline.
    pub const fn free() -> Pace {
        Pace {
            ps_per_mac: 0,
            ps_per_element: 0,
        }
    }

    /// The estimated time of `work`, in nanoseconds.
    pub fn nanos(&self, work: Work) -> u64 {
        // Saturating u64, not u128: this runs before every operator, and a
        // u128 division is a library call.
        let ps = work
            .macs
            .saturating_mul(self.ps_per_mac)
            .saturating_add(work.elements.saturating_mul(self.ps_per_element));
        ps / 1000
    }
}

/// The shortest of three runs of `f` (after one to warm up), if every run succeeded.
fn fastest(mut f: impl FnMut() -> bool) -> Option<Duration> {
    if !f() {
        return None;
    }
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        if !f() {
            return None;
        }
        best = best.min(t.elapsed());
    }
    Some(best)
}

/// The time one host call may still spend. It reads the clock only when
/// the estimates admitted since the last reading use up what was left then,
/// so a plan of many small operators costs one clock read per call.
#[derive(Debug)]
pub struct Budget {
    deadline: Option<Instant>,
    pace: Pace,
    /// Nanoseconds known to be left, less the estimates admitted since.
    credit: u64,
}

impl Budget {
    /// Work until `deadline` at `pace`; `None` is no deadline.
    pub fn until(deadline: Option<Instant>, pace: Pace) -> Budget {
        Budget {
            deadline,
            pace,
            credit: 0,
        }
    }

    /// No deadline: host work a plugin did not ask for (`bench --native`).
    pub fn unlimited() -> Budget {
        Budget::until(None, Pace::free())
    }

    /// Admit `work`, or fail with [`NnFault::Deadline`] when its estimate
    /// does not fit in the time left (or no time is left). `what` names the
    /// work for the operator's log.
    pub fn admit(&mut self, work: Work, what: impl FnOnce() -> String) -> Result<(), NnFault> {
        let Some(deadline) = self.deadline else {
            return Ok(());
        };
        let need = self.pace.nanos(work);
        if need < self.credit {
            self.credit -= need;
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let left = u64::try_from(left.as_nanos()).unwrap_or(u64::MAX);
        if left == 0 || need > left {
            return Err(NnFault::Deadline(format!(
                "{} would need about {:?} of host time; {:?} of the deadline is left",
                what(),
                Duration::from_nanos(need),
                Duration::from_nanos(left)
            )));
        }
        self.credit = left - need;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_kernels::dispatch;

    use super::*;

    #[test]
    fn every_set_has_a_positive_pace() {
        for ks in dispatch::available() {
            let p = Pace::measure(ks);
            assert!(
                p.ps_per_mac > 0 && p.ps_per_element > 0,
                "{}: {p:?}",
                ks.name
            );
            // A million MACs take more than a microsecond and less than a
            // second on anything this runs on, margin included.
            let t = p.nanos(Work {
                macs: 1 << 20,
                elements: 0,
            });
            assert!((1_000..1_000_000_000).contains(&t), "{}: {t} ns", ks.name);
        }
    }

    #[test]
    fn work_that_cannot_finish_is_refused_before_it_starts() {
        let pace = Pace {
            ps_per_mac: 1000,
            ps_per_element: 1000,
        };
        let mut b = Budget::until(Some(Instant::now() + Duration::from_millis(500)), pace);
        // 100 ms of estimated work fits, four times over.
        let tenth = Work {
            macs: 100_000_000,
            elements: 0,
        };
        for _ in 0..4 {
            b.admit(tenth, || "a tenth".into()).unwrap();
        }
        // A second's worth does not fit in the half second left at most.
        let second = tenth.times(10);
        let e = b.admit(second, || "the big one".into()).unwrap_err();
        assert!(
            matches!(&e, NnFault::Deadline(m) if m.contains("the big one")),
            "{e}"
        );
    }

    #[test]
    fn a_passed_deadline_refuses_even_free_work() {
        let mut b = Budget::until(Some(Instant::now()), Pace::free());
        std::thread::sleep(Duration::from_millis(1));
        assert!(matches!(
            b.admit(Work::default(), || "nothing".into()),
            Err(NnFault::Deadline(_))
        ));
        let mut none = Budget::unlimited();
        none.admit(
            Work {
                macs: u64::MAX,
                elements: u64::MAX,
            },
            || "all".into(),
        )
        .unwrap();
    }
}
