//! The disruption controller: keeps each PodDisruptionBudget's status current (how
//! many selected pods are healthy, how many it wants, how many may be disrupted now),
//! which the API server's eviction subresource spends and `kubectl drain` obeys.
//!
//! Evictions the API server admitted are listed in `status.disruptedPods`; such a pod
//! does not count as healthy until it is gone, or two minutes have passed without it
//! going (the eviction then failed to delete it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ListParams, PostParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use crate::Context;
use crate::{Error, owners, pods};

const NAME: &str = "disruption-controller";
/// How long an admitted eviction may take to delete its pod.
const DELETION_TIMEOUT: SignedDuration = SignedDuration::from_mins(2);
/// Budgets are recomputed this often anyway (their pods' controllers may be resized).
const RESYNC: Duration = Duration::from_secs(30);

/// Runs the disruption controller until its watches end.
pub async fn run(client: Client) -> Result<(), Error> {
    let controller = Controller::new(Api::<PodDisruptionBudget>::all(client.clone()), watcher::Config::default());
    let budgets = controller.store();
    let context = Context::new(client.clone(), NAME);
    let results = controller
        .watches(Api::<Pod>::all(client), watcher::Config::default(), move |pod| covering(&budgets, &pod))
        .run(reconcile, |_, _, _| Action::requeue(Duration::from_secs(1)), context);
    crate::drive(results, "disruption").await;
    Err(Error::Stopped { controller: "disruption" })
}

/// A budget's pod selector: none selects nothing, an empty one every pod.
fn selector(budget: &PodDisruptionBudget) -> Option<Selector> {
    let selector = budget.spec.as_ref()?.selector.clone()?;
    Selector::try_from(selector).ok()
}

fn covering(budgets: &Store<PodDisruptionBudget>, pod: &Pod) -> Vec<ObjectRef<PodDisruptionBudget>> {
    let namespace = pod.namespace();
    budgets
        .state()
        .iter()
        .filter(|b| b.namespace() == namespace)
        .filter(|b| selector(b).is_some_and(|s| s.matches(pod.labels())))
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// A percentage of `total`, rounded up (as both fences round for budgets).
fn resolve(value: &IntOrString, total: i32) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(text) => {
            let percent: i64 =
                text.strip_suffix('%').and_then(|p| p.parse().ok()).ok_or_else(|| format!("invalid value {text:?}"))?;
            Ok(i32::try_from((percent * i64::from(total) + 99) / 100).unwrap_or(i32::MAX))
        }
    }
}

/// The replicas the pods' controllers want, summed once per controller: a
/// ReplicaSet of a Deployment counts as the Deployment.
async fn expected_by_controllers(client: &Client, namespace: &str, pods: &[Pod]) -> Result<i32, String> {
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for pod in pods {
        let Some(owner) = owners::controller_of(&pod.metadata) else {
            return Err(format!("found no controllers for pod {:?}", pod.name_any()));
        };
        let scale = match (owner.api_version.as_str(), owner.kind.as_str()) {
            ("apps/v1", "ReplicaSet") => {
                let rs = Api::<ReplicaSet>::namespaced(client.clone(), namespace).get(&owner.name).await;
                let rs = rs.map_err(|e| e.to_string())?;
                match owners::controller_of(&rs.metadata).filter(|o| o.kind == "Deployment") {
                    Some(deployment) => {
                        let api = Api::<Deployment>::namespaced(client.clone(), namespace);
                        let d = api.get(&deployment.name).await.map_err(|e| e.to_string())?;
                        (d.uid(), d.spec.and_then(|s| s.replicas).unwrap_or(1))
                    }
                    None => (rs.uid(), rs.spec.and_then(|s| s.replicas).unwrap_or(1)),
                }
            }
            ("apps/v1", "StatefulSet") => {
                let api = Api::<StatefulSet>::namespaced(client.clone(), namespace);
                let set = api.get(&owner.name).await.map_err(|e| e.to_string())?;
                (set.uid(), set.spec.and_then(|s| s.replicas).unwrap_or(1))
            }
            ("v1", "ReplicationController") => {
                let api = Api::<ReplicationController>::namespaced(client.clone(), namespace);
                let rc = api.get(&owner.name).await.map_err(|e| e.to_string())?;
                (rc.uid(), rc.spec.and_then(|s| s.replicas).unwrap_or(1))
            }
            _ => return Err(format!("found no controllers for pod {:?}", pod.name_any())),
        };
        if seen.insert(scale.0) {
            total += scale.1;
        }
    }
    Ok(total)
}

/// `(expectedPods, desiredHealthy)` of a budget over `pods`.
async fn wanted(client: &Client, budget: &PodDisruptionBudget, pods: &[Pod]) -> Result<(i32, i32), String> {
    let spec = budget.spec.clone().unwrap_or_default();
    let namespace = budget.namespace().unwrap_or_default();
    let count = i32::try_from(pods.len()).unwrap_or(i32::MAX);
    match (&spec.min_available, &spec.max_unavailable) {
        (_, Some(max)) => {
            let expected = expected_by_controllers(client, &namespace, pods).await?;
            Ok((expected, (expected - resolve(max, expected)?).max(0)))
        }
        (Some(IntOrString::Int(min)), None) => Ok((count, *min)),
        (Some(min), None) => {
            let expected = expected_by_controllers(client, &namespace, pods).await?;
            Ok((expected, resolve(min, expected)?))
        }
        (None, None) => Ok((count, 0)),
    }
}

async fn reconcile(budget: Arc<PodDisruptionBudget>, context: Arc<Context>) -> Result<Action, Error> {
    let now = Timestamp::now();
    let namespace = budget.namespace().unwrap_or_default();
    let api = Api::<Pod>::namespaced(context.client.clone(), &namespace);
    let pods: Vec<Pod> = match selector(&budget) {
        Some(selector) => api.list(&ListParams::default().labels(&selector.to_string())).await?.items,
        None => Vec::new(),
    };
    let old = budget.status.clone().unwrap_or_default();

    // Admitted evictions whose pod is still there, not yet past their deadline.
    let live: BTreeMap<String, &Pod> = pods.iter().map(|p| (p.name_any(), p)).collect();
    let mut disrupted = BTreeMap::new();
    let mut next_expiry: Option<i64> = None;
    for (name, at) in old.disrupted_pods.clone().unwrap_or_default() {
        let pending = live.get(&name).is_some_and(|p| p.metadata.deletion_timestamp.is_none());
        let expires = at.0 + DELETION_TIMEOUT;
        if pending && expires > now {
            let left = expires.duration_since(now).as_secs();
            next_expiry = Some(next_expiry.map_or(left, |n| n.min(left)));
            disrupted.insert(name, at);
        }
    }
    let healthy = pods
        .iter()
        .filter(|p| pods::is_active(p) && pods::is_ready(p) && !disrupted.contains_key(&p.name_any()))
        .count();
    let healthy = i32::try_from(healthy).unwrap_or(i32::MAX);

    let (expected, desired, allowed, condition) = match wanted(&context.client, &budget, &pods).await {
        Ok((expected, desired)) => {
            let allowed = (healthy - desired).max(0);
            let (status, reason) = if allowed > 0 { ("True", "SufficientPods") } else { ("False", "InsufficientPods") };
            (expected, desired, allowed, (status, reason, String::new()))
        }
        Err(message) => {
            let reference = budget.object_ref(&());
            context.events.warning(&reference, "CalculateExpectedPodCountFailed", message.clone()).await;
            (0, 0, 0, ("False", "SyncFailed", message))
        }
    };
    let previous = old.conditions.iter().flatten().find(|c| c.type_ == "DisruptionAllowed");
    let since = previous.filter(|c| c.status == condition.0).map(|c| c.last_transition_time.clone());
    let status = PodDisruptionBudgetStatus {
        current_healthy: healthy,
        desired_healthy: desired,
        expected_pods: expected,
        disruptions_allowed: allowed,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: budget.metadata.generation,
        conditions: Some(vec![Condition {
            type_: "DisruptionAllowed".into(),
            status: condition.0.into(),
            reason: condition.1.into(),
            message: condition.2,
            observed_generation: budget.metadata.generation,
            last_transition_time: since.unwrap_or(Time(now)),
        }]),
    };
    if budget.status.as_ref() != Some(&status) {
        let mut next = (*budget).clone();
        next.status = Some(status);
        let api = Api::<PodDisruptionBudget>::namespaced(context.client.clone(), &namespace);
        // A conflict (an eviction spent a disruption meanwhile) retries with the new state.
        api.replace_status(&budget.name_any(), &PostParams::default(), &next).await?;
    }
    let wait = next_expiry.map_or(RESYNC, |s| Duration::from_secs(s.unsigned_abs() + 1).min(RESYNC));
    Ok(Action::requeue(wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_up() {
        assert_eq!(resolve(&IntOrString::String("50%".into()), 3), Ok(2));
        assert_eq!(resolve(&IntOrString::String("10%".into()), 10), Ok(1));
        assert_eq!(resolve(&IntOrString::Int(2), 10), Ok(2));
        assert!(resolve(&IntOrString::String("half".into()), 10).is_err());
    }
}
