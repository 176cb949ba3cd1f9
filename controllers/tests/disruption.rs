//! Disruption budgets end to end: the disruption controller keeps a budget's status
//! from its pods, and the API server's eviction subresource spends it: one eviction
//! fits, the next is refused with 429 until a replacement pod is ready.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::{Bed, eventually};
use waggle_controllers::Controller;

const WITHIN: Duration = Duration::from_secs(30);

/// `(currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed, condition reason)`
async fn budget_view(budgets: &Api<PodDisruptionBudget>) -> Option<(i32, i32, i32, i32, String)> {
    let budget = budgets.get("web").await.unwrap();
    let status = budget.status?;
    if status.observed_generation != budget.metadata.generation {
        return None;
    }
    let reason = status.conditions.unwrap_or_default().first().map(|c| c.reason.clone()).unwrap_or_default();
    Some((status.current_healthy, status.desired_healthy, status.expected_pods, status.disruptions_allowed, reason))
}

/// What a kubelet would report once the pods `app=web` started: running and ready.
/// (Done by hand, so that a replacement pod is ready only when the test says.)
async fn start_pods(pods: &Api<Pod>, count: usize) {
    let listed = eventually("the pods", WITHIN, || async {
        let all = pods.list(&ListParams::default().labels("app=web")).await.unwrap().items;
        (all.len() >= count).then_some(all)
    })
    .await;
    let ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
    for pod in listed {
        pods.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&ready)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_spend_the_budget_the_controller_keeps() {
    eprintln!("start {:?}", std::time::SystemTime::now());
    let bed = Bed::start(&[Controller::ReplicaSet, Controller::Disruption], false).await;
    let sets: Api<ReplicaSet> = bed.api();
    let pods: Api<Pod> = bed.api();
    let budgets: Api<PodDisruptionBudget> = bed.api();
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    }))
    .unwrap();
    sets.create(&PostParams::default(), &rs).await.unwrap();
    let budget: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
    }))
    .unwrap();
    budgets.create(&PostParams::default(), &budget).await.unwrap();
    start_pods(&pods, 3).await;
    let settled = (3, 2, 3, 1, "SufficientPods".to_owned());
    eventually("the budget's status", WITHIN, || async { budget_view(&budgets).await.filter(|v| v == &settled) }).await;

    // One eviction fits; the next would leave fewer than two healthy pods.
    let names: Vec<String> =
        pods.list(&ListParams::default().labels("app=web")).await.unwrap().items.iter().map(|p| p.name_any()).collect();
    pods.evict(&names[0], &EvictParams::default()).await.unwrap();
    let refused = bed.api_without_retries::<Pod>().evict(&names[1], &EvictParams::default()).await.unwrap_err();
    let kube::Error::Api(status) = refused else { panic!("not an API error: {refused}") };
    assert_eq!((status.code, status.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(status.message, "Cannot evict pod as it would violate the pod's disruption budget.");
    let cause = status.details.unwrap().causes[0].clone();
    assert_eq!(cause.reason, "DisruptionBudget");
    // Healthy pods: 3 until the controller sees the evicted pod gone, then 2.
    let counted = cause.message.strip_prefix("The disruption budget web needs 2 healthy pods and has ");
    assert!(matches!(counted, Some("3 currently" | "2 currently")), "{}", cause.message);

    // The ReplicaSet replaces the evicted pod; once it is ready the budget allows one again.
    start_pods(&pods, 3).await;
    eventually("the budget to recover", WITHIN, || async { budget_view(&budgets).await.filter(|v| v == &settled) }).await;
    pods.evict(&names[1], &EvictParams::default()).await.unwrap();
    start_pods(&pods, 3).await;

    // maxUnavailable counts from what the pods' controller wants.
    let patch = json!({"spec": {"minAvailable": null, "maxUnavailable": "34%"}});
    budgets.patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let by_scale = (3, 1, 3, 2, "SufficientPods".to_owned());
    eventually("maxUnavailable", WITHIN, || async { budget_view(&budgets).await.filter(|v| v == &by_scale) }).await;

    // A pod no controller owns (outside the ReplicaSet's selector, so not adopted)
    // leaves a percentage budget unable to count: nothing may go.
    let stray: Pod = serde_json::from_value(json!({
        "metadata": {"name": "stray", "labels": {"stray": "yes"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }))
    .unwrap();
    let patch = json!({"spec": {"selector": {"matchLabels": {"app": null, "stray": "yes"}}}});
    budgets.patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    pods.create(&PostParams::default(), &stray).await.unwrap();
    eventually("the sync failure", WITHIN, || async {
        budget_view(&budgets).await.filter(|v| v.3 == 0 && v.4 == "SyncFailed")
    })
    .await;
    bed.stop().await;
}
