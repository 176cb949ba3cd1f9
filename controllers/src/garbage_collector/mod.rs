//! The garbage collector (kube-controller-manager's `garbagecollector`): deletes
//! objects whose owners are gone and carries out the propagation policies of deletes.
//!
//! - Every resource that can be listed, watched and deleted is watched ([`monitor`]),
//!   found by discovery, which is re-run every 30 seconds so that custom resources
//!   defined later are covered too.
//! - The watches keep a [`graph`] of objects by uid: their owners and dependents.
//! - Graph changes queue work ([`queue`]), which workers carry out ([`collect`]):
//!   - an object whose owners are all gone (checked with the API server) is deleted in
//!     the background; one with some owners left loses its references to the others;
//!   - an owner being deleted with the `foregroundDeletion` finalizer gets its dependents
//!     deleted, and loses the finalizer once none with `blockOwnerDeletion` is left;
//!   - an owner being deleted with the `orphan` finalizer gets its references removed
//!     from its dependents, then loses the finalizer.
//!
//! Failed work is retried with a growing delay; the watches retry with backoff.

mod collect;
mod graph;
mod monitor;
mod queue;
mod resources;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::future::join_all;
use kube::Client;

use crate::Error;
use crate::events::Events;
use collect::Collector;
use graph::Graph;
use monitor::{Monitors, lock};
use queue::Queue;
use resources::Resources;

const NAME: &str = "garbage-collector-controller";
/// How often discovery runs again.
const REDISCOVERY: Duration = Duration::from_secs(30);
/// How long the workers wait for the first lists of all watches before they start
/// (work is always checked with the API server, so starting early is only wasteful).
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
const WORKERS: usize = 8;

/// One thing to do, about the object with a uid.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    /// Delete it if its owners are gone; or, for an owner deleted in the foreground,
    /// finish that deletion once its blocking dependents are gone.
    AttemptToDelete(String),
    /// Orphan its dependents, then remove its `orphan` finalizer.
    Orphan(String),
}

/// Runs the garbage collector until it fails.
pub async fn run(client: Client) -> Result<(), Error> {
    let graph = Arc::new(Mutex::new(Graph::default()));
    let queue = Queue::new();
    let mut monitors = Monitors::new(client.clone(), graph.clone(), queue.clone());
    let first = loop {
        match Resources::discover(&client).await {
            Ok(resources) => break resources,
            Err(error) => {
                tracing::warn!(%error, "garbage collector discovery failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    let started = monitors.sync(&first);
    let watched = started.len();
    let resources = Arc::new(RwLock::new(first));
    let (keys, synced): (Vec<String>, Vec<_>) = started.into_iter().unzip();
    match tokio::time::timeout(SYNC_TIMEOUT, join_all(synced)).await {
        Ok(_) => tracing::info!(resources = watched, objects = lock(&graph).len(), "garbage collector synced"),
        Err(_) => tracing::warn!(?keys, "garbage collector starts before all its watches listed"),
    }

    let collector = Arc::new(Collector {
        client: client.clone(),
        graph,
        resources: resources.clone(),
        queue: queue.clone(),
        events: Events::new(client.clone(), NAME),
    });
    let workers = join_all((0..WORKERS).map(|_| work(collector.clone(), queue.clone())));
    let rediscovery = async {
        loop {
            tokio::time::sleep(REDISCOVERY).await;
            match Resources::discover(&client).await {
                Ok(found) => {
                    // The resources first, so that work on the new kinds resolves them.
                    *resources.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = found.clone();
                    monitors.sync(&found);
                }
                Err(error) => tracing::warn!(%error, "garbage collector discovery failed"),
            }
        }
    };
    futures::future::join(workers, rediscovery).await;
    Err(Error::Stopped { controller: "garbagecollector" })
}

/// One worker: takes work from the queue, forever.
async fn work(collector: Arc<Collector>, queue: Queue<Work>) {
    loop {
        let item = queue.next().await;
        match collector.process(&item).await {
            Ok(()) => queue.done(&item),
            Err(error) => {
                let delay = queue.retry(item.clone());
                tracing::warn!(?item, %error, ?delay, "garbage collection failed; retrying");
            }
        }
    }
}
