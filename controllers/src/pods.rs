//! What the workload controllers read from a pod: whether it counts, is ready, is
//! available, and which pods to delete first.

use std::cmp::Ordering;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

/// The annotation that ranks pods for scale-down (lower is deleted first).
const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// Counts toward replicas: not finished and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// Not finished: active, or on its way out but still running.
pub fn is_active_or_terminating(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed")
}

/// Since when the pod's `Ready` condition has been true.
fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(ready.last_transition_time.as_ref().map(|t| t.0))
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since.as_second() + i64::from(min_ready_seconds) <= now.as_second(),
    }
}

/// Seconds until a ready pod becomes available, if it is ready but not yet available.
pub fn seconds_until_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<i64> {
    match ready_since(pod)? {
        Some(since) if min_ready_seconds > 0 => {
            let left = since.as_second() + i64::from(min_ready_seconds) - now.as_second();
            (left > 0).then_some(left)
        }
        _ => None,
    }
}

fn deletion_cost(pod: &Pod) -> i64 {
    pod.metadata.annotations.as_ref().and_then(|a| a.get(DELETION_COST)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn restarts(pod: &Pod) -> i32 {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    statuses.map(|s| s.iter().map(|c| c.restart_count).max().unwrap_or(0)).unwrap_or(0)
}

/// Scale-down order, as kube-controller-manager ranks pods: unscheduled before
/// scheduled, pending before unknown before running, not ready before ready, lower
/// deletion cost first, ready more recently first, more restarts first, newer first.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    let phase_rank = |p: &Pod| match phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    };
    let newer = |p: &Pod| std::cmp::Reverse(p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
        .then_with(|| {
            // Both ready: the one ready for less time goes first.
            let since = |p: &Pod| std::cmp::Reverse(ready_since(p).flatten());
            since(a).cmp(&since(b))
        })
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| newer(a).cmp(&newer(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name}, "status": status})).unwrap()
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let ready = pod(
            "a",
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        );
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert!(is_available(&ready, 0, at("2026-01-01T00:00:00Z")));
        assert!(!is_available(&ready, 10, at("2026-01-01T00:00:05Z")));
        assert_eq!(seconds_until_available(&ready, 10, at("2026-01-01T00:00:05Z")), Some(5));
        assert!(is_available(&ready, 10, at("2026-01-01T00:00:10Z")));
        assert!(!is_available(&pod("b", json!({"phase": "Pending"})), 0, at("2026-01-01T00:00:00Z")));
    }

    #[test]
    fn pending_and_unready_pods_go_first() {
        let running_ready =
            pod("ready", json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}));
        let running = pod("running", json!({"phase": "Running"}));
        let pending = pod("pending", json!({"phase": "Pending"}));
        let mut pods = [&running_ready, &running, &pending];
        pods.sort_by(|a, b| deletion_order(a, b));
        let names: Vec<_> = pods.iter().map(|p| p.metadata.name.as_deref().unwrap()).collect();
        assert_eq!(names, ["pending", "running", "ready"]);
    }
}
