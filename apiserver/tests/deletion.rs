//! Graceful pod deletion, finalizers, propagation policies, namespace termination.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use serde_json::json;
use support::{Backend, TestServer};

fn pod(name: &str, node: Option<&str>) -> Pod {
    let mut spec = json!({"containers": [{"name": "c", "image": "i:1"}], "terminationGracePeriodSeconds": 20});
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

both_backends!(graceful_pod_deletion, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    // Unbound pods go at once.
    pods.create(&PostParams::default(), &pod("unbound", None)).await.unwrap();
    pods.delete("unbound", &DeleteParams::default()).await.unwrap();
    assert!(pods.get_opt("unbound").await.unwrap().is_none());
    // Bound pods get deletionTimestamp and the grace period from their spec.
    pods.create(&PostParams::default(), &pod("bound", Some("n1"))).await.unwrap();
    let marked = pods.delete("bound", &DeleteParams::default()).await.unwrap().left().expect("object returned");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(20));
    // A shorter grace period shortens it.
    let shorter = pods.delete("bound", &DeleteParams { grace_period_seconds: Some(5), ..Default::default() }).await.unwrap().left().unwrap();
    assert_eq!(shorter.metadata.deletion_grace_period_seconds, Some(5));
    // Zero (the kubelet's confirmation) removes it.
    pods.delete("bound", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.unwrap();
    assert!(pods.get_opt("bound").await.unwrap().is_none());
});

both_backends!(finalizers_hold_deletion, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "f", "finalizers": ["example.com/hold", "example.com/two"]}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    cms.delete("f", &DeleteParams::default()).await.unwrap();
    let held = cms.get("f").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    // No new finalizers on an object being deleted.
    let add = cms.patch("f", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "example.com/two", "example.com/new"]}}))).await;
    assert!(matches!(add, Err(kube::Error::Api(ref s)) if s.code == 422), "{add:?}");
    cms.patch("f", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/two"]}}))).await.unwrap();
    assert!(cms.get_opt("f").await.unwrap().is_some());
    cms.patch("f", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert!(cms.get_opt("f").await.unwrap().is_none(), "removing the last finalizer deletes");

    // Foreground and Orphan add their finalizers (the garbage collector removes them);
    // Background deletes at once.
    let plain: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "fg"}})).unwrap();
    cms.create(&PostParams::default(), &plain).await.unwrap();
    cms.delete("fg", &DeleteParams { propagation_policy: Some(PropagationPolicy::Foreground), ..Default::default() }).await.unwrap();
    let fg = cms.get("fg").await.unwrap();
    assert!(fg.metadata.deletion_timestamp.is_some());
    assert_eq!(fg.metadata.finalizers.unwrap(), ["foregroundDeletion"]);
    let orphan: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "or"}})).unwrap();
    cms.create(&PostParams::default(), &orphan).await.unwrap();
    cms.delete("or", &DeleteParams { propagation_policy: Some(PropagationPolicy::Orphan), ..Default::default() }).await.unwrap();
    let or = cms.get("or").await.unwrap();
    assert!(or.metadata.deletion_timestamp.is_some());
    assert_eq!(or.metadata.finalizers.unwrap(), ["orphan"]);
    // `orphanDependents: true` (the deprecated spelling) means Orphan too.
    let legacy: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "legacy"}})).unwrap();
    cms.create(&PostParams::default(), &legacy).await.unwrap();
    let response = server
        .raw()
        .delete(format!("{}/api/v1/namespaces/default/configmaps/legacy", server.http))
        .json(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "orphanDependents": true}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    assert_eq!(cms.get("legacy").await.unwrap().metadata.finalizers.unwrap(), ["orphan"]);
    let background: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "bg"}})).unwrap();
    cms.create(&PostParams::default(), &background).await.unwrap();
    cms.delete("bg", &DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() }).await.unwrap();
    assert!(cms.get_opt("bg").await.unwrap().is_none());
    // Preconditions.
    let pre: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "pre"}})).unwrap();
    cms.create(&PostParams::default(), &pre).await.unwrap();
    let wrong = DeleteParams { preconditions: Some(kube::api::Preconditions { uid: Some("nope".into()), resource_version: None }), ..Default::default() };
    assert!(matches!(cms.delete("pre", &wrong).await, Err(kube::Error::Api(ref s)) if s.code == 409));
});

both_backends!(namespace_termination, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let namespaces: Api<Namespace> = Api::all(server.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap();
    let created = namespaces.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "doomed");
    for i in 0..3 {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}})).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    // This one holds the namespace in Terminating until its finalizer goes.
    let held: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})).unwrap();
    cms.create(&PostParams::default(), &held).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "doomed");
    pods.create(&PostParams::default(), &pod("p", None)).await.unwrap();
    let terminating = namespaces.delete("doomed", &DeleteParams::default()).await.unwrap().left().unwrap();
    assert_eq!(terminating.status.unwrap().phase.as_deref(), Some("Terminating"));
    let late: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "late"}})).unwrap();
    match cms.create(&PostParams::default(), &late).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403);
            assert!(s.message.contains("because it is being terminated"), "{}", s.message);
        }
        other => panic!("expected 403, got {other:?}"),
    }
    // The clean-up runs in the background: wait for it to reach the held object, then
    // give it another pass (it retries every 500 ms) to show the finalizer holds.
    let marked = tokio::time::timeout(Duration::from_secs(20), async {
        while cms.get("held").await.unwrap().metadata.deletion_timestamp.is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(marked.is_ok(), "the clean-up marks the finalized object for deletion");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(cms.get("held").await.unwrap().metadata.deletion_timestamp.is_some());
    assert!(namespaces.get_opt("doomed").await.unwrap().is_some());
    cms.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    let gone = tokio::time::timeout(Duration::from_secs(20), async {
        while namespaces.get_opt("doomed").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the namespace is removed once empty");
    assert!(cms.list(&Default::default()).await.unwrap().items.is_empty());
});
