//! One watch per watched resource, feeding the graph: added and changed objects are
//! observed, deleted ones forgotten, and after each (re)list the objects that were not
//! listed any more are forgotten too (their deletions happened while the watch was down).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::Work;
use super::graph::{Graph, Node};
use super::queue::Queue;
use super::resources::{Resources, Served};

/// The running watches, by resource key; dropping this stops them.
pub struct Monitors {
    client: Client,
    graph: Arc<Mutex<Graph>>,
    queue: Queue<Work>,
    running: BTreeMap<String, JoinHandle<()>>,
}

impl Monitors {
    pub fn new(client: Client, graph: Arc<Mutex<Graph>>, queue: Queue<Work>) -> Monitors {
        Monitors { client, graph, queue, running: BTreeMap::new() }
    }

    /// Starts the watches of newly served resources and stops those of resources no
    /// longer served (their objects leave the graph). Returns, for each started watch,
    /// what fires once its first list is in the graph.
    pub fn sync(&mut self, resources: &Resources) -> Vec<(String, oneshot::Receiver<()>)> {
        let gone: Vec<String> =
            self.running.keys().filter(|k| !resources.watched().contains_key(*k)).cloned().collect();
        for key in gone {
            if let Some(task) = self.running.remove(&key) {
                task.abort();
            }
            tracing::info!(resource = %key, "garbage collector stops watching a resource no longer served");
            let work = lock(&self.graph).resync(&key, &HashSet::new());
            self.queue.extend(work);
        }
        let mut started = Vec::new();
        for (key, served) in resources.watched() {
            if self.running.contains_key(key) {
                continue;
            }
            tracing::debug!(resource = %key, "garbage collector watches a resource");
            let (synced, on_sync) = oneshot::channel();
            let task = tokio::spawn(watch(
                self.client.clone(),
                served.clone(),
                self.graph.clone(),
                self.queue.clone(),
                synced,
            ));
            self.running.insert(key.clone(), task);
            started.push((key.clone(), on_sync));
        }
        started
    }
}

impl Drop for Monitors {
    fn drop(&mut self) {
        for task in self.running.values() {
            task.abort();
        }
    }
}

pub fn lock(graph: &Mutex<Graph>) -> std::sync::MutexGuard<'_, Graph> {
    // Every graph change is made whole under the lock; a panic cannot leave half of one.
    graph.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Watches one resource until aborted (the watcher retries failures with backoff).
async fn watch(
    client: Client,
    served: Served,
    graph: Arc<Mutex<Graph>>,
    queue: Queue<Work>,
    synced: oneshot::Sender<()>,
) {
    let key = served.key();
    let api = Api::<DynamicObject>::all_with(client, &served.resource);
    let events = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(events);
    let mut synced = Some(synced);
    let mut listed: Option<HashSet<String>> = None;
    while let Some(event) = events.next().await {
        let work = match event {
            Ok(watcher::Event::Init) => {
                listed = Some(HashSet::new());
                Vec::new()
            }
            Ok(watcher::Event::InitApply(object)) => {
                let Some(node) = node(&key, &served, object) else { continue };
                if let Some(listed) = listed.as_mut() {
                    listed.insert(node.uid.clone());
                }
                lock(&graph).observe(node)
            }
            Ok(watcher::Event::InitDone) => {
                let work = lock(&graph).resync(&key, &listed.take().unwrap_or_default());
                if let Some(synced) = synced.take() {
                    let _ = synced.send(());
                }
                work
            }
            Ok(watcher::Event::Apply(object)) => match node(&key, &served, object) {
                Some(node) => lock(&graph).observe(node),
                None => continue,
            },
            Ok(watcher::Event::Delete(object)) => match object.metadata.uid {
                Some(uid) => lock(&graph).forget(&uid),
                None => continue,
            },
            Err(error) => {
                tracing::warn!(resource = %key, %error, "garbage collector watch failed; retrying");
                continue;
            }
        };
        queue.extend(work);
    }
}

/// The graph's node for a watched object (`None` without a name or uid).
fn node(key: &str, served: &Served, object: DynamicObject) -> Option<Node> {
    let meta = object.metadata;
    Some(Node {
        resource: key.to_owned(),
        api_version: served.resource.api_version.clone(),
        kind: served.resource.kind.clone(),
        namespace: meta.namespace.filter(|_| served.namespaced),
        name: meta.name?,
        uid: meta.uid?,
        owners: meta.owner_references.unwrap_or_default(),
        deleting: meta.deletion_timestamp.is_some(),
        finalizers: meta.finalizers.unwrap_or_default(),
    })
}
