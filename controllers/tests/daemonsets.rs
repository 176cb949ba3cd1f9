//! The DaemonSet controller against Waggle's API server, through kube-rs: a pod per
//! node as nodes come, go, are tainted and relabelled; rolling updates within
//! `maxUnavailable` and `maxSurge`; `OnDelete`; the ControllerRevision history and a
//! rollback; the status figures. No scheduler runs, so pods stay unbound and name their
//! node only in their node affinity (and go at once when deleted). Where pace matters
//! the test plays the kubelet itself and marks pods ready one by one.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use support::{Bed, eventually};
use waggle_controllers::Controller;

const WITHIN: Duration = Duration::from_secs(30);

fn daemon_set(image: &str, extra: Value) -> DaemonSet {
    let mut set = json!({
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": image}]},
            },
        },
    });
    for (key, value) in extra.as_object().unwrap() {
        set["spec"][key] = value.clone();
    }
    serde_json::from_value(set).unwrap()
}

async fn add_node(bed: &Bed, name: &str, labels: Value) {
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
    Api::<Node>::all(bed.client.clone()).create(&PostParams::default(), &node).await.unwrap();
}

async fn patch_node(bed: &Bed, name: &str, patch: Value) {
    Api::<Node>::all(bed.client.clone()).patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

/// The node a daemon pod is for, from its required node affinity.
fn node_of(pod: &Pod) -> String {
    let affinity = serde_json::to_value(pod.spec.as_ref().unwrap().affinity.as_ref().unwrap()).unwrap();
    let terms = &affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    assert_eq!(terms[0]["matchFields"][0]["key"], "metadata.name", "{affinity}");
    terms[0]["matchFields"][0]["values"][0].as_str().unwrap().to_owned()
}

fn image_of(pod: &Pod) -> String {
    pod.spec.as_ref().unwrap().containers[0].image.clone().unwrap()
}

/// The set's live pods (not being deleted).
async fn live(pods: &Api<Pod>) -> Vec<Pod> {
    let list = pods.list(&ListParams::default().labels("app=agent")).await.unwrap().items;
    list.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect()
}

/// Node -> images of the live pods for it.
async fn images_by_node(pods: &Api<Pod>) -> BTreeMap<String, Vec<String>> {
    let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pod in live(pods).await {
        by_node.entry(node_of(&pod)).or_default().push(image_of(&pod));
    }
    for images in by_node.values_mut() {
        images.sort();
    }
    by_node
}

fn on_nodes(nodes: &[&str], image: &str) -> BTreeMap<String, Vec<String>> {
    nodes.iter().map(|n| ((*n).to_owned(), vec![image.to_owned()])).collect()
}

async fn wait_for_nodes(pods: &Api<Pod>, what: &str, want: BTreeMap<String, Vec<String>>) {
    eventually(what, WITHIN, || async { (images_by_node(pods).await == want).then_some(()) }).await;
}

async fn mark_ready(pods: &Api<Pod>, name: &str) {
    let now = jiff::Timestamp::now().to_string();
    let status = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now},
    ]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
}

async fn mark_all_ready(pods: &Api<Pod>) {
    for pod in live(pods).await {
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready"));
        if !ready {
            mark_ready(pods, &pod.name_any()).await;
        }
    }
}

/// (desired, current, ready, up-to-date, available, unavailable, misscheduled).
type Figures = (i32, i32, i32, i32, i32, i32, i32);

fn figures(set: &DaemonSet) -> Option<Figures> {
    let s = set.status.clone()?;
    (s.observed_generation >= set.metadata.generation).then_some((
        s.desired_number_scheduled,
        s.current_number_scheduled,
        s.number_ready,
        s.updated_number_scheduled.unwrap_or(0),
        s.number_available.unwrap_or(0),
        s.number_unavailable.unwrap_or(0),
        s.number_misscheduled,
    ))
}

async fn wait_for_figures(sets: &Api<DaemonSet>, what: &str, want: Figures) {
    let mut last = None;
    let found = tokio::time::timeout(WITHIN, async {
        loop {
            last = figures(&sets.get("agent").await.unwrap());
            if last == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(found.is_ok(), "{what}: status {last:?}, want {want:?}");
}

/// The notes of the set's events with `reason`.
async fn notes(bed: &Bed, reason: &str) -> Vec<String> {
    let events: Api<Event> = bed.api();
    let mut found: Vec<Event> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("DaemonSet"))
        .collect();
    found.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    found.into_iter().filter_map(|e| e.note).collect()
}

async fn set_image(sets: &Api<DaemonSet>, image: &str) {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "agent", "image": image}]}}}});
    sets.patch("agent", &PatchParams::default(), &Patch::Strategic(&patch)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_per_node_as_nodes_come_go_and_change() {
    let bed = Bed::start(&[Controller::DaemonSet], true).await;
    let sets: Api<DaemonSet> = bed.api();
    let pods: Api<Pod> = bed.api();
    add_node(&bed, "n1", json!({})).await;
    add_node(&bed, "n2", json!({})).await;
    sets.create(&PostParams::default(), &daemon_set("agent:1", json!({}))).await.unwrap();
    wait_for_nodes(&pods, "a pod on each node", on_nodes(&["n1", "n2"], "agent:1")).await;
    wait_for_figures(&sets, "two ready", (2, 2, 2, 2, 2, 0, 0)).await;

    let pod = live(&pods).await.into_iter().next().unwrap();
    let set = sets.get("agent").await.unwrap();
    let owner = &pod.owner_references()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("DaemonSet", "agent", Some(true)));
    assert!(pod.name_any().starts_with("agent-"), "{}", pod.name_any());
    assert_eq!(pod.labels()["pod-template-generation"], "1");
    assert_eq!(set.annotations()["deprecated.daemonset.template.generation"], "1");
    let revisions: Api<ControllerRevision> = bed.api();
    let history = revisions.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].name_any(), format!("agent-{}", pod.labels()["controller-revision-hash"]));
    let tolerations: Vec<String> = pod
        .spec
        .as_ref()
        .unwrap()
        .tolerations
        .iter()
        .flatten()
        .map(|t| format!("{}:{}", t.key.clone().unwrap_or_default(), t.effect.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        tolerations,
        [
            "node.kubernetes.io/not-ready:NoExecute",
            "node.kubernetes.io/unreachable:NoExecute",
            "node.kubernetes.io/disk-pressure:NoSchedule",
            "node.kubernetes.io/memory-pressure:NoSchedule",
            "node.kubernetes.io/pid-pressure:NoSchedule",
            "node.kubernetes.io/unschedulable:NoSchedule"
        ]
    );
    let mut created = notes(&bed, "SuccessfulCreate").await;
    created.sort();
    let mut expected: Vec<String> =
        live(&pods).await.iter().map(|p| format!("Created pod: {}", p.name_any())).collect();
    expected.sort();
    assert_eq!(created, expected);

    // A new node gets a pod; a node problem the daemon pods tolerate changes nothing.
    add_node(&bed, "n3", json!({})).await;
    wait_for_nodes(&pods, "a pod on the new node", on_nodes(&["n1", "n2", "n3"], "agent:1")).await;
    let not_ready = json!({"spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}});
    patch_node(&bed, "n1", not_ready).await;

    // A NoSchedule taint keeps the pod there but no longer wanted (misscheduled); a
    // NoExecute taint drives it out.
    let taint = |effect: &str| json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": effect}]}});
    patch_node(&bed, "n3", taint("NoSchedule")).await;
    wait_for_figures(&sets, "n3 misscheduled", (2, 2, 2, 2, 2, 0, 1)).await;
    assert_eq!(images_by_node(&pods).await, on_nodes(&["n1", "n2", "n3"], "agent:1"));
    patch_node(&bed, "n3", taint("NoExecute")).await;
    wait_for_nodes(&pods, "n3's pod gone", on_nodes(&["n1", "n2"], "agent:1")).await;
    wait_for_figures(&sets, "n3 not counted", (2, 2, 2, 2, 2, 0, 0)).await;

    // A node that is gone takes its (unscheduled) pod along.
    Api::<Node>::all(bed.client.clone()).delete("n2", &DeleteParams::default()).await.unwrap();
    wait_for_nodes(&pods, "n2's pod gone", on_nodes(&["n1"], "agent:1")).await;

    // A node selector picks the nodes; relabelling a node moves the pod.
    let selector = json!({"spec": {"template": {"spec": {"nodeSelector": {"role": "edge"}}}}});
    sets.patch("agent", &PatchParams::default(), &Patch::Strategic(&selector)).await.unwrap();
    wait_for_nodes(&pods, "no node selected", BTreeMap::new()).await;
    wait_for_figures(&sets, "nothing desired", (0, 0, 0, 0, 0, 0, 0)).await;
    patch_node(&bed, "n3", json!({"metadata": {"labels": {"role": "edge"}}, "spec": {"taints": null}})).await;
    wait_for_nodes(&pods, "the edge node's pod", on_nodes(&["n3"], "agent:1")).await;
    let pod = live(&pods).await.remove(0);
    assert_eq!(pod.labels()["pod-template-generation"], "2");
    assert_eq!(pod.spec.as_ref().unwrap().node_selector.as_ref().unwrap()["role"], "edge");

    // A failed pod is replaced, with a warning.
    let failed = pod.name_any();
    pods.patch_status(&failed, &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Failed"}})))
        .await
        .unwrap();
    eventually("the failed pod replaced", WITHIN, || async {
        let now = live(&pods).await;
        (now.len() == 1 && now[0].name_any() != failed).then_some(())
    })
    .await;
    assert_eq!(
        notes(&bed, "FailedDaemonPod").await,
        [format!("Found failed daemon pod default/{failed} on node n3, will try to kill it")]
    );
    assert!(notes(&bed, "SuccessfulDelete").await.contains(&format!("Deleted pod: {failed}")));

    // So is one that succeeded, with a normal event.
    let succeeded = live(&pods).await.remove(0).name_any();
    pods.patch_status(&succeeded, &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Succeeded"}})))
        .await
        .unwrap();
    eventually("the succeeded pod replaced", WITHIN, || async {
        let now = live(&pods).await;
        (now.len() == 1 && now[0].name_any() != succeeded).then_some(())
    })
    .await;
    assert_eq!(
        notes(&bed, "SucceededDaemonPod").await,
        [format!("Found succeeded daemon pod default/{succeeded} on node n3, will try to delete it")]
    );

    // A pod that stops matching is released and replaced; a matching orphan is
    // adopted (here: a second pod on n3, so it goes).
    let released = live(&pods).await.remove(0).name_any();
    let relabel = json!({"metadata": {"labels": {"app": "other"}}});
    pods.patch(&released, &PatchParams::default(), &Patch::Merge(&relabel)).await.unwrap();
    eventually("the released pod replaced", WITHIN, || async {
        let now = live(&pods).await;
        (now.len() == 1 && now[0].name_any() != released).then_some(())
    })
    .await;
    assert!(pods.get(&released).await.unwrap().owner_references().is_empty());
    let mut orphan = live(&pods).await.remove(0);
    orphan.metadata = kube::api::ObjectMeta {
        name: Some("stray".into()),
        labels: Some([("app".to_string(), "agent".to_string())].into()),
        ..Default::default()
    };
    orphan.status = None;
    pods.create(&PostParams::default(), &orphan).await.unwrap();
    eventually("the orphan adopted and removed", WITHIN, || async {
        notes(&bed, "SuccessfulDelete").await.contains(&"Deleted pod: stray".to_string()).then_some(())
    })
    .await;
    assert_eq!(live(&pods).await.len(), 1);
    bed.stop().await;
}

/// Waits until `want` holds for the pods' images and readiness, then checks it still
/// holds a moment later (the controller went no further).
async fn settles_at(pods: &Api<Pod>, what: &str, want: impl Fn(&[Pod]) -> bool) {
    eventually(what, WITHIN, || async { want(&live(pods).await).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = live(pods).await;
    let images: Vec<(String, String)> = now.iter().map(|p| (node_of(p), image_of(p))).collect();
    assert!(want(&now), "{what}: went further: {images:?}");
}

fn count(pods: &[Pod], image: &str) -> usize {
    pods.iter().filter(|p| image_of(p) == image).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_updates_keep_within_max_unavailable() {
    let bed = Bed::start(&[Controller::DaemonSet], false).await;
    let sets: Api<DaemonSet> = bed.api();
    let pods: Api<Pod> = bed.api();
    let nodes = ["n1", "n2", "n3", "n4"];
    for node in nodes {
        add_node(&bed, node, json!({})).await;
    }
    let strategy = json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}});
    sets.create(&PostParams::default(), &daemon_set("agent:1", strategy)).await.unwrap();
    wait_for_nodes(&pods, "a pod on each node", on_nodes(&nodes, "agent:1")).await;
    wait_for_figures(&sets, "none ready yet", (4, 4, 0, 4, 0, 4, 0)).await;
    mark_all_ready(&pods).await;
    wait_for_figures(&sets, "all ready", (4, 4, 4, 4, 4, 0, 0)).await;

    // Two old pods go at a time, and the next two only once their replacements are ready.
    set_image(&sets, "agent:2").await;
    settles_at(&pods, "two replaced", |p| p.len() == 4 && count(p, "agent:1") == 2).await;
    wait_for_figures(&sets, "two updated, unready", (4, 4, 2, 2, 2, 2, 0)).await;
    mark_all_ready(&pods).await;
    settles_at(&pods, "all replaced", |p| p.len() == 4 && count(p, "agent:2") == 4).await;
    mark_all_ready(&pods).await;
    wait_for_nodes(&pods, "one new pod per node", on_nodes(&nodes, "agent:2")).await;
    wait_for_figures(&sets, "rolled out", (4, 4, 4, 4, 4, 0, 0)).await;
    let deleted = notes(&bed, "SuccessfulDelete").await;
    assert_eq!(deleted.len(), 4, "{deleted:?}");
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surging_updates_start_new_pods_beside_old_ones() {
    let bed = Bed::start(&[Controller::DaemonSet], false).await;
    let sets: Api<DaemonSet> = bed.api();
    let pods: Api<Pod> = bed.api();
    let nodes = ["n1", "n2", "n3"];
    for node in nodes {
        add_node(&bed, node, json!({})).await;
    }
    let strategy = json!({"updateStrategy": {"type": "RollingUpdate",
                          "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}});
    sets.create(&PostParams::default(), &daemon_set("agent:1", strategy)).await.unwrap();
    wait_for_nodes(&pods, "a pod on each node", on_nodes(&nodes, "agent:1")).await;
    mark_all_ready(&pods).await;
    wait_for_figures(&sets, "all ready", (3, 3, 3, 3, 3, 0, 0)).await;

    // One node at a time gets a second, new pod; its old pod goes once that is ready.
    set_image(&sets, "agent:2").await;
    for updated in 1..=3 {
        settles_at(&pods, &format!("surge {updated}"), |p| {
            p.len() == 4 && count(p, "agent:2") == updated && count(p, "agent:1") == 4 - updated
        })
        .await;
        let by_node = images_by_node(&pods).await;
        assert_eq!(by_node.values().filter(|images| images.len() == 2).count(), 1, "{by_node:?}");
        mark_all_ready(&pods).await;
        eventually("the old pod beside it gone", WITHIN, || async {
            (count(&live(&pods).await, "agent:1") == 3 - updated).then_some(())
        })
        .await;
    }
    wait_for_nodes(&pods, "rolled out", on_nodes(&nodes, "agent:2")).await;
    wait_for_figures(&sets, "rolled out", (3, 3, 3, 3, 3, 0, 0)).await;
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_replaces_only_deleted_pods() {
    let bed = Bed::start(&[Controller::DaemonSet], true).await;
    let sets: Api<DaemonSet> = bed.api();
    let pods: Api<Pod> = bed.api();
    for node in ["n1", "n2"] {
        add_node(&bed, node, json!({})).await;
    }
    sets.create(&PostParams::default(), &daemon_set("agent:1", json!({"updateStrategy": {"type": "OnDelete"}})))
        .await
        .unwrap();
    wait_for_figures(&sets, "all ready", (2, 2, 2, 2, 2, 0, 0)).await;
    set_image(&sets, "agent:2").await;
    wait_for_figures(&sets, "none updated", (2, 2, 2, 0, 2, 0, 0)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(images_by_node(&pods).await, on_nodes(&["n1", "n2"], "agent:1"));

    let on_n1 = live(&pods).await.into_iter().find(|p| node_of(p) == "n1").unwrap();
    pods.delete(&on_n1.name_any(), &DeleteParams::default()).await.unwrap();
    let mut want = on_nodes(&["n2"], "agent:1");
    want.insert("n1".into(), vec!["agent:2".into()]);
    wait_for_nodes(&pods, "n1's pod replaced by the new template", want).await;
    wait_for_figures(&sets, "one updated", (2, 2, 2, 1, 2, 0, 0)).await;
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_kept_and_a_rollback_reuses_its_revision() {
    let bed = Bed::start(&[Controller::DaemonSet], true).await;
    let sets: Api<DaemonSet> = bed.api();
    let pods: Api<Pod> = bed.api();
    let revisions: Api<ControllerRevision> = bed.api();
    add_node(&bed, "n1", json!({})).await;
    add_node(&bed, "n2", json!({})).await;
    sets.create(&PostParams::default(), &daemon_set("agent:1", json!({"revisionHistoryLimit": 1}))).await.unwrap();
    wait_for_figures(&sets, "the first rollout", (2, 2, 2, 2, 2, 0, 0)).await;
    let hash_of = |p: &Pod| p.labels()["controller-revision-hash"].clone();
    let first_hash = hash_of(&live(&pods).await[0]);
    let numbered = || async {
        let mut list = revisions.list(&ListParams::default().labels("app=agent")).await.unwrap().items;
        list.sort_by_key(|r| r.revision);
        list.iter().map(|r| (r.labels()["controller-revision-hash"].clone(), r.revision)).collect::<Vec<_>>()
    };
    assert_eq!(numbered().await, [(first_hash.clone(), 1)]);

    set_image(&sets, "agent:2").await;
    wait_for_nodes(&pods, "the second rollout", on_nodes(&["n1", "n2"], "agent:2")).await;
    wait_for_figures(&sets, "the second rollout", (2, 2, 2, 2, 2, 0, 0)).await;
    let second_hash = hash_of(&live(&pods).await[0]);
    assert_ne!(first_hash, second_hash);
    assert_eq!(numbered().await, [(first_hash.clone(), 1), (second_hash.clone(), 2)]);

    // What `kubectl rollout undo` does: the old revision's data as a strategic merge
    // patch. That revision comes back as the newest, and the pods carry its hash.
    let first = revisions.get(&format!("agent-{first_hash}")).await.unwrap();
    sets.patch("agent", &PatchParams::default(), &Patch::Strategic(&first.data.unwrap().0)).await.unwrap();
    wait_for_nodes(&pods, "the rollback", on_nodes(&["n1", "n2"], "agent:1")).await;
    wait_for_figures(&sets, "the rollback", (2, 2, 2, 2, 2, 0, 0)).await;
    let back = live(&pods).await;
    assert!(back.iter().all(|p| hash_of(p) == first_hash));
    assert!(back.iter().all(|p| p.labels()["pod-template-generation"] == "3"));
    assert_eq!(numbered().await, [(second_hash.clone(), 2), (first_hash.clone(), 3)]);

    // A third template: beyond one unused revision, the oldest goes.
    set_image(&sets, "agent:3").await;
    wait_for_nodes(&pods, "the third rollout", on_nodes(&["n1", "n2"], "agent:3")).await;
    let third_hash = hash_of(&live(&pods).await[0]);
    eventually("the oldest revision pruned", WITHIN, || async {
        (numbered().await == [(first_hash.clone(), 3), (third_hash.clone(), 4)]).then_some(())
    })
    .await;
    bed.stop().await;
}
