//! The scheduler against Waggle's API server in-process on 127.0.0.1: pods bound to
//! the nodes that fit them, or marked unschedulable with upstream's message and event
//! and placed once the cluster changes.

#[path = "../../controllers/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use support::{Bed, eventually};

const WITHIN: Duration = Duration::from_secs(30);
const CONTROL_PLANE_TAINT: &str = "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }";

/// The API server alone (no controllers), with the scheduler running against it.
async fn start() -> Bed {
    let bed = Bed::start(&[], false).await;
    let client = bed.client.clone();
    tokio::spawn(async move {
        if let Err(error) = waggle_scheduler::run(client, waggle_scheduler::Options::default()).await {
            panic!("scheduler stopped: {error}");
        }
    });
    bed
}

/// A node with `cpu` and 4Gi allocatable (110 pods) and `spec`.
async fn add_node(bed: &Bed, name: &str, labels: Value, cpu: &str, spec: Value) {
    let nodes = Api::<Node>::all(bed.client.clone());
    let node = json!({"metadata": {"name": name, "labels": labels}, "spec": spec});
    nodes.create(&PostParams::default(), &serde_json::from_value(node).unwrap()).await.expect("create node");
    let status = json!({"status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
        "capacity": {"cpu": cpu, "memory": "4Gi", "pods": "110"}}});
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("node status");
}

async fn patch_node(bed: &Bed, name: &str, patch: Value) {
    let nodes = Api::<Node>::all(bed.client.clone());
    nodes.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch node");
}

async fn add_pod(bed: &Bed, name: &str, cpu: &str, extra: Value) {
    let mut spec = json!({"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]});
    spec.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let pod = json!({"metadata": {"name": name}, "spec": spec});
    bed.api::<Pod>().create(&PostParams::default(), &serde_json::from_value(pod).unwrap()).await.expect("create pod");
}

async fn node_of(bed: &Bed, pod: &str) -> String {
    eventually(&format!("{pod} bound"), WITHIN, || async {
        let pod = bed.api::<Pod>().get(pod).await.ok()?;
        pod.spec?.node_name
    })
    .await
}

/// The pod's `PodScheduled=False` message, if it has one; it must not be bound.
async fn scheduled_false(bed: &Bed, pod: &str) -> Option<String> {
    let pod = bed.api::<Pod>().get(pod).await.ok()?;
    assert_eq!(pod.spec.as_ref().and_then(|s| s.node_name.clone()), None, "{} was bound", pod.name_any());
    let conditions = pod.status?.conditions?;
    let condition = conditions.into_iter().find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
    assert_eq!(condition.reason.as_deref(), Some("Unschedulable"));
    condition.message
}

/// Waits until the pod's `PodScheduled=False` message is `expected` (an earlier attempt
/// may have seen fewer nodes than the test made, as the watches catch up).
async fn unschedulable(bed: &Bed, pod: &str, expected: &str) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let message = scheduled_false(bed, pod).await;
        if message.as_deref() == Some(expected) {
            return;
        }
        assert!(Instant::now() < deadline, "{pod}: PodScheduled message {message:?}, wanted {expected:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The notes of the events of `reason` about `pod`.
async fn events(bed: &Bed, pod: &str, reason: &str) -> Vec<String> {
    let list = bed.api::<Event>().list(&ListParams::default()).await.expect("list events");
    list.items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .map(|e| {
            assert_eq!(e.reporting_controller.as_deref(), Some("default-scheduler"));
            e.note.unwrap_or_default()
        })
        .collect()
}

/// Waits for an event of `reason` about `pod` whose note is `expected`.
async fn event(bed: &Bed, pod: &str, reason: &str, expected: &str) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let notes = events(bed, pod, reason).await;
        if notes.iter().any(|n| n == expected) {
            return;
        }
        assert!(Instant::now() < deadline, "{pod}: {reason} events {notes:?}, wanted {expected:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn pods_bind_to_nodes_that_fit_them() {
    let bed = start().await;
    add_node(&bed, "small", json!({}), "1", json!({})).await;
    add_node(&bed, "large", json!({}), "4", json!({})).await;
    add_pod(&bed, "big", "2", json!({})).await;
    add_pod(&bed, "elsewhere", "100m", json!({"schedulerName": "other-scheduler"})).await;
    assert_eq!(node_of(&bed, "big").await, "large");
    event(&bed, "big", "Scheduled", "Successfully assigned default/big to large").await;
    let pod = bed.api::<Pod>().get("big").await.unwrap();
    let scheduled = pod.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "PodScheduled").unwrap();
    assert_eq!(scheduled.status, "True");

    // Pods of another scheduler are left alone.
    add_pod(&bed, "after", "100m", json!({})).await;
    node_of(&bed, "after").await;
    let elsewhere = bed.api::<Pod>().get("elsewhere").await.unwrap();
    assert_eq!(elsewhere.spec.unwrap().node_name, None);
    assert!(events(&bed, "elsewhere", "FailedScheduling").await.is_empty());
    bed.stop().await;
}

#[tokio::test]
async fn exhausted_resources_leave_pods_unschedulable_with_upstreams_message() {
    let bed = start().await;
    let control_plane = json!({"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]});
    add_node(&bed, "cp", json!({}), "8", control_plane).await;
    add_node(&bed, "a", json!({}), "1", json!({})).await;
    add_node(&bed, "b", json!({}), "1", json!({})).await;

    // More than any worker has: preemption cannot help.
    add_pod(&bed, "huge", "2", json!({})).await;
    let message = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: \
                   }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for \
                   scheduling.";
    unschedulable(&bed, "huge", message).await;
    event(&bed, "huge", "FailedScheduling", message).await;

    // Two pods take both workers; a third finds no room and nothing to preempt.
    add_pod(&bed, "first", "600m", json!({})).await;
    add_pod(&bed, "second", "600m", json!({})).await;
    let mut used = [node_of(&bed, "first").await, node_of(&bed, "second").await];
    used.sort();
    assert_eq!(used, ["a", "b"], "spread over both workers");
    add_pod(&bed, "third", "600m", json!({})).await;
    unschedulable(
        &bed,
        "third",
        &format!(
            "0/3 nodes are available: 1 {CONTROL_PLANE_TAINT}, 2 Insufficient cpu. preemption: 0/3 nodes are \
             available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        ),
    )
    .await;

    // Room made: the pending pod is placed where it was freed.
    let first = node_of_now(&bed, "first").await;
    // No kubelet runs: the pod goes at once (grace period 0), as a kubelet would let it.
    bed.api::<Pod>().delete("first", &DeleteParams::default().grace_period(0)).await.expect("delete");
    assert_eq!(node_of(&bed, "third").await, first);
    bed.stop().await;
}

async fn node_of_now(bed: &Bed, pod: &str) -> String {
    bed.api::<Pod>().get(pod).await.unwrap().spec.unwrap().node_name.unwrap()
}

#[tokio::test]
async fn taints_keep_pods_without_tolerations_away() {
    let bed = start().await;
    let dedicated = json!({"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]});
    add_node(&bed, "db", json!({}), "2", dedicated).await;
    add_pod(&bed, "web", "100m", json!({})).await;
    unschedulable(
        &bed,
        "web",
        "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}. preemption: 0/1 nodes are \
         available: 1 Preemption is not helpful for scheduling.",
    )
    .await;
    let tolerations =
        json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]});
    add_pod(&bed, "postgres", "100m", tolerations).await;
    assert_eq!(node_of(&bed, "postgres").await, "db");

    // PreferNoSchedule only steers: the untainted node wins, the tainted one still takes pods.
    let soft = json!({"taints": [{"key": "spot", "effect": "PreferNoSchedule"}]});
    add_node(&bed, "spot", json!({}), "2", soft).await;
    add_node(&bed, "plain", json!({}), "2", json!({})).await;
    for name in ["p1", "p2", "p3"] {
        add_pod(&bed, name, "100m", json!({})).await;
        assert_eq!(node_of(&bed, name).await, "plain");
    }
    assert_eq!(node_of(&bed, "web").await, "plain", "retried when nodes were added");
    bed.stop().await;
}

#[tokio::test]
async fn node_affinity_and_selectors_choose_nodes() {
    let bed = start().await;
    add_node(&bed, "east", json!({"zone": "east", "disk": "ssd"}), "2", json!({})).await;
    add_node(&bed, "west", json!({"zone": "west"}), "2", json!({})).await;
    let required = |op: &str, values: Value| {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": op, "values": values}]}]
        }}}})
    };
    add_pod(&bed, "in-west", "100m", required("In", json!(["west"]))).await;
    add_pod(&bed, "not-east", "100m", required("NotIn", json!(["east"]))).await;
    add_pod(&bed, "selected", "100m", json!({"nodeSelector": {"disk": "ssd"}})).await;
    let preferred = json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["east"]}]}}
    ]}}});
    add_pod(&bed, "prefers-east", "100m", preferred).await;
    assert_eq!(node_of(&bed, "in-west").await, "west");
    assert_eq!(node_of(&bed, "not-east").await, "west");
    assert_eq!(node_of(&bed, "selected").await, "east");
    assert_eq!(node_of(&bed, "prefers-east").await, "east");

    add_pod(&bed, "nowhere", "100m", json!({"nodeSelector": {"zone": "north"}})).await;
    unschedulable(
        &bed,
        "nowhere",
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are \
         available: 2 Preemption is not helpful for scheduling.",
    )
    .await;
    // Labelling a node to match is a change the pod is retried for.
    let label = json!({"metadata": {"labels": {"zone": "north"}}});
    patch_node(&bed, "west", label).await;
    assert_eq!(node_of(&bed, "nowhere").await, "west");
    bed.stop().await;
}

#[tokio::test]
async fn cordoned_nodes_take_no_new_pods() {
    let bed = start().await;
    add_node(&bed, "n1", json!({}), "2", json!({"unschedulable": true})).await;
    add_pod(&bed, "waiting", "100m", json!({})).await;
    unschedulable(
        &bed,
        "waiting",
        "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are available: 1 Preemption \
         is not helpful for scheduling.",
    )
    .await;
    let tolerant = json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]});
    add_pod(&bed, "tolerant", "100m", tolerant).await;
    assert_eq!(node_of(&bed, "tolerant").await, "n1");
    let uncordon = json!({"spec": {"unschedulable": false}});
    patch_node(&bed, "n1", uncordon).await;
    assert_eq!(node_of(&bed, "waiting").await, "n1");
    bed.stop().await;
}

#[tokio::test]
async fn pods_wait_for_nodes_and_host_ports() {
    let bed = start().await;
    add_pod(&bed, "early", "100m", json!({})).await;
    unschedulable(&bed, "early", "no nodes available to schedule pods").await;
    event(&bed, "early", "FailedScheduling", "no nodes available to schedule pods").await;
    add_node(&bed, "late", json!({}), "2", json!({})).await;
    assert_eq!(node_of(&bed, "early").await, "late");

    let port =
        json!({"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80, "hostPort": 8080}]}]});
    add_pod(&bed, "port-1", "100m", port.clone()).await;
    assert_eq!(node_of(&bed, "port-1").await, "late");
    add_pod(&bed, "port-2", "100m", port).await;
    unschedulable(
        &bed,
        "port-2",
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. preemption: 0/1 \
         nodes are available: 1 No preemption victims found for incoming pod.",
    )
    .await;
    bed.stop().await;
}
