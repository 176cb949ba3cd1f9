//! What an eviction must pass: the pod's PodDisruptionBudget. An eviction that would
//! take the budget's healthy pods below what it wants is refused with 429, as
//! kube-apiserver does (`kubectl drain` retries those); one that fits takes one
//! disruption from the budget's status and records the pod as disrupted, so that
//! concurrent evictions cannot spend the same disruption twice. The disruption
//! controller (`waggle-controllers`) recomputes the budget from the pods.

use serde_json::{Value, json};
use waggle_apimachinery::registry::{self, Resource};

use super::write::{Mode, Update};
use crate::keys;
use crate::objects;
use crate::selectors::label::Selector;
use crate::state::ApiState;
use crate::status::ApiError;

/// How many evictions the controller may be behind on before the server refuses more.
const MAX_DISRUPTED_PODS: usize = 2000;
const REFUSED: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn budgets() -> &'static Resource {
    registry::find("policy", "v1", "poddisruptionbudgets").expect("PodDisruptionBudgets are served")
}

fn pods() -> &'static Resource {
    registry::find("", "v1", "pods").expect("pods are served")
}

fn refused(cause: String) -> ApiError {
    ApiError::TooManyRequests { message: REFUSED.into(), causes: vec![("DisruptionBudget", cause)] }
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn is_ready(pod: &Value) -> bool {
    let conditions = pod.pointer("/status/conditions").and_then(Value::as_array);
    conditions.is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Checks (and, unless `dry_run`, spends) the disruption budget covering pod
/// `namespace/name` before it is evicted.
pub async fn admit_eviction(state: &ApiState, namespace: &str, name: &str, dry_run: bool) -> Result<(), ApiError> {
    let key = keys::object_key(pods(), Some(namespace), name);
    let Some(kv) = state.store.get(&key).await.map_err(ApiError::from_store)? else {
        // The delete that follows says so.
        return Ok(());
    };
    let pod: Value = serde_json::from_slice(&kv.value).map_err(|e| ApiError::internal(e.to_string()))?;
    // A pod that is done, not started or already going counts against no budget.
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending");
    if matches!(phase, "Succeeded" | "Failed" | "Pending") || objects::is_deleting(&pod) {
        return Ok(());
    }
    let labels = pod.pointer("/metadata/labels");
    let prefix = keys::collection_prefix(budgets(), Some(namespace));
    let listed = waggle_store::list_prefix(state.store.as_ref(), &prefix).await.map_err(ApiError::from_store)?;
    let mut covering = Vec::new();
    for kv in listed.items {
        let budget: Value = serde_json::from_slice(&kv.value).map_err(|e| ApiError::internal(e.to_string()))?;
        // A budget without a selector selects nothing; an empty one selects every pod.
        let Some(selector) = budget.pointer("/spec/selector").filter(|s| !s.is_null()) else { continue };
        if Selector::from_object(selector).is_ok_and(|s| s.matches(labels)) {
            covering.push(budget);
        }
    }
    let budget = match covering.as_slice() {
        [] => return Ok(()),
        [one] => one,
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
    };
    let budget_name = objects::meta_str(budget, "name").unwrap_or_default().to_owned();
    if int(budget, "/status/observedGeneration") < int(budget, "/metadata/generation") {
        return Err(refused(format!("The disruption budget {budget_name} is still being processed by the server.")));
    }
    let (current, desired) = (int(budget, "/status/currentHealthy"), int(budget, "/status/desiredHealthy"));
    if !is_ready(&pod) {
        let policy = budget.pointer("/spec/unhealthyPodEvictionPolicy").and_then(Value::as_str);
        // An unready pod does not make the budget worse while it is met.
        if policy == Some("AlwaysAllow") || (current >= desired && desired > 0) {
            return Ok(());
        }
    }
    let update = Update {
        state,
        resource: budgets(),
        namespace: Some(namespace),
        name: &budget_name,
        precondition: None,
        mode: Mode::Raw,
        dry_run,
    };
    let pod_name = name.to_owned();
    update
        .run(|stored| {
            let mut next = stored.clone();
            let allowed = int(stored, "/status/disruptionsAllowed");
            if allowed < 0 {
                return Err(ApiError::Forbidden {
                    message: "pdb disruptions allowed is negative".into(),
                    kind: "poddisruptionbudgets.policy".into(),
                    name: budget_name.clone(),
                });
            }
            let disrupted = stored.pointer("/status/disruptedPods").and_then(Value::as_object);
            if disrupted.is_some_and(|d| d.len() > MAX_DISRUPTED_PODS) {
                return Err(ApiError::Forbidden {
                    message: "DisruptedPods map too big - too many evictions not confirmed by PDB controller".into(),
                    kind: "poddisruptionbudgets.policy".into(),
                    name: budget_name.clone(),
                });
            }
            if allowed == 0 {
                let (current, desired) = (int(stored, "/status/currentHealthy"), int(stored, "/status/desiredHealthy"));
                return Err(refused(format!(
                    "The disruption budget {budget_name} needs {desired} healthy pods and has {current} currently"
                )));
            }
            let status = next.as_object_mut().expect("a stored object").entry("status").or_insert_with(|| json!({}));
            status["disruptionsAllowed"] = json!(allowed - 1);
            let map = status.as_object_mut().expect("status is an object");
            let disrupted = map.entry("disruptedPods").or_insert_with(|| json!({}));
            if !disrupted.is_object() {
                *disrupted = json!({});
            }
            disrupted[&pod_name] = json!(objects::now());
            Ok(next)
        })
        .await
        .map(|_| ())
}
