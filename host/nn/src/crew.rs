//! The helper threads behind [`Threads`](crate::Threads).
//!
//! One inference's split layers are a few to a few hundred microseconds
//! each, back to back. A pool whose idle threads sleep in the kernel (as
//! rayon's do within microseconds) must be woken for every layer, which
//! costs about what a small layer's half does: measured here, two threads
//! were no faster than one. So idle helpers keep looking for work for a
//! while ([`SPIN`]) before they sleep, as XNNPACK's pthreadpool does, and
//! the thread that owns a layer works on it too, so a layer never waits for
//! a helper to wake.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle helper keeps looking for work before it sleeps:
/// longer than the gap between two layers of an inference, or between two
/// inferences of a busy stream.
const SPIN: Duration = Duration::from_micros(50);

pub(crate) struct Crew {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
}

struct Shared {
    /// Jobs with seats left for helpers, oldest first.
    queue: Mutex<VecDeque<Arc<Job>>>,
    wake: Condvar,
    /// The queue's length, read without the lock by spinning helpers.
    queued: AtomicUsize,
    /// Helpers asleep on `wake`: with none, a job wakes nobody (no system
    /// call per layer while the crew spins).
    sleeping: AtomicUsize,
    stop: AtomicBool,
}

/// A layer's work offered to helpers. Its seats left and the helpers
/// inside share one word, so that a helper taking a seat and the owner
/// closing the job cannot pass each other.
struct Job {
    /// Seats left (high 32 bits) and helpers inside (low 32 bits).
    state: AtomicU64,
    /// The owner's work, its lifetime erased: callable while a seat is
    /// held, because the owner waits for every holder before it returns
    /// (see [`Crew::run`]).
    work: *const (dyn Fn() + Sync),
    panicked: AtomicBool,
}

// SAFETY: `work` is only called by seat holders, while the owner keeps the
// closure alive; the closure itself is `Sync`.
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

const ONE_SEAT: u64 = 1 << 32;
const INSIDE: u64 = ONE_SEAT - 1;

impl Job {
    /// Takes a seat if one is left; the seat holder counts as inside.
    fn enter(&self) -> bool {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s >= ONE_SEAT).then(|| s - ONE_SEAT + 1)
            })
            .is_ok()
    }

    fn has_seats(&self) -> bool {
        self.state.load(Ordering::Acquire) >= ONE_SEAT
    }

    fn leave(&self) {
        self.state.fetch_sub(1, Ordering::AcqRel);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Crew {
    /// `helpers` threads, started now.
    pub(crate) fn new(helpers: usize) -> std::io::Result<Crew> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            queued: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let mut crew = Crew {
            shared,
            handles: Vec::with_capacity(helpers),
        };
        for i in 0..helpers {
            let s = crew.shared.clone();
            // On failure the crew so far is stopped and joined by its drop.
            let h = std::thread::Builder::new()
                .name(format!("gatehouse-kernels-{i}"))
                .spawn(move || helper(&s))?;
            crew.handles.push(h);
        }
        Ok(crew)
    }

    /// Calls `work` on this thread and on up to `helpers` helper threads
    /// at once, and returns when every call has returned. `work` shares
    /// the job out among its callers itself.
    pub(crate) fn run(&self, helpers: usize, work: &(dyn Fn() + Sync)) {
        let helpers = helpers.min(self.handles.len()).min(INSIDE as usize);
        if helpers == 0 {
            work();
            return;
        }
        let work: *const (dyn Fn() + Sync + '_) = work;
        // SAFETY: only the lifetime changes. Helpers call `work` only while
        // they hold a seat, and `Close` (dropped before this function
        // returns or unwinds) takes the seats back and waits until no
        // holder is inside, so no call outlives the borrow.
        let work: *const (dyn Fn() + Sync + 'static) = unsafe { std::mem::transmute(work) };
        let job = Arc::new(Job {
            state: AtomicU64::new(helpers as u64 * ONE_SEAT),
            work,
            panicked: AtomicBool::new(false),
        });
        {
            let mut q = lock(&self.shared.queue);
            q.push_back(job.clone());
            self.shared.queued.store(q.len(), Ordering::Release);
        }
        // A helper counts itself asleep under the queue's lock before it
        // checks the queue, so one that missed this job is counted here.
        if self.shared.sleeping.load(Ordering::Acquire) > 0 {
            self.shared.wake.notify_all();
        }
        let close = Close {
            job: &job,
            shared: &self.shared,
        };
        // SAFETY: `work` is the borrow this call was given.
        unsafe { (*job.work)() };
        drop(close);
        if job.panicked.load(Ordering::Acquire) {
            panic!("a kernel helper thread panicked");
        }
    }
}

/// Ends a job: no seats left, off the queue, and nobody inside.
struct Close<'a> {
    job: &'a Arc<Job>,
    shared: &'a Shared,
}

impl Drop for Close<'_> {
    fn drop(&mut self) {
        self.job.state.fetch_and(INSIDE, Ordering::AcqRel);
        {
            let mut q = lock(&self.shared.queue);
            q.retain(|j| !Arc::ptr_eq(j, self.job));
            self.shared.queued.store(q.len(), Ordering::Release);
        }
        // Helpers inside are finishing a part each.
        let mut spins = 0u32;
        while self.job.state.load(Ordering::Acquire) & INSIDE != 0 {
            spins += 1;
            if spins < 1 << 10 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        {
            let _q = lock(&self.shared.queue);
            self.shared.stop.store(true, Ordering::Release);
        }
        self.shared.wake.notify_all();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Takes a seat in the oldest job that has one, dropping jobs it fills
/// from the queue.
fn take_seat(s: &Shared) -> Option<Arc<Job>> {
    let mut q = lock(&s.queue);
    let i = q.iter().position(|j| j.enter())?;
    let job = if q[i].has_seats() {
        q[i].clone()
    } else {
        let job = q.remove(i)?;
        s.queued.store(q.len(), Ordering::Release);
        job
    };
    Some(job)
}

fn helper(s: &Shared) {
    let mut idle_since = Instant::now();
    loop {
        if s.stop.load(Ordering::Acquire) {
            return;
        }
        if s.queued.load(Ordering::Acquire) > 0
            && let Some(job) = take_seat(s)
        {
            // SAFETY: we hold a seat, so the owner keeps `work` alive
            // until we leave.
            let ran = catch_unwind(AssertUnwindSafe(|| unsafe { (*job.work)() }));
            if ran.is_err() {
                job.panicked.store(true, Ordering::Release);
            }
            job.leave();
            idle_since = Instant::now();
            continue;
        }
        if idle_since.elapsed() < SPIN {
            std::hint::spin_loop();
            continue;
        }
        let q = lock(&s.queue);
        s.sleeping.fetch_add(1, Ordering::AcqRel);
        let q = s
            .wake
            .wait_while(q, |q| {
                !s.stop.load(Ordering::Acquire) && !q.iter().any(|j| j.has_seats())
            })
            .unwrap_or_else(|p| p.into_inner());
        s.sleeping.fetch_sub(1, Ordering::AcqRel);
        drop(q);
        idle_since = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn on_helper() -> bool {
        std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("gatehouse-kernels"))
    }

    #[test]
    fn helpers_share_the_work_and_the_owner_waits_for_them() {
        let crew = Crew::new(3).unwrap();
        for _ in 0..50 {
            let calls = AtomicUsize::new(0);
            crew.run(3, &|| {
                calls.fetch_add(1, Ordering::SeqCst);
            });
            // The owner's call, and each helper's that took a seat, all
            // returned before `run` did.
            let n = calls.load(Ordering::SeqCst);
            assert!((1..=4).contains(&n), "{n}");
        }
    }

    #[test]
    fn work_no_helper_comes_for_is_done_by_its_owner() {
        let crew = Arc::new(Crew::new(1).unwrap());
        // Another plugin's layer holds the only helper (its owner stays
        // in until the helper has come, so that it does)...
        let (release, blocked) = mpsc::channel::<()>();
        let blocked = Mutex::new(blocked);
        let helper_in = Arc::new(AtomicBool::new(false));
        let other = {
            let (crew, helper_in) = (crew.clone(), helper_in.clone());
            std::thread::spawn(move || {
                crew.run(1, &|| {
                    if on_helper() {
                        helper_in.store(true, Ordering::SeqCst);
                        let _ = lock(&blocked).recv();
                    } else {
                        while !helper_in.load(Ordering::SeqCst) {
                            std::thread::yield_now();
                        }
                    }
                })
            })
        };
        while !helper_in.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // ...so this one's work is all done here, without waiting for it.
        let here = AtomicUsize::new(0);
        crew.run(1, &|| {
            assert!(!on_helper());
            here.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(here.load(Ordering::SeqCst), 1);
        release.send(()).unwrap();
        other.join().unwrap();
    }
}
