//! The StatefulSet controller against Waggle's API server, through kube-rs: ordered
//! creation and scale-down, claims from templates, parallel pod management, rolling
//! updates in reverse ordinal order with partitions, and the ControllerRevision history.
//! Where ordering matters the test plays the kubelet itself and marks pods ready one by
//! one; elsewhere the kubelet stand-in marks every pod running and ready.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use support::{Bed, eventually};
use waggle_controllers::Controller;

const WITHIN: Duration = Duration::from_secs(30);

fn stateful_set(replicas: i32, image: &str, extra: Value) -> StatefulSet {
    let mut set = json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "serviceName": "nginx",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image}]},
            },
        },
    });
    for (key, value) in extra.as_object().unwrap() {
        set["spec"][key] = value.clone();
    }
    serde_json::from_value(set).unwrap()
}

async fn names(pods: &Api<Pod>) -> Vec<String> {
    let mut names: Vec<String> = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names
}

async fn mark_ready(pods: &Api<Pod>, name: &str) {
    let now = jiff::Timestamp::now().to_string();
    let status = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now},
    ]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
}

/// The notes of the set's events with `reason`, oldest first.
async fn notes(bed: &Bed, reason: &str) -> Vec<String> {
    let events: Api<Event> = bed.api();
    let mut found: Vec<Event> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("StatefulSet"))
        .collect();
    found.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    found.into_iter().filter_map(|e| e.note).collect()
}

fn image_of(pod: &Pod) -> String {
    pod.spec.as_ref().unwrap().containers[0].image.clone().unwrap()
}

async fn revisions(api: &Api<ControllerRevision>) -> Vec<ControllerRevision> {
    let mut list = api.list(&ListParams::default().labels("app=web")).await.unwrap().items;
    list.sort_by_key(|r| r.revision);
    list
}

/// The revisions' names and numbers.
fn numbered(revisions: &[ControllerRevision]) -> Vec<(String, i64)> {
    revisions.iter().map(|r| (r.name_any(), r.revision)).collect()
}

/// Rolled out: every replica ready and at the update revision, which is current.
fn rolled_out(set: &StatefulSet) -> bool {
    let want = set.spec.as_ref().unwrap().replicas.unwrap();
    let s = set.status.clone().unwrap_or_default();
    s.observed_generation >= set.metadata.generation
        && s.replicas == want
        && s.ready_replicas == Some(want)
        && s.updated_replicas == Some(want)
        && s.current_replicas == Some(want)
        && s.current_revision.is_some()
        && s.current_revision == s.update_revision
}

async fn set_image(sets: &Api<StatefulSet>, image: &str) {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": image}]}}}});
    sets.patch("web", &PatchParams::default(), &Patch::Strategic(&patch)).await.unwrap();
}

async fn wait_rolled_out(sets: &Api<StatefulSet>, what: &str) -> StatefulSet {
    eventually(what, WITHIN, || async {
        let set = sets.get("web").await.unwrap();
        rolled_out(&set).then_some(set)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_ready_creates_in_order_and_scales_down_highest_first() {
    let bed = Bed::start(&[Controller::StatefulSet], false).await;
    let sets: Api<StatefulSet> = bed.api();
    let pods: Api<Pod> = bed.api();
    sets.create(&PostParams::default(), &stateful_set(3, "nginx:1", json!({}))).await.unwrap();

    for (ordinal, name) in ["web-0", "web-1", "web-2"].iter().enumerate() {
        eventually(&format!("{name} created"), WITHIN, || async {
            names(&pods).await.contains(&name.to_string()).then_some(())
        })
        .await;
        // The next pod waits for this one to be running and ready.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let expected: Vec<String> = (0..=ordinal).map(|o| format!("web-{o}")).collect();
        assert_eq!(names(&pods).await, expected, "created before web-{ordinal} was ready");
        mark_ready(&pods, name).await;
    }
    let set = eventually("three ready replicas", WITHIN, || async {
        let set = sets.get("web").await.unwrap();
        (set.status.as_ref().and_then(|s| s.ready_replicas) == Some(3)).then_some(set)
    })
    .await;
    let status = set.status.unwrap();
    assert_eq!((status.replicas, status.current_replicas, status.updated_replicas), (3, Some(3), Some(3)));
    assert_eq!(status.available_replicas, Some(3));
    assert_eq!(status.observed_generation, set.metadata.generation);

    let pod = pods.get("web-1").await.unwrap();
    let labels = pod.labels();
    assert_eq!(labels["statefulset.kubernetes.io/pod-name"], "web-1");
    assert_eq!(labels["apps.kubernetes.io/pod-index"], "1");
    assert_eq!(Some(&labels["controller-revision-hash"]), status.update_revision.as_ref());
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!((spec.hostname.as_deref(), spec.subdomain.as_deref()), (Some("web-1"), Some("nginx")));
    let owner = &pod.owner_references()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("StatefulSet", "web", Some(true)));
    assert_eq!(
        notes(&bed, "SuccessfulCreate").await,
        [
            "create Pod web-0 in StatefulSet web successful",
            "create Pod web-1 in StatefulSet web successful",
            "create Pod web-2 in StatefulSet web successful"
        ]
    );

    sets.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}}))).await.unwrap();
    eventually("scaled down to one", WITHIN, || async { (names(&pods).await == ["web-0"]).then_some(()) }).await;
    assert_eq!(
        notes(&bed, "SuccessfulDelete").await,
        ["delete Pod web-2 in StatefulSet web successful", "delete Pod web-1 in StatefulSet web successful"]
    );
    eventually("status of one replica", WITHIN, || async {
        let status = sets.get("web").await.unwrap().status.unwrap_or_default();
        (status.replicas == 1 && status.ready_replicas == Some(1)).then_some(())
    })
    .await;

    // A failed pod is replaced by a new one of the same name.
    let failed = pods.get("web-0").await.unwrap().uid();
    let status = json!({"status": {"phase": "Failed"}});
    pods.patch_status("web-0", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    eventually("web-0 recreated", WITHIN, || async {
        let pod = pods.get_opt("web-0").await.unwrap()?;
        (pod.uid() != failed && pod.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;
    assert_eq!(notes(&bed, "RecreatingFailedPod").await, ["StatefulSet default/web is recreating failed Pod web-0"]);
    mark_ready(&pods, "web-0").await;

    // An orphan named as a member is adopted (here: beyond the replicas, so removed);
    // one that is not is left alone.
    for name in ["web-5", "web-x"] {
        let orphan: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &orphan).await.unwrap();
    }
    eventually("web-5 adopted and removed", WITHIN, || async {
        notes(&bed, "SuccessfulDelete")
            .await
            .contains(&"delete Pod web-5 in StatefulSet web successful".into())
            .then_some(())
    })
    .await;
    assert!(pods.get("web-x").await.unwrap().owner_references().is_empty());
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_pods_get_claims_kept_or_deleted_as_the_retention_policy_says() {
    let bed = Bed::start(&[Controller::StatefulSet, Controller::GarbageCollector], false).await;
    let sets: Api<StatefulSet> = bed.api();
    let pods: Api<Pod> = bed.api();
    let claims: Api<PersistentVolumeClaim> = bed.api();
    let extra = json!({
        "podManagementPolicy": "Parallel",
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Delete"},
        "volumeClaimTemplates": [{
            "metadata": {"name": "www"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }],
    });
    sets.create(&PostParams::default(), &stateful_set(3, "nginx:1", extra)).await.unwrap();

    // Parallel: every pod at once, none of them ready.
    eventually("three pods at once", WITHIN, || async {
        (names(&pods).await == ["web-0", "web-1", "web-2"]).then_some(())
    })
    .await;
    for ordinal in 0..3 {
        let claim = claims.get(&format!("www-web-{ordinal}")).await.unwrap();
        assert_eq!(claim.labels()["app"], "web");
        assert!(claim.owner_references().is_empty(), "whenDeleted Retain: {:?}", claim.owner_references());
        let pod = pods.get(&format!("web-{ordinal}")).await.unwrap();
        let volumes = pod.spec.as_ref().unwrap().volumes.clone().unwrap();
        let volume = volumes.iter().find(|v| v.name == "www").expect("the claim's volume");
        assert_eq!(volume.persistent_volume_claim.as_ref().unwrap().claim_name, format!("www-web-{ordinal}"));
    }

    // Scaling down (not waiting for readiness in Parallel) hands the claims to their
    // pods (whenScaled: Delete), so they go with them; web-0's stays unowned.
    sets.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}}))).await.unwrap();
    eventually("scaled down to one", WITHIN, || async { (names(&pods).await == ["web-0"]).then_some(()) }).await;
    eventually("the scaled-down pods' claims deleted", WITHIN, || async {
        let left: Vec<String> =
            claims.list(&ListParams::default()).await.unwrap().iter().map(|c| c.name_any()).collect();
        (left == ["www-web-0"]).then_some(())
    })
    .await;
    assert!(claims.get("www-web-0").await.unwrap().owner_references().is_empty());

    // whenDeleted: Delete makes the set own the claims, which then go with it.
    let policy = json!({"spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"}}});
    sets.patch("web", &PatchParams::default(), &Patch::Merge(&policy)).await.unwrap();
    let set_uid = sets.get("web").await.unwrap().uid();
    eventually("the set owns web-0's claim", WITHIN, || async {
        let claim = claims.get("www-web-0").await.unwrap();
        let owners: Vec<_> = claim.owner_references().iter().map(|r| (r.kind.clone(), Some(r.uid.clone()))).collect();
        (owners == [("StatefulSet".to_string(), set_uid.clone())]).then_some(())
    })
    .await;
    sets.delete("web", &Default::default()).await.unwrap();
    eventually("the set's claim deleted with it", WITHIN, || async {
        claims.list(&ListParams::default()).await.unwrap().items.is_empty().then_some(())
    })
    .await;
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_updates_go_in_reverse_and_keep_a_pruned_history() {
    let bed = Bed::start(&[Controller::StatefulSet], true).await;
    let sets: Api<StatefulSet> = bed.api();
    let pods: Api<Pod> = bed.api();
    let history: Api<ControllerRevision> = bed.api();
    sets.create(&PostParams::default(), &stateful_set(3, "nginx:1", json!({"revisionHistoryLimit": 1}))).await.unwrap();
    let first = wait_rolled_out(&sets, "the first rollout").await;
    let first_revision = first.status.unwrap().current_revision.unwrap();
    let initial = revisions(&history).await;
    assert_eq!(initial.len(), 1);
    assert_eq!((initial[0].name_any(), initial[0].revision), (first_revision.clone(), 1));
    let hash = &initial[0].labels()["controller.kubernetes.io/hash"];
    assert_eq!(first_revision, format!("web-{hash}"));
    assert_eq!(initial[0].owner_references()[0].controller, Some(true));
    assert_eq!(initial[0].data.as_ref().unwrap().0["spec"]["template"]["$patch"], "replace");

    set_image(&sets, "nginx:2").await;
    let second = eventually("the second rollout", WITHIN, || async {
        let set = sets.get("web").await.unwrap();
        (rolled_out(&set) && set.status.as_ref().unwrap().current_revision.as_ref() != Some(&first_revision))
            .then_some(set)
    })
    .await;
    let second_revision = second.status.unwrap().update_revision.unwrap();
    for pod in pods.list(&ListParams::default().labels("app=web")).await.unwrap() {
        assert_eq!(
            (image_of(&pod).as_str(), pod.labels()["controller-revision-hash"].as_str()),
            ("nginx:2", second_revision.as_str())
        );
    }
    let deletes = notes(&bed, "SuccessfulDelete").await;
    assert_eq!(
        deletes,
        [
            "delete Pod web-2 in StatefulSet web successful",
            "delete Pod web-1 in StatefulSet web successful",
            "delete Pod web-0 in StatefulSet web successful"
        ]
    );
    let both = revisions(&history).await;
    assert_eq!(numbered(&both), [(first_revision.clone(), 1), (second_revision.clone(), 2)]);

    // What `kubectl rollout undo` does: the old revision's data as a strategic merge
    // patch. That revision comes back as the newest rather than a new one.
    let undo = both[0].data.clone().unwrap().0;
    sets.patch("web", &PatchParams::default(), &Patch::Strategic(&undo)).await.unwrap();
    let back = eventually("the rollback", WITHIN, || async {
        let set = sets.get("web").await.unwrap();
        (rolled_out(&set) && set.status.as_ref().unwrap().current_revision.as_ref() == Some(&first_revision))
            .then_some(set)
    })
    .await;
    assert_eq!(back.spec.unwrap().template.spec.unwrap().containers[0].image.as_deref(), Some("nginx:1"));
    let renumbered = revisions(&history).await;
    assert_eq!(numbered(&renumbered), [(second_revision.clone(), 2), (first_revision.clone(), 3)]);

    // A third template: beyond one unused revision, the oldest goes.
    set_image(&sets, "nginx:3").await;
    let third = eventually("the third rollout", WITHIN, || async {
        let set = sets.get("web").await.unwrap();
        let status = set.status.clone().unwrap_or_default();
        (rolled_out(&set) && ![&first_revision, &second_revision].contains(&&status.current_revision.clone().unwrap()))
            .then_some(set)
    })
    .await;
    let third_revision = third.status.unwrap().current_revision.unwrap();
    let pruned = eventually("the oldest revision pruned", WITHIN, || async {
        let list = revisions(&history).await;
        (list.len() == 2).then_some(list)
    })
    .await;
    assert_eq!(numbered(&pruned), [(first_revision, 3), (third_revision, 4)]);
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_holds_lower_ordinals_back() {
    let bed = Bed::start(&[Controller::StatefulSet], true).await;
    let sets: Api<StatefulSet> = bed.api();
    let pods: Api<Pod> = bed.api();
    let strategy = json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}});
    sets.create(&PostParams::default(), &stateful_set(3, "nginx:1", strategy)).await.unwrap();
    let first = wait_rolled_out(&sets, "the first rollout").await;
    let first_revision = first.status.unwrap().current_revision.unwrap();

    set_image(&sets, "nginx:2").await;
    let status = eventually("web-2 updated", WITHIN, || async {
        let status = sets.get("web").await.unwrap().status.unwrap_or_default();
        (status.updated_replicas == Some(1) && status.ready_replicas == Some(3)).then_some(status)
    })
    .await;
    assert_eq!(status.current_revision.as_ref(), Some(&first_revision));
    assert_ne!(status.update_revision, status.current_revision);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let images = |pods: Vec<Pod>| {
        let mut images: Vec<(String, String)> = pods.iter().map(|p| (p.name_any(), image_of(p))).collect();
        images.sort();
        images
    };
    let now = images(pods.list(&ListParams::default().labels("app=web")).await.unwrap().items);
    assert_eq!(
        now,
        [("web-0".into(), "nginx:1".into()), ("web-1".into(), "nginx:1".into()), ("web-2".into(), "nginx:2".into())]
    );

    // A pod below the partition that is deleted comes back at the current revision.
    pods.delete("web-0", &Default::default()).await.unwrap();
    eventually("web-0 back", WITHIN, || async {
        let pod = pods.get_opt("web-0").await.unwrap()?;
        (pod.metadata.deletion_timestamp.is_none() && pod.status.as_ref()?.phase.as_deref() == Some("Running"))
            .then_some(pod)
    })
    .await;
    assert_eq!(image_of(&pods.get("web-0").await.unwrap()), "nginx:1");

    // Lowering the partition lets the update through.
    let open = json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}});
    sets.patch("web", &PatchParams::default(), &Patch::Merge(&open)).await.unwrap();
    let done = wait_rolled_out(&sets, "the rest of the rollout").await;
    assert_ne!(done.status.unwrap().current_revision.unwrap(), first_revision);
    let now = images(pods.list(&ListParams::default().labels("app=web")).await.unwrap().items);
    assert!(now.iter().all(|(_, image)| image == "nginx:2"), "{now:?}");
    bed.stop().await;
}
