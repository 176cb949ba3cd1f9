//! The workload controllers against Waggle's API server, through kube-rs: Deployments
//! roll out through ReplicaSets, ReplicaSets keep their pods, namespaces get their
//! defaults. No kubelet runs here, so the test plays its part: every pod that exists
//! is marked running and ready.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::{Bed, eventually};
use waggle_controllers::Controller;

fn deployment(name: &str, replicas: i32, image: &str, strategy: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {"kubernetes.io/change-cause": format!("run {image}")}},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "strategy": strategy,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }))
    .unwrap()
}

fn image_of(rs: &ReplicaSet) -> String {
    rs.spec.as_ref().unwrap().template.as_ref().unwrap().spec.as_ref().unwrap().containers[0].image.clone().unwrap()
}

async fn sets_of(api: &Api<ReplicaSet>, app: &str) -> Vec<ReplicaSet> {
    let mut sets = api.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap().items;
    sets.sort_by_key(|rs| rs.annotations().get("deployment.kubernetes.io/revision").cloned());
    sets
}

async fn set_image(api: &Api<Deployment>, name: &str, image: &str) {
    let patch = json!({
        "metadata": {"annotations": {"kubernetes.io/change-cause": format!("run {image}")}},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
    });
    api.patch(name, &PatchParams::default(), &Patch::Strategic(&patch)).await.unwrap();
}

/// Complete: every replica updated and available for the current generation.
fn rolled_out(d: &Deployment) -> bool {
    let want = d.spec.as_ref().unwrap().replicas.unwrap();
    let s = d.status.clone().unwrap_or_default();
    s.observed_generation >= d.metadata.generation
        && s.updated_replicas == Some(want)
        && s.replicas == Some(want)
        && s.available_replicas == Some(want)
}

fn condition_reason(d: &Deployment, type_: &str) -> Option<String> {
    let conditions = d.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == type_)?.reason.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_through_revisions_and_back() {
    let bed = Bed::start(&[Controller::Deployment, Controller::ReplicaSet], true).await;
    let deployments: Api<Deployment> = bed.api();
    let sets: Api<ReplicaSet> = bed.api();
    let pods: Api<Pod> = bed.api();
    let surge = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
    deployments.create(&PostParams::default(), &deployment("web", 3, "nginx:1.25", surge)).await.unwrap();

    let first = eventually("the first rollout", Duration::from_secs(30), || async {
        let d = deployments.get("web").await.unwrap();
        rolled_out(&d).then_some(d)
    })
    .await;
    assert_eq!(first.annotations()["deployment.kubernetes.io/revision"], "1");
    assert_eq!(condition_reason(&first, "Available").as_deref(), Some("MinimumReplicasAvailable"));
    assert_eq!(condition_reason(&first, "Progressing").as_deref(), Some("NewReplicaSetAvailable"));
    let initial = sets_of(&sets, "web").await;
    assert_eq!(initial.len(), 1);
    let hash = initial[0].labels()["pod-template-hash"].clone();
    assert_eq!(initial[0].name_any(), format!("web-{hash}"));
    assert_eq!(initial[0].annotations()["kubernetes.io/change-cause"], "run nginx:1.25");
    let web_pods = pods.list(&ListParams::default().labels("app=web")).await.unwrap().items;
    assert_eq!(web_pods.len(), 3);
    for pod in &web_pods {
        assert_eq!(pod.labels()["pod-template-hash"], hash);
        assert!(pod.name_any().starts_with(&format!("web-{hash}-")), "{}", pod.name_any());
        let owner = &pod.owner_references()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("ReplicaSet", Some(true)));
    }

    // A new template: a second ReplicaSet takes over, never more than one pod above
    // the replicas (maxSurge 1) and never fewer than three ready (maxUnavailable 0).
    set_image(&deployments, "web", "nginx:1.26").await;
    let watch_pods = pods.clone();
    let sampler = tokio::spawn(async move {
        let mut most = 0;
        for _ in 0..200 {
            let live = watch_pods.list(&ListParams::default().labels("app=web")).await.unwrap().items;
            most = most.max(live.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).count());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        most
    });
    let second = eventually("the second rollout", Duration::from_secs(30), || async {
        let d = deployments.get("web").await.unwrap();
        (rolled_out(&d) && d.annotations()["deployment.kubernetes.io/revision"] == "2").then_some(d)
    })
    .await;
    assert!(sampler.await.unwrap() <= 4, "the rollout surged past maxSurge");
    let both = sets_of(&sets, "web").await;
    assert_eq!(both.len(), 2);
    assert_eq!((image_of(&both[0]).as_str(), both[0].spec.as_ref().unwrap().replicas), ("nginx:1.25", Some(0)));
    assert_eq!((image_of(&both[1]).as_str(), both[1].spec.as_ref().unwrap().replicas), ("nginx:1.26", Some(3)));
    assert_eq!(both[1].annotations()["deployment.kubernetes.io/desired-replicas"], "3");
    assert_eq!(both[1].annotations()["deployment.kubernetes.io/max-replicas"], "4");
    assert_eq!(second.status.as_ref().unwrap().unavailable_replicas, Some(0));

    // Rolling back (the template `kubectl rollout undo` writes back): revision 1's ReplicaSet comes
    // back as revision 3, remembering it was 1.
    let template = initial[0].spec.as_ref().unwrap().template.clone().unwrap();
    let mut template = serde_json::to_value(template).unwrap();
    template["metadata"]["labels"].as_object_mut().unwrap().remove("pod-template-hash");
    let undo = json!({"spec": {"template": template}});
    deployments.patch("web", &PatchParams::default(), &Patch::Merge(&undo)).await.unwrap();
    eventually("the rollback", Duration::from_secs(30), || async {
        let d = deployments.get("web").await.unwrap();
        (rolled_out(&d) && d.annotations()["deployment.kubernetes.io/revision"] == "3").then_some(())
    })
    .await;
    let back = sets.get(&initial[0].name_any()).await.unwrap();
    assert_eq!(back.annotations()["deployment.kubernetes.io/revision"], "3");
    assert_eq!(back.annotations()["deployment.kubernetes.io/revision-history"], "1");
    assert_eq!(back.spec.as_ref().unwrap().replicas, Some(3));

    // A third and fourth template: the history keeps two old ReplicaSets.
    set_image(&deployments, "web", "nginx:1.27").await;
    eventually("the fourth revision", Duration::from_secs(30), || async {
        let d = deployments.get("web").await.unwrap();
        (rolled_out(&d) && d.annotations()["deployment.kubernetes.io/revision"] == "4").then_some(())
    })
    .await;
    set_image(&deployments, "web", "nginx:1.28").await;
    let history = eventually("old ReplicaSets beyond the history limit to go", Duration::from_secs(30), || async {
        let d = deployments.get("web").await.unwrap();
        let all = sets_of(&sets, "web").await;
        (rolled_out(&d) && all.len() == 3).then_some(all)
    })
    .await;
    let images: Vec<String> = history.iter().map(image_of).collect();
    assert_eq!(images, ["nginx:1.25", "nginx:1.27", "nginx:1.28"]);
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_pausing_and_recreate() {
    let bed = Bed::start(&[Controller::Deployment, Controller::ReplicaSet], true).await;
    let deployments: Api<Deployment> = bed.api();
    let sets: Api<ReplicaSet> = bed.api();
    let pods: Api<Pod> = bed.api();
    deployments
        .create(&PostParams::default(), &deployment("db", 2, "postgres:16", json!({"type": "Recreate"})))
        .await
        .unwrap();
    eventually("the first rollout", Duration::from_secs(30), || async {
        rolled_out(&deployments.get("db").await.unwrap()).then_some(())
    })
    .await;

    // Scaling resizes the one ReplicaSet; its pods follow.
    deployments.patch("db", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 4}}))).await.unwrap();
    eventually("four pods", Duration::from_secs(30), || async {
        let d = deployments.get("db").await.unwrap();
        let live = pods.list(&ListParams::default().labels("app=db")).await.unwrap().items.len();
        (rolled_out(&d) && live == 4).then_some(())
    })
    .await;

    // A paused Deployment does not roll out its new template.
    deployments.patch("db", &PatchParams::default(), &Patch::Merge(json!({"spec": {"paused": true}}))).await.unwrap();
    eventually("the paused condition", Duration::from_secs(30), || async {
        let d = deployments.get("db").await.unwrap();
        (condition_reason(&d, "Progressing").as_deref() == Some("DeploymentPaused")).then_some(())
    })
    .await;
    set_image(&deployments, "db", "postgres:17").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sets_of(&sets, "db").await.len(), 1, "a paused deployment rolled out");

    // Resumed, Recreate takes every old pod down before the new ones start: the
    // new ReplicaSet is created only once the old one has no pods.
    deployments.patch("db", &PatchParams::default(), &Patch::Merge(json!({"spec": {"paused": false}}))).await.unwrap();
    eventually("the recreated rollout", Duration::from_secs(30), || async {
        let d = deployments.get("db").await.unwrap();
        (rolled_out(&d) && d.annotations()["deployment.kubernetes.io/revision"] == "2").then_some(())
    })
    .await;
    let all = sets_of(&sets, "db").await;
    assert_eq!(all.len(), 2);
    let (old, new) = (&all[0], &all[1]);
    assert_eq!(old.spec.as_ref().unwrap().replicas, Some(0));
    let old_gone = old.status.as_ref().unwrap().replicas == 0;
    assert!(old_gone);
    assert!(new.metadata.creation_timestamp.as_ref().unwrap().0 >= old.metadata.creation_timestamp.as_ref().unwrap().0);
    let live = pods.list(&ListParams::default().labels("app=db")).await.unwrap().items;
    assert!(live.iter().all(|p| p.labels()["pod-template-hash"] == new.labels()["pod-template-hash"]));
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_sets_replace_adopt_and_release_pods() {
    let bed = Bed::start(&[Controller::ReplicaSet], false).await;
    let sets: Api<ReplicaSet> = bed.api();
    let pods: Api<Pod> = bed.api();
    // An orphan that matches is adopted and counts toward the replicas.
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "stray", "labels": {"tier": "cache"}},
        "spec": {"containers": [{"name": "c", "image": "redis"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &orphan).await.unwrap();
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "cache"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"tier": "cache"}},
            "template": {"metadata": {"labels": {"tier": "cache"}}, "spec": {"containers": [{"name": "c", "image": "redis"}]}},
        },
    }))
    .unwrap();
    sets.create(&PostParams::default(), &rs).await.unwrap();
    let owned = eventually("three pods", Duration::from_secs(30), || async {
        let rs = sets.get("cache").await.unwrap();
        let live = pods.list(&ListParams::default().labels("tier=cache")).await.unwrap().items;
        let status = rs.status.clone().unwrap_or_default();
        (live.len() == 3 && status.replicas == 3 && status.observed_generation == rs.metadata.generation)
            .then_some(live)
    })
    .await;
    assert!(owned.iter().any(|p| p.name_any() == "stray"), "the orphan was not adopted");
    assert!(owned.iter().all(|p| p.owner_references().iter().any(|r| r.name == "cache" && r.controller == Some(true))));
    let status = sets.get("cache").await.unwrap().status.unwrap();
    assert_eq!((status.ready_replicas, status.available_replicas), (Some(0), Some(0)));

    // A deleted pod is replaced; a relabelled one is released and replaced too.
    pods.delete("stray", &DeleteParams::default()).await.unwrap();
    let relabel = owned.iter().find(|p| p.name_any() != "stray").unwrap().name_any();
    pods.patch(&relabel, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"tier": "gone"}}})))
        .await
        .unwrap();
    eventually("replacements", Duration::from_secs(30), || async {
        let live = pods.list(&ListParams::default().labels("tier=cache")).await.unwrap().items;
        let released = pods.get(&relabel).await.unwrap();
        (live.len() == 3 && released.owner_references().is_empty()).then_some(())
    })
    .await;

    // Readiness is reported; scaling down removes pods that are not ready first.
    let ready_one = pods.list(&ListParams::default().labels("tier=cache")).await.unwrap().items[0].name_any();
    let now = jiff::Timestamp::now().to_string();
    let ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
    pods.patch_status(&ready_one, &PatchParams::default(), &Patch::Merge(&ready)).await.unwrap();
    sets.patch("cache", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}}))).await.unwrap();
    let left = eventually("one pod", Duration::from_secs(30), || async {
        let rs = sets.get("cache").await.unwrap();
        let live = pods.list(&ListParams::default().labels("tier=cache")).await.unwrap().items;
        let status = rs.status.clone().unwrap_or_default();
        (live.len() == 1 && status.replicas == 1 && status.ready_replicas == Some(1)).then_some(live)
    })
    .await;
    assert_eq!(left[0].name_any(), ready_one, "a ready pod was deleted before unready ones");
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_get_their_defaults() {
    let bed = Bed::start(&[Controller::ServiceAccount, Controller::RootCaCertPublisher], false).await;
    let namespaces: Api<Namespace> = Api::all(bed.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(bed.client.clone(), "team");
    let maps: Api<ConfigMap> = Api::namespaced(bed.client.clone(), "team");
    eventually("the default service account", Duration::from_secs(30), || async {
        accounts.get_opt("default").await.unwrap()
    })
    .await;
    let ca = eventually("kube-root-ca.crt", Duration::from_secs(30), || async {
        maps.get_opt("kube-root-ca.crt").await.unwrap()
    })
    .await;
    let data: BTreeMap<String, String> = ca.data.unwrap();
    assert!(data["ca.crt"].starts_with("-----BEGIN CERTIFICATE-----"), "{data:?}");

    // Deleted or edited, they come back.
    accounts.delete("default", &DeleteParams::default()).await.unwrap();
    maps.patch("kube-root-ca.crt", &PatchParams::default(), &Patch::Merge(json!({"data": {"ca.crt": "tampered"}})))
        .await
        .unwrap();
    eventually("the service account again", Duration::from_secs(30), || async {
        accounts.get_opt("default").await.unwrap()
    })
    .await;
    eventually("the CA restored", Duration::from_secs(30), || async {
        let map = maps.get("kube-root-ca.crt").await.unwrap();
        (map.data.unwrap()["ca.crt"] == data["ca.crt"]).then_some(())
    })
    .await;
    // The default namespace has them too.
    let defaults: Api<ServiceAccount> = bed.api();
    eventually("default/default", Duration::from_secs(30), || async { defaults.get_opt("default").await.unwrap() })
        .await;
    bed.stop().await;
}
