//! The pod garbage collector (kube-controller-manager's `podgc`): every so often,
//! force-deletes (grace period 0) the pods no kubelet will ever finish:
//!
//! - finished (`Succeeded` or `Failed`) pods beyond `--terminated-pod-gc-threshold`,
//!   evicted ones first, then the oldest;
//! - terminating pods on a node that is not ready and tainted
//!   `node.kubernetes.io/out-of-service`;
//! - pods bound to a node that is gone (still gone after a quarantine, checked with the
//!   API server), marked `Failed` with the `DisruptionTarget` condition first;
//! - terminating pods that were never scheduled.
//!
//! Pods not yet finished are marked `Failed` before they are deleted, as upstream does,
//! so that their controllers see them fail.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::{Error, placement};

/// The field manager of the status PodGC applies.
const FIELD_MANAGER: &str = "PodGC";

/// The taint that says a node is out of service and its pods may go.
pub const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";

/// How the pod garbage collector runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Finished pods kept before the oldest are deleted; 0 keeps them all
    /// (`--terminated-pod-gc-threshold`).
    pub terminated_pod_threshold: usize,
    /// How often it looks.
    pub period: Duration,
    /// How long a node must have been missing before its pods go.
    pub quarantine: Duration,
}

impl Default for Settings {
    /// Upstream's: 12500 finished pods, every 20 seconds, 40 seconds of quarantine.
    fn default() -> Settings {
        Settings {
            terminated_pod_threshold: DEFAULT_TERMINATED_POD_THRESHOLD,
            period: Duration::from_secs(20),
            quarantine: Duration::from_secs(40),
        }
    }
}

/// kube-controller-manager's default `--terminated-pod-gc-threshold`.
pub const DEFAULT_TERMINATED_POD_THRESHOLD: usize = 12500;

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn finished(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn node_name(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

fn evicted(pod: &Pod) -> bool {
    phase(pod) == "Failed" && pod.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted")
}

/// Deletion order: evicted pods first, then the oldest, then by name.
fn deletion_order(a: &&Pod, b: &&Pod) -> std::cmp::Ordering {
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    evicted(b).cmp(&evicted(a)).then_with(|| created(a).cmp(&created(b))).then_with(|| a.name_any().cmp(&b.name_any()))
}

/// The finished pods beyond `threshold`, in the order they go.
pub fn beyond_threshold(pods: &[Pod], threshold: usize) -> Vec<&Pod> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut done: Vec<&Pod> = pods.iter().filter(|p| finished(p)).collect();
    let excess = done.len().saturating_sub(threshold);
    done.sort_by(deletion_order);
    done.truncate(excess);
    done
}

fn ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Terminating pods on nodes that are not ready and out of service.
pub fn out_of_service<'a>(pods: &'a [Pod], nodes: &[Node]) -> Vec<&'a Pod> {
    let down: BTreeSet<String> = nodes
        .iter()
        .filter(|n| !ready(n) && placement::taints(n).iter().any(|t| t.key == OUT_OF_SERVICE_TAINT))
        .map(|n| n.name_any())
        .collect();
    let mut pods: Vec<&Pod> =
        pods.iter().filter(|p| p.metadata.deletion_timestamp.is_some() && down.contains(node_name(p))).collect();
    pods.sort_by(deletion_order);
    pods
}

/// Terminating pods no node was ever chosen for.
pub fn unscheduled_terminating(pods: &[Pod]) -> Vec<&Pod> {
    pods.iter().filter(|p| p.metadata.deletion_timestamp.is_some() && node_name(p).is_empty()).collect()
}

/// Nodes pods are bound to that are not in `nodes`.
pub fn missing_nodes(pods: &[Pod], nodes: &[Node]) -> BTreeSet<String> {
    let existing: BTreeSet<String> = nodes.iter().map(|n| n.name_any()).collect();
    pods.iter().map(node_name).filter(|n| !n.is_empty() && !existing.contains(*n)).map(str::to_owned).collect()
}

/// Runs the pod garbage collector until the process ends.
pub async fn run(client: Client, settings: Settings) -> Result<(), Error> {
    let mut collector = Collector { client, settings, missing_since: HashMap::new() };
    loop {
        if let Err(error) = collector.collect().await {
            tracing::debug!(%error, "pod garbage collection failed");
        }
        tokio::time::sleep(collector.settings.period).await;
    }
}

struct Collector {
    client: Client,
    settings: Settings,
    /// Nodes pods are bound to that were missing, since when.
    missing_since: HashMap<String, Instant>,
}

impl Collector {
    async fn collect(&mut self) -> Result<(), Error> {
        let pods = Api::<Pod>::all(self.client.clone()).list(&ListParams::default()).await?.items;
        let nodes = Api::<Node>::all(self.client.clone()).list(&ListParams::default()).await?.items;
        let threshold = self.settings.terminated_pod_threshold;
        self.delete_all(beyond_threshold(&pods, threshold), None, "finished pod beyond the threshold").await;
        self.delete_all(out_of_service(&pods, &nodes), None, "terminating pod on an out-of-service node").await;
        let gone = self.gone_nodes(&pods, &nodes).await?;
        let orphans: Vec<&Pod> = pods.iter().filter(|p| gone.contains(node_name(p))).collect();
        let condition = json!({
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists",
            "lastTransitionTime": jiff::Timestamp::now().to_string(),
        });
        self.delete_all(orphans, Some(condition), "orphaned pod").await;
        self.delete_all(unscheduled_terminating(&pods), None, "unscheduled terminating pod").await;
        Ok(())
    }

    /// Nodes pods are bound to that have been missing for the quarantine, and that
    /// the API server confirms are gone.
    async fn gone_nodes(&mut self, pods: &[Pod], nodes: &[Node]) -> Result<BTreeSet<String>, Error> {
        let missing = missing_nodes(pods, nodes);
        let now = Instant::now();
        self.missing_since.retain(|node, _| missing.contains(node));
        let mut gone = BTreeSet::new();
        let api = Api::<Node>::all(self.client.clone());
        for node in missing {
            let since = *self.missing_since.entry(node.clone()).or_insert(now);
            if now.duration_since(since) < self.settings.quarantine {
                continue;
            }
            if api.get_opt(&node).await?.is_none() {
                gone.insert(node);
            } else {
                self.missing_since.remove(&node);
            }
        }
        Ok(gone)
    }

    async fn delete_all(&self, pods: Vec<&Pod>, condition: Option<Value>, what: &str) {
        let results = join_all(pods.iter().map(|pod| self.force_delete(pod, condition.as_ref()))).await;
        for (pod, result) in pods.iter().zip(results) {
            let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
            match result {
                Ok(()) => tracing::info!(pod = %format!("{namespace}/{name}"), what, "force-deleted"),
                Err(error) => {
                    tracing::warn!(pod = %format!("{namespace}/{name}"), what, %error, "force-deleting failed")
                }
            }
        }
    }

    /// Marks an unfinished pod `Failed` (with `condition`), then deletes it at once.
    async fn force_delete(&self, pod: &Pod, condition: Option<&Value>) -> Result<(), kube::Error> {
        let api = Api::<Pod>::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let name = pod.name_any();
        if !finished(pod) {
            // Server-side apply of only the phase and the condition, as upstream's
            // `markFailedAndDeletePodWithCondition`: PodGC owns no other field.
            let mut status = json!({"phase": "Failed"});
            if let Some(condition) = condition {
                status["conditions"] = json!([condition]);
            }
            let patch = json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": pod.namespace()},
                "status": status,
            });
            let params = PatchParams::apply(FIELD_MANAGER).force();
            match api.patch_status(&name, &params, &Patch::Apply(&patch)).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
                Err(error) => return Err(error),
            }
        }
        let params = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
        match api.delete(&name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, age: u32, extra: Value) -> Pod {
        let mut pod = json!({
            "metadata": {"name": name, "creationTimestamp": format!("2026-01-01T00:00:{age:02}Z")},
            "spec": {"containers": []},
            "status": {"phase": phase},
        });
        json_merge(&mut pod, extra);
        serde_json::from_value(pod).unwrap()
    }

    fn json_merge(into: &mut Value, from: Value) {
        match (into, from) {
            (Value::Object(into), Value::Object(from)) => {
                for (k, v) in from {
                    json_merge(into.entry(k).or_insert(Value::Null), v);
                }
            }
            (into, from) => *into = from,
        }
    }

    fn names(pods: &[&Pod]) -> Vec<String> {
        pods.iter().map(|p| p.name_any()).collect()
    }

    #[test]
    fn finished_pods_beyond_the_threshold_go_evicted_then_oldest_first() {
        let pods = [
            pod("new", "Succeeded", 5, json!({})),
            pod("old", "Failed", 1, json!({})),
            pod("running", "Running", 0, json!({})),
            pod("evicted", "Failed", 9, json!({"status": {"reason": "Evicted"}})),
            pod("middle", "Succeeded", 3, json!({})),
        ];
        assert_eq!(names(&beyond_threshold(&pods, 2)), ["evicted", "old"]);
        assert!(beyond_threshold(&pods, 4).is_empty());
        assert!(beyond_threshold(&pods, 0).is_empty());
    }

    #[test]
    fn terminating_pods_go_from_out_of_service_nodes_and_when_unscheduled() {
        let deleting = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:01:00Z"}});
        let on =
            |node: &str| json!({"metadata": {"deletionTimestamp": "2026-01-01T00:01:00Z"}, "spec": {"nodeName": node}});
        let pods = [
            pod("down", "Running", 1, on("down")),
            pod("tainted-ready", "Running", 2, on("up")),
            pod("alive", "Running", 3, json!({"spec": {"nodeName": "down"}})),
            pod("never-scheduled", "Pending", 4, deleting),
        ];
        let node = |name: &str, ready: &str| -> Node {
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"taints": [{"key": OUT_OF_SERVICE_TAINT, "effect": "NoExecute"}]},
                "status": {"conditions": [{"type": "Ready", "status": ready}]},
            }))
            .unwrap()
        };
        assert_eq!(names(&out_of_service(&pods, &[node("down", "False"), node("up", "True")])), ["down"]);
        assert_eq!(names(&unscheduled_terminating(&pods)), ["never-scheduled"]);
        assert_eq!(missing_nodes(&pods, &[node("up", "True")]), BTreeSet::from(["down".to_owned()]));
    }
}
