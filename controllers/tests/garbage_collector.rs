//! The garbage collector against Waggle's API server, in-process on a loopback port with
//! a SQLite store in a temporary directory: background, foreground and orphan deletion,
//! dangling owner references, owners that never existed, references across scopes, and
//! custom resources defined while it runs.

mod support;

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use support::Bed;
use waggle_controllers::Controller;

/// How long an eventual result may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Waits until `check` holds; panics (failing the test) after [`TIMEOUT`].
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(TIMEOUT, what, check).await;
}

async fn eventually_within<F, Fut>(timeout: Duration, what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn exists<K: Clone + DeserializeOwned + std::fmt::Debug>(api: &Api<K>, name: &str) -> bool {
    api.get_opt(name).await.expect("GET").is_some()
}

/// A reference to `owner` (blocking its foreground deletion when `block`).
fn owned_by<K: Resource<DynamicType = ()>>(owner: &K, block: bool) -> Value {
    let mut reference = owner.controller_owner_ref(&()).expect("owner has a name and uid");
    reference.controller = Some(block);
    reference.block_owner_deletion = Some(block);
    serde_json::to_value(reference).expect("serializable")
}

fn reference(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid})
}

async fn create<K>(api: &Api<K>, object: Value) -> K
where
    K: Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("a valid object");
    api.create(&PostParams::default(), &object).await.expect("create")
}

async fn config_map(cluster: &Bed, name: &str, owners: Vec<Value>) -> ConfigMap {
    create(&cluster.api(), json!({"metadata": {"name": name, "ownerReferences": owners}, "data": {"k": "v"}})).await
}

fn delete_with(policy: PropagationPolicy) -> DeleteParams {
    DeleteParams { propagation_policy: Some(policy), ..DeleteParams::default() }
}

/// A Deployment, its ReplicaSet and the ReplicaSet's pod, made by hand (no workload
/// controllers run here). The pod carries `finalizers`.
async fn workload(cluster: &Bed, name: &str, block: bool, finalizers: &[&str]) -> (Deployment, ReplicaSet, Pod) {
    let labels = json!({"app": name});
    let template = json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}});
    let deployment: Deployment = create(
        &cluster.api(),
        json!({
            "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
        }),
    )
    .await;
    let set: ReplicaSet = create(
        &cluster.api(),
        json!({
            "metadata": {
                "name": format!("{name}-1"),
                "labels": labels,
                "ownerReferences": [owned_by(&deployment, block)],
            },
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
        }),
    )
    .await;
    let pod: Pod = create(
        &cluster.api(),
        json!({
            "metadata": {
                "name": format!("{name}-1-a"),
                "labels": labels,
                "ownerReferences": [owned_by(&set, block)],
                "finalizers": finalizers,
            },
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
        }),
    )
    .await;
    (deployment, set, pod)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_deletion_collects_dependents() {
    let cluster = Bed::start(&[Controller::GarbageCollector], false).await;
    let maps: Api<ConfigMap> = cluster.api();
    let owner = config_map(&cluster, "owner", vec![]).await;
    let dependent = config_map(&cluster, "dependent", vec![owned_by(&owner, false)]).await;
    config_map(&cluster, "grand-dependent", vec![owned_by(&dependent, false)]).await;
    config_map(&cluster, "bystander", vec![]).await;
    let (_, _, _) = workload(&cluster, "web", true, &[]).await;

    maps.delete("owner", &DeleteParams::default()).await.expect("delete owner");
    let deployments: Api<Deployment> = cluster.api();
    deployments.delete("web", &delete_with(PropagationPolicy::Background)).await.expect("delete deployment");
    assert!(!exists(&deployments, "web").await, "a background delete removes the owner at once");

    eventually("the dependent and the grand-dependent are collected", || async {
        !exists(&maps, "dependent").await && !exists(&maps, "grand-dependent").await
    })
    .await;
    let sets: Api<ReplicaSet> = cluster.api();
    let pods: Api<Pod> = cluster.api();
    eventually("the ReplicaSet and its pod are collected", || async {
        !exists(&sets, "web-1").await && !exists(&pods, "web-1-a").await
    })
    .await;
    assert!(exists(&maps, "bystander").await, "objects without owners stay");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let cluster = Bed::start(&[Controller::GarbageCollector], false).await;
    let deployments: Api<Deployment> = cluster.api();
    let sets: Api<ReplicaSet> = cluster.api();
    let pods: Api<Pod> = cluster.api();
    // The pod's finalizer holds it (as a kubelet would) until the test lets it go.
    workload(&cluster, "web", true, &["example.com/hold"]).await;

    deployments.delete("web", &delete_with(PropagationPolicy::Foreground)).await.expect("delete deployment");
    let marked = deployments.get("web").await.expect("the deployment waits for its dependents");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.finalizers(), ["foregroundDeletion"]);

    // The collector deletes the ReplicaSet in the foreground (it has a dependent) and
    // the pod; the pod's finalizer keeps it, so both owners wait.
    eventually("the pod is being deleted", || async {
        pods.get("web-1-a").await.expect("the held pod stays").metadata.deletion_timestamp.is_some()
    })
    .await;
    let set = sets.get("web-1").await.expect("the ReplicaSet waits for its pod");
    assert!(set.metadata.deletion_timestamp.is_some());
    assert_eq!(set.finalizers(), ["foregroundDeletion"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let still = deployments.get("web").await.expect("the deployment still waits");
    assert_eq!(still.finalizers(), ["foregroundDeletion"]);

    pods.patch("web-1-a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .expect("releasing the pod");
    eventually("the pod, the ReplicaSet and the deployment are gone", || async {
        !exists(&pods, "web-1-a").await && !exists(&sets, "web-1").await && !exists(&deployments, "web").await
    })
    .await;

    // An owner whose dependents do not block it still takes them along.
    let maps: Api<ConfigMap> = cluster.api();
    let owner = config_map(&cluster, "owner", vec![]).await;
    config_map(&cluster, "loose", vec![owned_by(&owner, false)]).await;
    maps.delete("owner", &delete_with(PropagationPolicy::Foreground)).await.expect("delete owner");
    eventually("the owner and its non-blocking dependent are gone", || async {
        !exists(&maps, "owner").await && !exists(&maps, "loose").await
    })
    .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_breaks_cycles() {
    let cluster = Bed::start(&[Controller::GarbageCollector], false).await;
    let maps: Api<ConfigMap> = cluster.api();
    // Each owns the other, blocking: each foreground deletion would wait for the other.
    let first = config_map(&cluster, "first", vec![]).await;
    let second = config_map(&cluster, "second", vec![owned_by(&first, true)]).await;
    let patch = json!({"metadata": {"ownerReferences": [owned_by(&second, true)]}});
    maps.patch("first", &PatchParams::default(), &Patch::Merge(patch)).await.expect("closing the cycle");

    maps.delete("first", &delete_with(PropagationPolicy::Foreground)).await.expect("delete first");
    eventually("both are gone", || async { !exists(&maps, "first").await && !exists(&maps, "second").await }).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_deletion_keeps_dependents() {
    let cluster = Bed::start(&[Controller::GarbageCollector], false).await;
    let maps: Api<ConfigMap> = cluster.api();
    let owner = config_map(&cluster, "owner", vec![]).await;
    let other = config_map(&cluster, "other", vec![]).await;
    config_map(&cluster, "only-child", vec![owned_by(&owner, true)]).await;
    config_map(&cluster, "shared", vec![owned_by(&owner, false), owned_by(&other, false)]).await;

    maps.delete("owner", &delete_with(PropagationPolicy::Orphan)).await.expect("delete owner");
    eventually("the owner is gone", || async { !exists(&maps, "owner").await }).await;
    let only_child = maps.get("only-child").await.expect("an orphan stays");
    assert!(only_child.owner_references().is_empty(), "{:?}", only_child.owner_references());
    let shared = maps.get("shared").await.expect("an orphan stays");
    let owners: Vec<&str> = shared.owner_references().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(owners, ["other"]);
    // And nothing collects them later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(exists(&maps, "only-child").await);
    assert!(exists(&maps, "shared").await);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dangling_references_of_a_dependent_with_other_owners_are_removed() {
    let cluster = Bed::start(&[Controller::GarbageCollector], false).await;
    let maps: Api<ConfigMap> = cluster.api();
    let first = config_map(&cluster, "first", vec![]).await;
    let second = config_map(&cluster, "second", vec![]).await;
    config_map(&cluster, "dependent", vec![owned_by(&first, false), owned_by(&second, false)]).await;

    maps.delete("first", &DeleteParams::default()).await.expect("delete first owner");
    let second_uid = second.uid().expect("a uid");
    eventually("the reference to the deleted owner is gone", || async {
        let dependent = maps.get("dependent").await.expect("the dependent stays");
        let owners: Vec<&OwnerReference> = dependent.owner_references().iter().collect();
        owners.len() == 1 && owners[0].uid == second_uid
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(exists(&maps, "dependent").await, "the remaining owner keeps it");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_that_never_existed() {
    let cluster = Bed::start(&[Controller::GarbageCollector], false).await;
    let maps: Api<ConfigMap> = cluster.api();
    // A namesake of the owner exists, but with another uid.
    config_map(&cluster, "ghost", vec![]).await;
    let ghost = reference("v1", "ConfigMap", "ghost", "6e1c3d6a-0000-4000-8000-000000000001");
    config_map(&cluster, "haunted", vec![ghost]).await;
    let nobody = reference("v1", "ConfigMap", "nobody", "6e1c3d6a-0000-4000-8000-000000000002");
    config_map(&cluster, "abandoned", vec![nobody]).await;
    // A kind nothing serves is no reason to delete.
    let unknown = reference("example.com/v1", "Widget", "w", "6e1c3d6a-0000-4000-8000-000000000003");
    config_map(&cluster, "mysterious", vec![unknown]).await;

    eventually("dependents of owners that never existed are collected", || async {
        !exists(&maps, "haunted").await && !exists(&maps, "abandoned").await
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(exists(&maps, "ghost").await, "the namesake stays");
    assert!(exists(&maps, "mysterious").await, "an owner of an unknown kind keeps its dependent");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_references_do_not_cross_scopes() {
    let cluster = Bed::start(&[Controller::GarbageCollector], false).await;
    let maps: Api<ConfigMap> = cluster.api();
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    create(&namespaces, json!({"metadata": {"name": "other"}})).await;
    let elsewhere: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "other");
    // A namespaced owner is looked for in its dependent's namespace: the owner of this
    // one lives in `default`, so in `other` it is absent (upstream collects it too).
    let owner = config_map(&cluster, "owner", vec![]).await;
    create::<ConfigMap>(
        &elsewhere,
        json!({"metadata": {"name": "stranger", "ownerReferences": [owned_by(&owner, false)]}}),
    )
    .await;
    // A cluster-scoped object cannot have a namespaced owner: such a reference is left
    // alone (with a warning event), never a reason to delete.
    let roles: Api<ClusterRole> = Api::all(cluster.client.clone());
    let invalid = reference("v1", "ConfigMap", "owner", "6e1c3d6a-0000-4000-8000-000000000004");
    create::<ClusterRole>(&roles, json!({"metadata": {"name": "gc-test-role", "ownerReferences": [invalid]}})).await;

    eventually("the dependent in another namespace is collected", || async { !exists(&elsewhere, "stranger").await })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(exists(&maps, "owner").await, "the owner in default is untouched");
    assert!(exists(&roles, "gc-test-role").await, "the cluster-scoped dependent stays");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_defined_later_are_collected() {
    let cluster = Bed::start(&[Controller::GarbageCollector], false).await;
    let maps: Api<ConfigMap> = cluster.api();
    let definitions: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    create::<CustomResourceDefinition>(
        &definitions,
        json!({
            "metadata": {"name": "widgets.gc.example.com"},
            "spec": {
                "group": "gc.example.com",
                "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                }],
            },
        }),
    )
    .await;
    let established = tokio::time::timeout(
        TIMEOUT,
        kube::runtime::wait::await_condition(
            definitions.clone(),
            "widgets.gc.example.com",
            kube::runtime::wait::conditions::is_crd_established(),
        ),
    )
    .await;
    assert!(matches!(established, Ok(Ok(_))), "the definition is established: {established:?}");
    let resource = ApiResource {
        group: "gc.example.com".into(),
        version: "v1".into(),
        api_version: "gc.example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let widgets: Api<DynamicObject> = Api::namespaced_with(cluster.client.clone(), "default", &resource);
    let owner = config_map(&cluster, "owner", vec![]).await;
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gc.example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "ownerReferences": [owned_by(&owner, false)]},
        "spec": {"size": 1},
    }))
    .expect("a widget");
    let widget = widgets.create(&PostParams::default(), &widget).await.expect("create widget");
    // A ConfigMap owned by the widget: its owner's kind may not be known to the
    // collector yet, which must not get it deleted.
    let widget_uid = widget.uid().expect("a uid");
    config_map(&cluster, "part", vec![reference("gc.example.com/v1", "Widget", "w", &widget_uid)]).await;

    maps.delete("owner", &DeleteParams::default()).await.expect("delete owner");
    // Discovery runs again every 30 seconds; the widget is collected once it is watched.
    eventually_within(Duration::from_secs(50), "the widget and its part are collected", || async {
        !exists(&widgets, "w").await && !exists(&maps, "part").await
    })
    .await;
    cluster.stop().await;
}
