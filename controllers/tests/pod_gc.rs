//! The pod garbage collector against Waggle's API server, with a short period and
//! quarantine: pods on a node that is gone, finished pods beyond the threshold (evicted
//! ones first, then the oldest), terminating pods on an out-of-service node and
//! terminating pods never scheduled. Pods that should stay carry a finalizer, so that
//! what podgc wrote before deleting them can be read; the test removes it at the end.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use support::{Bed, eventually};
use waggle_controllers::Controller;
use waggle_controllers::pod_gc::Settings;

const WITHIN: Duration = Duration::from_secs(20);
const FINALIZER: &str = "waggle.test/hold";

async fn create_node(bed: &Bed, name: &str, ready: &str, taints: Value) {
    let nodes = Api::<Node>::all(bed.client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"taints": taints}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": ready}]}});
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
}

/// A pod bound to `node` (none: unscheduled) in `phase` (`reason` for the status'
/// reason, if any), held by the test's finalizer when `held`.
async fn create_pod(pods: &Api<Pod>, name: &str, node: Option<&str>, phase: &str, reason: Option<&str>, held: bool) {
    let finalizers: &[&str] = if held { &[FINALIZER] } else { &[] };
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "finalizers": finalizers},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {"phase": phase, "reason": reason}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
}

fn phase(pod: &Pod) -> String {
    pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default()
}

fn deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Name -> (phase, being deleted) of every pod.
async fn states(pods: &Api<Pod>) -> Vec<(String, String, bool)> {
    let mut all: Vec<_> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), phase(p), deleting(p)))
        .collect();
    all.sort();
    all
}

/// Lets go of every pod the test holds, so that each deleted one goes.
async fn release_all(pods: &Api<Pod>) {
    for pod in pods.list(&ListParams::default()).await.unwrap().items {
        let patch = json!({"metadata": {"finalizers": null}});
        pods.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_pods_beyond_the_threshold_go_evicted_then_oldest_first() {
    let settings = Settings { terminated_pod_threshold: 2, period: Duration::from_millis(200), ..Settings::default() };
    let bed = Bed::start_with(&[Controller::PodGc], false, settings).await;
    let pods: Api<Pod> = bed.api();
    create_node(&bed, "up", "True", json!([])).await;
    create_pod(&pods, "running", Some("up"), "Running", None, false).await;
    // Oldest first (names break ties within a second the same way).
    create_pod(&pods, "done-1", Some("up"), "Succeeded", None, false).await;
    create_pod(&pods, "done-2", Some("up"), "Failed", None, false).await;
    create_pod(&pods, "done-3", Some("up"), "Succeeded", None, false).await;
    create_pod(&pods, "evicted", Some("up"), "Failed", Some("Evicted"), false).await;
    let kept = |name: &str, phase: &str| (name.to_owned(), phase.to_owned(), false);
    let want = vec![kept("done-2", "Failed"), kept("done-3", "Succeeded"), kept("running", "Running")];
    eventually("two finished pods kept", WITHIN, || async { (states(&pods).await == want).then_some(()) }).await;
    // And no more go.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(states(&pods).await, want);
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_no_kubelet_will_finish_are_deleted() {
    let settings = Settings {
        terminated_pod_threshold: 0,
        period: Duration::from_millis(200),
        quarantine: Duration::from_secs(3),
    };
    let bed = Bed::start_with(&[Controller::PodGc], false, settings).await;
    let pods: Api<Pod> = bed.api();
    create_node(&bed, "up", "True", json!([])).await;
    let out_of_service = json!([{"key": "node.kubernetes.io/out-of-service", "effect": "NoExecute"}]);
    create_node(&bed, "down", "False", out_of_service).await;

    create_pod(&pods, "running", Some("up"), "Running", None, true).await;
    create_pod(&pods, "orphan", Some("gone"), "Running", None, true).await;
    // Its node registers within the quarantine.
    create_pod(&pods, "early", Some("late"), "Running", None, true).await;
    // Terminating: on the out-of-service node, on a ready node, and never scheduled.
    create_pod(&pods, "stuck", Some("down"), "Running", None, true).await;
    create_pod(&pods, "leaving", Some("up"), "Running", None, true).await;
    create_pod(&pods, "unscheduled", None, "Pending", None, true).await;
    create_pod(&pods, "idle", Some("down"), "Running", None, true).await;
    for name in ["stuck", "leaving", "unscheduled"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    // Missing for several periods, but less than the quarantine.
    tokio::time::sleep(Duration::from_secs(1)).await;
    create_node(&bed, "late", "True", json!([])).await;

    let gone = |name: &str, phase: &str| (name.to_owned(), phase.to_owned(), true);
    let kept = |name: &str, phase: &str| (name.to_owned(), phase.to_owned(), false);
    let mut want = vec![
        kept("early", "Running"),
        kept("idle", "Running"),
        gone("leaving", "Running"),
        kept("orphan", "Running"),
        kept("running", "Running"),
        gone("stuck", "Failed"),
        gone("unscheduled", "Failed"),
    ];
    eventually("terminating pods collected", WITHIN, || async { (states(&pods).await == want).then_some(()) }).await;
    // Deleted for good (no grace period left), unlike the pod a kubelet may still stop.
    assert_eq!(pods.get("stuck").await.unwrap().metadata.deletion_grace_period_seconds, Some(0));
    assert_ne!(pods.get("leaving").await.unwrap().metadata.deletion_grace_period_seconds, Some(0));

    // The pod on the missing node goes once the quarantine is over, marked failed by
    // the node's disappearance first; the pod whose node came meanwhile stays.
    want[3] = gone("orphan", "Failed");
    eventually("the orphan collected", WITHIN, || async { (states(&pods).await == want).then_some(()) }).await;
    let orphan = pods.get("orphan").await.unwrap();
    let conditions = orphan.status.unwrap().conditions.unwrap_or_default();
    let disruption = conditions.iter().find(|c| c.type_ == "DisruptionTarget").expect("a DisruptionTarget condition");
    assert_eq!(
        (disruption.status.as_str(), disruption.reason.as_deref(), disruption.message.as_deref()),
        ("True", Some("DeletionByPodGC"), Some("PodGC: node no longer exists"))
    );

    // What a kubelet would do with the pod left on a ready node: finish deleting it.
    release_all(&pods).await;
    pods.delete("leaving", &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() }).await.unwrap();
    eventually("the deleted pods gone", WITHIN, || async {
        let left: Vec<String> = states(&pods).await.into_iter().map(|(name, ..)| name).collect();
        (left == ["early", "idle", "running"]).then_some(())
    })
    .await;
    bed.stop().await;
}
