//! Instances that each serve one stream: the pieces one device sends (a
//! chunk of audio, a few vibration samples) reach one instance of their
//! own, which keeps the stream's state between calls and never sees another
//! stream's pieces, whatever the pool and the batcher do for other
//! requests. A plugin has at most [`Policy::streams`](super::Policy)
//! stream instances; a new stream beyond that takes the place of the one
//! idle the longest, whose state is lost (logged and counted). A stream
//! whose instance belongs to a version that is no longer active restarts
//! on the active one: its state is the old version's and is not carried
//! over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Deployment, lock};
use crate::error::Error;
use crate::plugin::Instance;

struct Entry {
    deployment: Arc<Deployment>,
    instance: Arc<Mutex<Instance>>,
    last_used: Instant,
}

/// One plugin's stream instances.
pub(crate) struct Streams {
    entries: Mutex<HashMap<String, Entry>>,
    limit: usize,
    /// Streams whose state was dropped: evicted, or restarted on a new version.
    restarted: std::sync::atomic::AtomicU64,
}

impl Streams {
    pub(crate) fn new(limit: usize) -> Streams {
        Streams {
            entries: Mutex::new(HashMap::new()),
            limit: limit.max(1),
            restarted: Default::default(),
        }
    }

    /// The instance serving `key` on `active`, made if the stream is new or
    /// its instance is of another version.
    pub(crate) fn instance(
        &self,
        key: &str,
        active: &Arc<Deployment>,
    ) -> Result<Arc<Mutex<Instance>>, Error> {
        let mut entries = lock(&self.entries);
        if let Some(e) = entries.get_mut(key) {
            if Arc::ptr_eq(&e.deployment, active) {
                e.last_used = Instant::now();
                return Ok(e.instance.clone());
            }
            tracing::info!(plugin = %active.id(), stream = key, from = %e.deployment.id(), "stream restarts on the new version");
            self.count_restart();
        } else if entries.len() >= self.limit {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                tracing::warn!(plugin = %active.id(), stream = %k, limit = self.limit, "stream dropped for a new one: its state is lost");
                entries.remove(&k);
                self.count_restart();
            }
        }
        // Made under the lock: a burst of new streams must not make more
        // instances than the limit allows.
        let instance = Arc::new(Mutex::new(active.pool.fresh()?));
        entries.insert(
            key.to_string(),
            Entry {
                deployment: active.clone(),
                instance: instance.clone(),
                last_used: Instant::now(),
            },
        );
        Ok(instance)
    }

    fn count_restart(&self) {
        self.restarted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Streams now held.
    pub(crate) fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub(crate) fn restarted(&self) -> u64 {
        self.restarted.load(std::sync::atomic::Ordering::Relaxed)
    }
}
