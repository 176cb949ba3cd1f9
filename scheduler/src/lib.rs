//! Waggle's scheduler: what kube-scheduler's default profile does, as a kube-rs client
//! that speaks only the Kubernetes API, so it runs against Waggle's API server or any
//! conformant one.
//!
//! It watches Nodes and Pods ([`cache`]); each pod that names this scheduler
//! (`spec.schedulerName`), has no node and is not being deleted is filtered against
//! every node ([`filters`]: NodeUnschedulable, NodeName, TaintToleration, NodeAffinity,
//! NodePorts, NodeResourcesFit), the feasible nodes are scored ([`scores`]:
//! least-allocated, balanced allocation, preferred node affinity, PreferNoSchedule
//! taints) and the best one gets it through a `pods/binding` POST ([`scheduler`]). A pod
//! that fits nowhere gets `PodScheduled=False` (reason `Unschedulable`) with upstream's
//! message and a `FailedScheduling` event, and is tried again when nodes or pods change
//! and, with a backoff, anyway.
//!
//! Not done: preemption (the message says what upstream's dry run would find, but no
//! pod is evicted), inter-pod affinity, topology spread, volumes.

pub mod cache;
mod error;
pub mod filters;
pub mod quantity;
pub mod resources;
pub mod schedule;
pub mod scheduler;
pub mod scores;

use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::Notify;

pub use error::Error;

/// The scheduler pods name by default (`spec.schedulerName`).
pub const DEFAULT_NAME: &str = "default-scheduler";

/// What [`run`] schedules as.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `spec.schedulerName` this scheduler serves; also its events' reporter.
    pub scheduler_name: String,
}

impl Default for Options {
    fn default() -> Options {
        Options { scheduler_name: DEFAULT_NAME.into() }
    }
}

/// Feeds a watch into the cache, waking the scheduler after each event.
async fn follow<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    what: &'static str,
    cache: Arc<Mutex<Cache>>,
    changed: Arc<Notify>,
    apply: fn(&mut Cache, watcher::Event<K>),
) -> Result<(), Error> {
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                apply(&mut cache.lock().expect("scheduler cache lock"), event);
                changed.notify_one();
            }
            Err(error) => tracing::debug!(what, %error, "watch failed; retrying"),
        }
    }
    Err(Error::Stopped { what })
}

use cache::Cache;

/// Schedules pods until a watch ends.
pub async fn run(client: Client, options: Options) -> Result<(), Error> {
    tracing::info!(name = %options.scheduler_name, "starting scheduler");
    let cache = Arc::new(Mutex::new(Cache::default()));
    let changed = Arc::new(Notify::new());
    let nodes = watcher(Api::<Node>::all(client.clone()), watcher::Config::default()).default_backoff();
    let pods = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()).default_backoff();
    let scheduler = scheduler::Scheduler::new(client, options.scheduler_name, cache.clone(), changed.clone());
    tokio::select! {
        result = follow(nodes, "node", cache.clone(), changed.clone(), Cache::on_node) => result,
        result = follow(pods, "pod", cache, changed, Cache::on_pod) => result,
        () = scheduler.run() => Ok(()),
    }
}
