//! What the scheduler knows of the cluster, kept by its watches: the nodes, every pod,
//! and the pods it bound that the watch has not shown bound yet ("assumed", as
//! upstream's cache calls them), so the next decision counts them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::runtime::watcher::Event;

use crate::resources::{self, NodeInfo, PodInfo};

/// How long a bound pod is counted on its node without the watch confirming it.
const ASSUMED_FOR: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct Cache {
    nodes: BTreeMap<String, Arc<Node>>,
    pods: HashMap<String, Arc<Pod>>,
    assumed: HashMap<String, (Arc<Pod>, Instant)>,
    /// Objects of a watch (re)start, until its initial list is complete.
    listing_nodes: Option<Vec<Node>>,
    listing_pods: Option<Vec<Pod>>,
    nodes_listed: bool,
    pods_listed: bool,
    /// Counts the changes that may let a pod that did not fit fit now: a node added or
    /// changed, a pod leaving a node.
    pub moves: u64,
}

fn key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty())
}

fn finished(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// Takes room on its node: bound and not finished (terminating pods still run).
fn occupies(pod: &Pod) -> bool {
    node_name(pod).is_some() && !finished(pod)
}

/// What scheduling reads of a node.
fn schedulable_view(node: &Node) -> impl PartialEq + '_ {
    (node.metadata.labels.as_ref(), node.spec.as_ref(), node.status.as_ref().and_then(|s| s.allocatable.as_ref()))
}

impl Cache {
    /// Both watches have listed everything once.
    pub fn synced(&self) -> bool {
        self.nodes_listed && self.pods_listed
    }

    pub fn on_node(&mut self, event: Event<Node>) {
        match event {
            Event::Init => self.listing_nodes = Some(Vec::new()),
            Event::InitApply(node) => self.listing_nodes.get_or_insert_with(Vec::new).push(node),
            Event::InitDone => {
                let nodes = self.listing_nodes.take().unwrap_or_default();
                self.nodes = nodes.into_iter().map(|n| (n.name_any(), Arc::new(n))).collect();
                self.nodes_listed = true;
                self.moves += 1;
            }
            Event::Apply(node) => {
                let name = node.name_any();
                let changed = self.nodes.get(&name).is_none_or(|old| schedulable_view(old) != schedulable_view(&node));
                self.nodes.insert(name, Arc::new(node));
                if changed {
                    self.moves += 1;
                }
            }
            Event::Delete(node) => {
                self.nodes.remove(&node.name_any());
            }
        }
    }

    pub fn on_pod(&mut self, event: Event<Pod>) {
        match event {
            Event::Init => self.listing_pods = Some(Vec::new()),
            Event::InitApply(pod) => self.listing_pods.get_or_insert_with(Vec::new).push(pod),
            Event::InitDone => {
                let pods = self.listing_pods.take().unwrap_or_default();
                self.pods = pods.into_iter().map(|p| (key(&p), Arc::new(p))).collect();
                let pods = &self.pods;
                self.assumed.retain(|k, _| pods.get(k).is_some_and(|p| node_name(p).is_none()));
                self.pods_listed = true;
                self.moves += 1;
            }
            Event::Apply(pod) => {
                let key = key(&pod);
                if node_name(&pod).is_some() {
                    self.assumed.remove(&key);
                }
                let freed = self.pods.get(&key).is_some_and(|old| occupies(old) && !occupies(&pod));
                self.pods.insert(key, Arc::new(pod));
                if freed {
                    self.moves += 1;
                }
            }
            Event::Delete(pod) => {
                let key = key(&pod);
                self.assumed.remove(&key);
                if self.pods.remove(&key).is_some_and(|old| occupies(&old)) {
                    self.moves += 1;
                }
            }
        }
    }

    /// Counts `pod` (bound to a node) on its node until the watch shows it bound.
    pub fn assume(&mut self, pod: Pod) {
        self.assumed.insert(key(&pod), (Arc::new(pod), Instant::now()));
    }

    /// The pods `scheduler` should place, most important and oldest first.
    pub fn pending(&self, scheduler: &str) -> Vec<Arc<Pod>> {
        let mut pending: Vec<Arc<Pod>> = self
            .pods
            .iter()
            .filter(|(key, _)| !self.assumed.contains_key(*key))
            .map(|(_, pod)| pod)
            .filter(|pod| {
                let name = pod.spec.as_ref().and_then(|s| s.scheduler_name.as_deref()).unwrap_or(crate::DEFAULT_NAME);
                name == scheduler
                    && node_name(pod).is_none()
                    && pod.metadata.deletion_timestamp.is_none()
                    && !finished(pod)
            })
            .cloned()
            .collect();
        pending.sort_by_cached_key(|pod| {
            let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
            (std::cmp::Reverse(resources::priority(pod)), created, key(pod))
        });
        pending
    }

    /// Every node with the pods that occupy it.
    pub fn snapshot(&mut self) -> Vec<NodeInfo> {
        self.assumed.retain(|_, (_, at)| at.elapsed() < ASSUMED_FOR);
        let mut nodes: BTreeMap<&str, NodeInfo> =
            self.nodes.iter().map(|(name, node)| (name.as_str(), NodeInfo::new(node.clone()))).collect();
        let bound = self.pods.values().filter(|p| occupies(p));
        let assumed = self.assumed.values().map(|(pod, _)| pod);
        for pod in bound.chain(assumed) {
            if let Some(node) = node_name(pod).and_then(|name| nodes.get_mut(name)) {
                node.add(PodInfo::new(pod.clone()));
            }
        }
        nodes.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn pod(name: &str, spec: Value) -> Pod {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c"}]);
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})).unwrap()
    }

    fn node(name: &str, labels: Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    }

    fn synced() -> Cache {
        let mut cache = Cache::default();
        cache.on_node(Event::Init);
        cache.on_node(Event::InitApply(node("n1", json!({}))));
        cache.on_node(Event::InitDone);
        cache.on_pod(Event::Init);
        cache.on_pod(Event::InitDone);
        cache
    }

    #[test]
    fn pending_pods_are_ours_unbound_and_alive() {
        let mut cache = synced();
        assert!(cache.synced());
        cache.on_pod(Event::Apply(pod("mine", json!({"schedulerName": "default-scheduler"}))));
        cache.on_pod(Event::Apply(pod("defaulted", json!({}))));
        cache.on_pod(Event::Apply(pod("other", json!({"schedulerName": "custom"}))));
        cache.on_pod(Event::Apply(pod("bound", json!({"nodeName": "n1"}))));
        cache.on_pod(Event::Apply(pod("urgent", json!({"priority": 10}))));
        let names: Vec<String> = cache.pending("default-scheduler").iter().map(|p| p.name_any()).collect();
        assert_eq!(names, ["urgent", "defaulted", "mine"]);
        assert_eq!(cache.pending("custom").len(), 1);
    }

    #[test]
    fn assumed_pods_count_until_the_watch_confirms_them() {
        let mut cache = synced();
        cache.on_pod(Event::Apply(pod("p", json!({}))));
        cache.assume(pod("p", json!({"nodeName": "n1"})));
        assert!(cache.pending("default-scheduler").is_empty());
        assert_eq!(cache.snapshot()[0].pods.len(), 1);
        cache.on_pod(Event::Apply(pod("p", json!({"nodeName": "n1"}))));
        assert_eq!(cache.snapshot()[0].pods.len(), 1, "counted once");
    }

    #[test]
    fn moves_count_what_may_make_room() {
        let mut cache = synced();
        let start = cache.moves;
        cache.on_pod(Event::Apply(pod("p", json!({"nodeName": "n1"}))));
        cache.on_node(Event::Apply(node("n1", json!({}))));
        assert_eq!(cache.moves, start, "nothing freed, the node unchanged");
        cache.on_node(Event::Apply(node("n1", json!({"zone": "a"}))));
        assert_eq!(cache.moves, start + 1);
        cache.on_node(Event::Apply(node("n2", json!({}))));
        assert_eq!(cache.moves, start + 2);
        cache.on_pod(Event::Delete(pod("p", json!({"nodeName": "n1"}))));
        assert_eq!(cache.moves, start + 3);
    }
}
