//! Where Services and EndpointSlices come from: the Kubernetes API ([`kube`]) or YAML
//! files ([`file`]). A source only records what it sees into the shared
//! [`ChangeTracker`] through a [`TrackerHandle`], which nudges the sync runner.

pub mod file;
pub mod kube;

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::tracker::ChangeTracker;

/// Shared access to the change tracker plus the nudge for the sync runner.
#[derive(Clone, Debug, Default)]
pub struct TrackerHandle {
    tracker: Arc<Mutex<ChangeTracker>>,
    notify: Arc<Notify>,
}

impl TrackerHandle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records changes with `f`, then wakes the runner.
    pub fn update<R>(&self, f: impl FnOnce(&mut ChangeTracker) -> R) -> R {
        let result = f(&mut self.lock());
        self.notify.notify_one();
        result
    }

    /// The tracker, for the runner.
    pub fn lock(&self) -> MutexGuard<'_, ChangeTracker> {
        // A panic while holding the lock leaves the tracker consistent (every method
        // finishes its bookkeeping before returning), so recover from poisoning.
        self.tracker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Resolves when a change was recorded since the last call.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}
