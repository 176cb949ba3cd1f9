//! Where Services and EndpointSlices come from: the Kubernetes API ([`kube`]) or YAML
//! files ([`file`]). A source only records what it sees into the shared
//! [`ChangeTracker`] through a [`TrackerHandle`], which nudges the sync runner.
//! The node's own addresses are a source too
//! ([`crate::node_addresses::watch::AddressWatcher`]); they are recorded beside the
//! tracker in a [`NodeAddressTracker`].

pub mod file;
pub mod kube;

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::{
    node_addresses::{NodeAddressTracker, NodeAddresses},
    tracker::ChangeTracker,
};

/// Shared access to the change tracker plus the nudge for the sync runner.
#[derive(Clone, Debug, Default)]
pub struct TrackerHandle {
    tracker: Arc<Mutex<ChangeTracker>>,
    node: Arc<Mutex<NodeAddressTracker>>,
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

    /// Records the node's latest address selection; wakes the runner if it differs
    /// from what the last sync applied.
    pub fn set_node_addresses(&self, addresses: NodeAddresses) {
        let changed = self
            .node
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .record(addresses);
        if changed {
            self.notify.notify_one();
        }
    }

    /// The node-address selection to apply with the next sync, if it changed.
    pub fn take_node_addresses(&self) -> Option<NodeAddresses> {
        self.node
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// Resolves when a change was recorded since the last call.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}
