//! What a DaemonSet sync does to its pods, decided from the nodes and the pods on each
//! (no API calls here): the nodes that need a pod and the pods to delete, first to
//! keep one pod on each node that should run one ([`manage`]), then to replace old
//! pods within `maxUnavailable` or `maxSurge` ([`rolling_update`]).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::nodes::{self, Placement};
use crate::pods;

/// What a sync sees.
pub struct View<'a> {
    /// Every node there is, with where the set's pod stands on it.
    pub placements: BTreeMap<String, Placement>,
    /// The set's pods by the node they are for (nodes gone included).
    pub pods: BTreeMap<String, Vec<&'a Pod>>,
    pub hash: &'a str,
    pub generation: Option<&'a str>,
    pub min_ready: i32,
    pub now: Timestamp,
}

/// What a sync does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Steps {
    /// Nodes to create a pod on.
    pub create: Vec<String>,
    /// Pods to delete.
    pub delete: Vec<String>,
    /// Failed pods (pod, node), deleted unless their node is backing off.
    pub failed: Vec<(String, String)>,
    /// Succeeded pods (pod, node), deleted (and reported) at once.
    pub succeeded: Vec<(String, String)>,
}

impl Steps {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty() && self.failed.is_empty() && self.succeeded.is_empty()
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn scheduled(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty())
}

/// Bound pods first, then the oldest, then by name (upstream's
/// `podByCreationTimestampAndPhase`): the first on a node is the one that stays.
pub fn by_age(a: &&Pod, b: &&Pod) -> std::cmp::Ordering {
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    scheduled(b)
        .cmp(&scheduled(a))
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| a.name_any().cmp(&b.name_any()))
}

impl View<'_> {
    fn available(&self, pod: &Pod) -> bool {
        pods::is_available(pod, self.min_ready, self.now)
    }

    fn updated(&self, pod: &Pod) -> bool {
        nodes::is_updated(pod, self.hash, self.generation)
    }

    /// The new and the old pod on a node, ignoring those being deleted; `None` when
    /// there are more than one of either (manage cleans that up first).
    fn new_and_old<'p>(&self, pods: &[&'p Pod]) -> Option<(Option<&'p Pod>, Option<&'p Pod>)> {
        let (mut new, mut old) = (None, None);
        for &pod in pods.iter().filter(|p| !deleting(p)) {
            let slot = if self.updated(pod) { &mut new } else { &mut old };
            if slot.replace(pod).is_some() {
                return None;
            }
        }
        Some((new, old))
    }
}

/// One pod on every node that should run one: missing pods created, failed and
/// succeeded ones replaced, extra ones deleted (with surge, a second pod stays while
/// it replaces an old ready one), pods on nodes that may no longer run them deleted,
/// and unscheduled pods for nodes that are gone deleted.
pub fn manage(view: &View<'_>, surge: bool) -> Steps {
    let mut steps = Steps::default();
    for (node, placement) in &view.placements {
        let on_node = view.pods.get(node).map(Vec::as_slice).unwrap_or_default();
        if placement.should_run && on_node.is_empty() {
            steps.create.push(node.clone());
        } else if placement.should_continue {
            let mut running: Vec<&Pod> = Vec::new();
            for &pod in on_node.iter().filter(|p| !deleting(p)) {
                match phase(pod) {
                    "Failed" => steps.failed.push((pod.name_any(), node.clone())),
                    "Succeeded" => steps.succeeded.push((pod.name_any(), node.clone())),
                    _ => running.push(pod),
                }
            }
            running.sort_by(by_age);
            if !surge {
                steps.delete.extend(running.iter().skip(1).map(|p| p.name_any()));
                continue;
            }
            if running.is_empty() && placement.should_run {
                steps.create.push(node.clone());
                continue;
            }
            if running.len() <= 1 {
                continue;
            }
            // Surging: the oldest pod of the current revision and the oldest other one
            // may both stay while the new one is not yet available and the old one ready.
            let (mut oldest_new, mut oldest_old) = (None, None);
            for &pod in &running {
                let current = pod.labels().get(nodes::HASH_LABEL).is_some_and(|h| h == view.hash);
                let slot = if current { &mut oldest_new } else { &mut oldest_old };
                if slot.is_none() {
                    *slot = Some(pod);
                } else {
                    steps.delete.push(pod.name_any());
                }
            }
            if let (Some(new), Some(old)) = (oldest_new, oldest_old)
                && (!pods::is_ready(old) || view.available(new))
            {
                steps.delete.push(old.name_any());
            }
        } else {
            steps.delete.extend(on_node.iter().filter(|p| !deleting(p)).map(|p| p.name_any()));
        }
    }
    for (node, on_node) in view.pods.iter().filter(|(node, _)| !view.placements.contains_key(*node)) {
        let unscheduled = |p: &&&Pod| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_none_or(str::is_empty);
        for pod in on_node.iter().filter(|p| !deleting(p)).filter(unscheduled) {
            tracing::debug!(pod = %pod.name_any(), node, "deleting an unscheduled pod for a node that is gone");
            steps.delete.push(pod.name_any());
        }
    }
    steps
}

/// How many pods a rolling update may have unavailable or extra at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub max_unavailable: usize,
    pub max_surge: usize,
}

/// The nodes that should run a pod.
pub fn desired(view: &View<'_>) -> usize {
    view.placements.values().filter(|p| p.should_run).count()
}

/// Replaces old pods by new ones, as upstream's `rollingUpdate`. Without surge, deletes
/// old pods (unavailable ones at once, available ones while fewer than `maxUnavailable`
/// nodes lack an available pod) and lets [`manage`] make their replacements. With
/// surge, creates new pods beside old ones (at once where the old one is unavailable,
/// otherwise on up to `maxSurge` nodes at a time) and deletes an old pod once its
/// replacement is available; old pods on nodes that should no longer run one go only
/// while more pods are available than nodes want one.
pub fn rolling_update(view: &View<'_>, budget: Budget) -> Steps {
    let mut steps = Steps::default();
    let mut nodes: BTreeMap<&str, &[&Pod]> = view.pods.iter().map(|(n, p)| (n.as_str(), p.as_slice())).collect();
    for (node, placement) in &view.placements {
        if placement.should_run {
            nodes.entry(node.as_str()).or_insert(&[]);
        }
    }
    let should_run = |node: &str| view.placements.get(node).is_some_and(|p| p.should_run);
    if budget.max_surge == 0 {
        let mut unavailable = 0;
        let mut candidates = Vec::new();
        for pods in nodes.values() {
            match view.new_and_old(pods) {
                None | Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
                Some((Some(new), None)) => {
                    if !view.available(new) {
                        unavailable += 1;
                    }
                }
                Some((None, Some(old))) => {
                    if !view.available(old) {
                        steps.delete.push(old.name_any());
                        unavailable += 1;
                    } else if unavailable < budget.max_unavailable {
                        candidates.push(old.name_any());
                    }
                }
            }
        }
        let room = budget.max_unavailable.saturating_sub(unavailable).min(candidates.len());
        steps.delete.extend(candidates.into_iter().take(room));
        return steps;
    }

    let mut surging = 0_usize;
    let mut available = 0_usize;
    let mut sunset = Vec::new();
    let mut candidates = Vec::new();
    for (&node, pods) in &nodes {
        let Some((new, old)) = view.new_and_old(pods) else {
            surging += 1;
            continue;
        };
        // Availability counts on every node, those being left included.
        match (new, old) {
            (_, Some(old)) if view.available(old) => available += 1,
            (Some(new), None) if view.available(new) => available += 1,
            _ => {}
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) if !view.available(old) => {
                if should_run(node) {
                    steps.create.push(node.to_owned());
                } else {
                    steps.delete.push(old.name_any());
                }
            }
            (None, Some(old)) => {
                if !should_run(node) {
                    sunset.push(old.name_any());
                } else if surging < budget.max_surge {
                    candidates.push(node.to_owned());
                }
            }
            (Some(new), Some(old)) => {
                if view.available(new) {
                    steps.delete.push(old.name_any());
                } else {
                    surging += 1;
                }
            }
        }
    }
    // With surge the set is to stay fully available: a pod on a node it is leaving
    // goes only once a pod elsewhere makes up for it.
    let deletable = available.saturating_sub(desired(view)).min(sunset.len());
    steps.delete.extend(sunset.into_iter().take(deletable));
    let room = budget.max_surge.saturating_sub(surging).min(candidates.len());
    steps.create.extend(candidates.into_iter().take(room));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, hash: &str, ready: bool, age: u32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {nodes::HASH_LABEL: hash},
                         "creationTimestamp": format!("2026-01-01T00:00:{age:02}Z")},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .unwrap()
    }

    fn on() -> Placement {
        Placement { should_run: true, should_continue: true }
    }

    fn view<'a>(placements: &[(&str, Placement)], pods: &[(&str, &'a Pod)]) -> View<'a> {
        let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
        for (node, pod) in pods {
            by_node.entry((*node).to_owned()).or_default().push(pod);
        }
        View {
            placements: placements.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect(),
            pods: by_node,
            hash: "new",
            generation: None,
            min_ready: 0,
            now: Timestamp::now(),
        }
    }

    #[test]
    fn manage_keeps_one_pod_per_eligible_node() {
        let (a, b, extra) = (pod("a", "new", true, 1), pod("b", "new", true, 2), pod("c", "new", true, 3));
        let mut failed = pod("f", "new", false, 4);
        failed.status.as_mut().unwrap().phase = Some("Failed".into());
        let keep = Placement { should_run: false, should_continue: true };
        let view = view(
            &[("n1", on()), ("n2", on()), ("n3", on()), ("n4", Placement::default()), ("n5", keep), ("n6", on())],
            &[("n1", &a), ("n1", &extra), ("n4", &b), ("n5", &failed)],
        );
        let steps = manage(&view, false);
        assert_eq!(steps.create, ["n2", "n3", "n6"]);
        assert_eq!(steps.delete, ["c", "b"]);
        assert_eq!(steps.failed, [("f".to_owned(), "n5".to_owned())]);

        // A succeeded pod goes; of two, the one bound to the node stays, older or not.
        let mut done = pod("d", "new", false, 0);
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        let mut bound = pod("z", "new", true, 9);
        bound.spec = Some(serde_json::from_value(json!({"containers": [], "nodeName": "n1"})).unwrap());
        let steps = manage(&self::view(&[("n1", on())], &[("n1", &a), ("n1", &bound), ("n1", &done)]), false);
        assert_eq!(steps.succeeded, [("d".to_owned(), "n1".to_owned())]);
        assert_eq!(steps.delete, ["a"]);
    }

    #[test]
    fn manage_with_surge_keeps_an_old_ready_pod_until_its_replacement_is_available() {
        let (old, new) = (pod("old", "old", true, 1), pod("new", "new", false, 2));
        assert!(manage(&view(&[("n1", on())], &[("n1", &old), ("n1", &new)]), true).is_empty());
        let ready = pod("new", "new", true, 2);
        assert_eq!(manage(&view(&[("n1", on())], &[("n1", &old), ("n1", &ready)]), true).delete, ["old"]);
    }

    #[test]
    fn rolling_update_without_surge_stays_within_max_unavailable() {
        let pods: Vec<Pod> = (0..4).map(|i| pod(&format!("p{i}"), "old", true, i)).collect();
        let placements: Vec<(String, Placement)> = (0..4).map(|i| (format!("n{i}"), on())).collect();
        let placements: Vec<(&str, Placement)> = placements.iter().map(|(n, p)| (n.as_str(), *p)).collect();
        let on_nodes: Vec<(String, &Pod)> = pods.iter().enumerate().map(|(i, p)| (format!("n{i}"), p)).collect();
        let on_nodes: Vec<(&str, &Pod)> = on_nodes.iter().map(|(n, p)| (n.as_str(), *p)).collect();
        let budget = Budget { max_unavailable: 2, max_surge: 0 };
        assert_eq!(rolling_update(&view(&placements, &on_nodes), budget).delete, ["p0", "p1"]);
        // One node already without a pod counts as unavailable.
        assert_eq!(rolling_update(&view(&placements, &on_nodes[1..]), budget).delete, ["p1"]);
        // An unavailable old pod is replaced whatever the budget, and counts against it.
        let unready = pod("p3", "old", false, 3);
        let mut with_unready = on_nodes[..3].to_vec();
        with_unready.push(("n3", &unready));
        let one = Budget { max_unavailable: 1, max_surge: 0 };
        assert_eq!(rolling_update(&view(&placements, &with_unready), one).delete, ["p3"]);
        assert_eq!(rolling_update(&view(&placements, &with_unready), budget).delete, ["p3", "p0"]);
    }

    #[test]
    fn rolling_update_with_surge_creates_beside_old_pods() {
        let (a, b, c) = (pod("a", "old", true, 1), pod("b", "old", true, 2), pod("c", "old", false, 3));
        let placements = [("n1", on()), ("n2", on()), ("n3", on())];
        let budget = Budget { max_unavailable: 0, max_surge: 1 };
        let steps = rolling_update(&view(&placements, &[("n1", &a), ("n2", &b), ("n3", &c)]), budget);
        assert_eq!(steps.create, ["n3", "n1"]);
        assert!(steps.delete.is_empty());
        // A new pod not yet available holds the surge; an available one retires the old.
        let (new_a, new_b) = (pod("a2", "new", false, 4), pod("b2", "new", true, 5));
        let steps =
            rolling_update(&view(&placements, &[("n1", &a), ("n1", &new_a), ("n2", &b), ("n2", &new_b)]), budget);
        assert_eq!(steps.delete, ["b"]);
        assert!(steps.create.is_empty(), "{steps:?}");
    }

    #[test]
    fn surging_leaves_a_node_only_while_the_others_make_up_for_it() {
        let (a, b, c, d) =
            (pod("a", "new", true, 1), pod("b", "new", true, 2), pod("c", "new", false, 3), pod("d", "old", true, 4));
        let (e, f) = (pod("e", "old", false, 5), pod("f", "new", true, 6));
        let left = Placement { should_run: false, should_continue: true };
        let placements = [("n1", on()), ("n2", on()), ("n3", on()), ("n4", left), ("n5", left)];
        let budget = Budget { max_unavailable: 0, max_surge: 1 };
        // n3's new pod is not available yet: n4's available old pod stays.
        let steps = rolling_update(&view(&placements, &[("n1", &a), ("n2", &b), ("n3", &c), ("n4", &d)]), budget);
        assert!(steps.is_empty(), "{steps:?}");
        // Once it is, n4's goes; an unavailable old pod on a node being left goes at once.
        let c = pod("c", "new", true, 3);
        let pods = [("n1", &a), ("n2", &b), ("n3", &c), ("n4", &d), ("n5", &e)];
        assert_eq!(rolling_update(&view(&placements, &pods), budget).delete, ["e", "d"]);
        // A new pod beside an old one on a node being left retires it once available.
        let pods = [("n1", &a), ("n2", &b), ("n3", &c), ("n4", &d), ("n4", &f)];
        assert_eq!(rolling_update(&view(&placements, &pods), budget).delete, ["d"]);
    }
}
