//! The ReplicaSet controller: keeps `spec.replicas` active pods from the template,
//! adopts matching orphans, releases pods that stopped matching, and reports
//! replicas, readiness and availability in the status.
//!
//! Each reconcile lists the namespace's pods from the API server rather than a cache,
//! so pods it just created are always seen and never created twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::Context;
use crate::events::Events;
use crate::owners::{self, Claim};
use crate::{Error, pods};

const NAME: &str = "replicaset-controller";
/// At most this many pods are created or deleted per reconcile (upstream's burst).
const BURST: usize = 500;

/// Runs the ReplicaSet controller until its watches end.
pub async fn run(client: Client) -> Result<(), Error> {
    let controller = Controller::new(Api::<ReplicaSet>::all(client.clone()), watcher::Config::default());
    let sets = controller.store();
    let context = Context::new(client.clone(), NAME);
    let results = controller
        .watches(Api::<Pod>::all(client), watcher::Config::default(), move |pod| {
            owners::interested(&sets, &pod, |rs: &ReplicaSet| rs.spec.as_ref().map(|s| &s.selector))
        })
        .run(reconcile, retry_later, context);
    crate::drive(results, "replicaset").await;
    Err(Error::Stopped { controller: "replicaset" })
}

fn retry_later(_: Arc<ReplicaSet>, _: &Error, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(2))
}

async fn reconcile(set: Arc<ReplicaSet>, context: Arc<Context>) -> Result<Action, Error> {
    let namespace = set.namespace().unwrap_or_default();
    let spec = set.spec.clone().unwrap_or_default();
    let selector = owners::selector(set.as_ref(), &spec.selector)?;
    let uid = set.uid().unwrap_or_default();
    let deleting = set.metadata.deletion_timestamp.is_some();
    let api = Api::<Pod>::namespaced(context.client.clone(), &namespace);

    let mut mine = Vec::new();
    for pod in api.list(&ListParams::default()).await?.items {
        match owners::claim(&uid, deleting, &selector, &pod.metadata) {
            Claim::Owned => mine.push(pod),
            Claim::Adopt => {
                let owner = set.controller_owner_ref(&()).expect("a stored ReplicaSet has a name and uid");
                let patch = owners::adoption_patch(&pod.metadata, owner);
                if let Some(adopted) = patch_pod(&api, &pod.name_any(), &patch).await? {
                    mine.push(adopted);
                }
            }
            Claim::Release => {
                patch_pod(&api, &pod.name_any(), &owners::release_patch(&pod.metadata, &uid)).await?;
            }
            Claim::Ignore => {}
        }
    }
    let mut active: Vec<Pod> = mine.into_iter().filter(pods::is_active).collect();

    let mut failure = None;
    if !deleting {
        let template = spec.template.as_ref().ok_or_else(|| Error::Invalid {
            kind: "ReplicaSet",
            namespace: namespace.clone(),
            name: set.name_any(),
            reason: "spec.template is required".into(),
        })?;
        let want = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
        failure = scale(&set, template, want, &mut active, &api, &context.events).await;
    }
    let now = Timestamp::now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    write_status(&set, &active, failure, min_ready, now, &context.client).await?;

    // A pod that is ready but not yet available for minReadySeconds needs a second look.
    let wait = active.iter().filter_map(|p| pods::seconds_until_available(p, min_ready, now)).min();
    Ok(match wait {
        Some(seconds) => Action::requeue(Duration::from_secs(seconds.unsigned_abs() + 1)),
        None => Action::requeue(Duration::from_secs(300)),
    })
}

/// A merge patch of a pod; `None` when the pod is gone or changed meanwhile.
async fn patch_pod(api: &Api<Pod>, name: &str, patch: &Value) -> Result<Option<Pod>, Error> {
    match api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(pod) => Ok(Some(pod)),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// What a failed create or delete says, for the `ReplicaFailure` condition.
struct Failure {
    reason: &'static str,
    message: String,
}

/// Creates or deletes pods so that `want` are active. Creates go in batches of
/// 1, 2, 4, ... and stop at the first failure (a quota refusal fails them all alike).
async fn scale(
    set: &ReplicaSet,
    template: &PodTemplateSpec,
    want: usize,
    active: &mut Vec<Pod>,
    api: &Api<Pod>,
    events: &Events,
) -> Option<Failure> {
    let reference = set.object_ref(&());
    if active.len() < want {
        let mut missing = (want - active.len()).min(BURST);
        let pod = pod_from_template(set, template);
        let params = PostParams::default();
        let mut batch = 1;
        while missing > 0 {
            let n = batch.min(missing);
            let results = join_all((0..n).map(|_| api.create(&params, &pod))).await;
            let mut failed = None;
            for result in results {
                match result {
                    Ok(created) => {
                        events
                            .normal(&reference, "SuccessfulCreate", format!("Created pod: {}", created.name_any()))
                            .await;
                        active.push(created);
                    }
                    Err(error) => failed = Some(error),
                }
            }
            if let Some(error) = failed {
                let message = match error {
                    kube::Error::Api(status) => status.message,
                    other => other.to_string(),
                };
                events.warning(&reference, "FailedCreate", format!("Error creating: {message}")).await;
                return Some(Failure { reason: "FailedCreate", message });
            }
            missing -= n;
            batch *= 2;
        }
    } else if active.len() > want {
        let excess = (active.len() - want).min(BURST);
        active.sort_by(pods::deletion_order);
        let doomed: Vec<Pod> = active.drain(..excess).collect();
        let params = DeleteParams::default();
        let names: Vec<String> = doomed.iter().map(|p| p.name_any()).collect();
        let results = join_all(names.iter().map(|name| api.delete(name, &params))).await;
        for (pod, result) in doomed.iter().zip(results) {
            match result {
                Ok(_) => {
                    events.normal(&reference, "SuccessfulDelete", format!("Deleted pod: {}", pod.name_any())).await;
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => {
                    let message = error.to_string();
                    events.warning(&reference, "FailedDelete", format!("Error deleting: {message}")).await;
                    return Some(Failure { reason: "FailedDelete", message });
                }
            }
        }
    }
    None
}

/// A new pod of `owner`: the template's labels, annotations and spec, a generated
/// name, and `owner` as its controller.
pub(crate) fn pod_from_template<K>(owner: &K, template: &PodTemplateSpec) -> Pod
where
    K: Resource<DynamicType = ()>,
{
    let meta = template.metadata.clone().unwrap_or_default();
    let reference = owner.controller_owner_ref(&()).expect("a stored workload has a name and uid");
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", owner.meta().name.clone().unwrap_or_default())),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![reference]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

async fn write_status(
    set: &ReplicaSet,
    active: &[Pod],
    failure: Option<Failure>,
    min_ready: i32,
    now: Timestamp,
    client: &Client,
) -> Result<(), Error> {
    let template_labels: BTreeMap<String, String> = set
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled =
        active.iter().filter(|p| template_labels.iter().all(|(k, v)| p.labels().get(k) == Some(v))).count();
    let ready = active.iter().filter(|p| pods::is_ready(p)).count();
    let available = active.iter().filter(|p| pods::is_available(p, min_ready, now)).count();

    let old = set.status.clone().unwrap_or_default();
    let mut conditions: Vec<Value> = old
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.type_ != "ReplicaFailure")
        .map(|c| serde_json::to_value(c).unwrap_or_default())
        .collect();
    if let Some(failure) = &failure {
        let previous = old.conditions.iter().flatten().find(|c| c.type_ == "ReplicaFailure");
        let since = previous.and_then(|c| c.last_transition_time.clone()).map(|t| t.0).unwrap_or(now);
        conditions.push(json!({
            "type": "ReplicaFailure",
            "status": "True",
            "reason": failure.reason,
            "message": failure.message,
            "lastTransitionTime": since.to_string(),
        }));
    }
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let status = json!({
        "replicas": count(active.len()),
        "fullyLabeledReplicas": count(fully_labeled),
        "readyReplicas": count(ready),
        "availableReplicas": count(available),
        "observedGeneration": set.metadata.generation,
        "conditions": conditions,
    });
    let unchanged = old.replicas == count(active.len())
        && old.fully_labeled_replicas.unwrap_or(0) == count(fully_labeled)
        && old.ready_replicas.unwrap_or(0) == count(ready)
        && old.available_replicas.unwrap_or(0) == count(available)
        && old.observed_generation == set.metadata.generation
        && serde_json::to_value(old.conditions.clone().unwrap_or_default()).ok() == Some(json!(conditions));
    if unchanged {
        return Ok(());
    }
    let api = Api::<ReplicaSet>::namespaced(client.clone(), &set.namespace().unwrap_or_default());
    match api.patch_status(&set.name_any(), &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error.into()),
    }
}
