//! Job tracking with finalizers, as upstream does it: every pod a Job creates carries
//! [`FINALIZER`], so it cannot vanish before its outcome is counted. A pod that ended
//! is first recorded by uid in `status.uncountedTerminatedPods`, then its finalizer
//! is removed, then it moves into `succeeded` or `failed`; a crash between any two
//! steps loses or double-counts nothing.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::batch::v1::UncountedTerminatedPods;
use k8s_openapi::api::core::v1::Pod;

/// The finalizer that keeps a Job's pod until its outcome is counted.
pub const FINALIZER: &str = "batch.kubernetes.io/job-tracking";

/// How a pod's run ended, as the Job counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
}

pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

pub fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata.finalizers.iter().flatten().any(|f| f == FINALIZER)
}

/// Running or waiting to: neither ended nor being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// Being deleted but not ended yet (`status.terminating`).
pub fn is_terminating(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_some()
}

/// How the pod ended, if it has. With `podReplacementPolicy: TerminatingOrFailed`
/// (the default) a pod deleted before it succeeded counts as failed, so that pods
/// removed without ever reaching `Failed` are not lost; with `Failed` only the phase
/// counts.
pub fn outcome(pod: &Pod, only_failed_phase: bool) -> Option<Outcome> {
    match phase(pod) {
        "Succeeded" => Some(Outcome::Succeeded),
        "Failed" => Some(Outcome::Failed),
        _ if !only_failed_phase && pod.metadata.deletion_timestamp.is_some() => Some(Outcome::Failed),
        _ => None,
    }
}

/// The uids of pods that ended and are not counted yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uncounted {
    pub succeeded: BTreeSet<String>,
    pub failed: BTreeSet<String>,
}

impl Uncounted {
    pub fn from_status(status: Option<&UncountedTerminatedPods>) -> Uncounted {
        let set = |v: Option<&Vec<String>>| v.into_iter().flatten().cloned().collect();
        Uncounted {
            succeeded: set(status.and_then(|s| s.succeeded.as_ref())),
            failed: set(status.and_then(|s| s.failed.as_ref())),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.succeeded.is_empty() && self.failed.is_empty()
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.succeeded.contains(uid) || self.failed.contains(uid)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"succeeded": self.succeeded, "failed": self.failed})
    }
}

/// Pods that ended while carrying the finalizer and are not recorded yet, with how
/// they ended. Pods without the finalizer were counted already (or never tracked).
pub fn newly_ended<'a>(pods: &'a [Pod], uncounted: &Uncounted, only_failed_phase: bool) -> Vec<(&'a Pod, Outcome)> {
    pods.iter()
        .filter(|p| has_finalizer(p) && !uncounted.contains(uid(p)))
        .filter_map(|p| outcome(p, only_failed_phase).map(|o| (p, o)))
        .collect()
}

/// What moving the recorded pods into the counts gives: how many succeeded and
/// failed can be counted now (their finalizer is gone, or the pod is), and the uids
/// still waiting. `released` holds the uids whose finalizer was just removed.
pub fn settle(uncounted: &Uncounted, pods: &[Pod], released: &BTreeSet<String>) -> (i32, i32, Uncounted) {
    let by_uid: HashMap<&str, &Pod> = pods.iter().map(|p| (uid(p), p)).collect();
    let done = |uid: &String| released.contains(uid) || by_uid.get(uid.as_str()).is_none_or(|p| !has_finalizer(p));
    let mut left = Uncounted::default();
    let (mut succeeded, mut failed) = (0, 0);
    for uid in &uncounted.succeeded {
        if done(uid) {
            succeeded += 1;
        } else {
            left.succeeded.insert(uid.clone());
        }
    }
    for uid in &uncounted.failed {
        if done(uid) {
            failed += 1;
        } else {
            left.failed.insert(uid.clone());
        }
    }
    (succeeded, failed, left)
}

/// The merge patch that takes the tracking finalizer off a pod, keeping its others,
/// guarded by its resourceVersion so a concurrent change is not overwritten.
pub fn release_patch(pod: &Pod) -> serde_json::Value {
    let rest: Vec<&String> = pod.metadata.finalizers.iter().flatten().filter(|f| *f != FINALIZER).collect();
    serde_json::json!({"metadata": {"finalizers": rest, "resourceVersion": pod.metadata.resource_version}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, phase: &str, finalizer: bool, deleting: bool) -> Pod {
        let finalizers: Vec<&str> = if finalizer { vec![FINALIZER, "other"] } else { vec!["other"] };
        let deletion = deleting.then_some("2026-01-01T00:00:00Z");
        serde_json::from_value(json!({
            "metadata": {"name": uid, "uid": uid, "finalizers": finalizers, "deletionTimestamp": deletion},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn outcomes_follow_phase_and_replacement_policy() {
        assert_eq!(outcome(&pod("a", "Succeeded", true, false), false), Some(Outcome::Succeeded));
        assert_eq!(outcome(&pod("a", "Failed", true, false), false), Some(Outcome::Failed));
        assert_eq!(outcome(&pod("a", "Running", true, false), false), None);
        assert_eq!(outcome(&pod("a", "Running", true, true), false), Some(Outcome::Failed));
        assert_eq!(outcome(&pod("a", "Running", true, true), true), None);
        assert_eq!(outcome(&pod("a", "Succeeded", true, true), false), Some(Outcome::Succeeded));
        assert!(is_terminating(&pod("a", "Running", true, true)));
        assert!(!is_active(&pod("a", "Running", true, true)));
        assert!(is_active(&pod("a", "Pending", true, false)));
    }

    #[test]
    fn ended_pods_are_recorded_once_then_counted_when_released() {
        let pods = [
            pod("ok", "Succeeded", true, false),
            pod("bad", "Failed", true, false),
            pod("counted", "Succeeded", false, false),
            pod("running", "Running", true, false),
        ];
        let mut uncounted = Uncounted::default();
        let new: Vec<_> = newly_ended(&pods, &uncounted, false).into_iter().map(|(p, o)| (uid(p), o)).collect();
        assert_eq!(new, [("ok", Outcome::Succeeded), ("bad", Outcome::Failed)]);
        uncounted.succeeded.insert("ok".into());
        uncounted.failed.insert("bad".into());
        uncounted.succeeded.insert("gone".into());
        assert!(newly_ended(&pods, &uncounted, false).is_empty());

        // "ok" was released just now, "gone" no longer exists; "bad" still has its finalizer.
        let released: BTreeSet<String> = ["ok".to_string()].into();
        let (succeeded, failed, left) = settle(&uncounted, &pods, &released);
        assert_eq!((succeeded, failed), (2, 0));
        assert_eq!(left.failed.into_iter().collect::<Vec<_>>(), ["bad"]);
        assert!(left.succeeded.is_empty());
    }

    #[test]
    fn releasing_keeps_other_finalizers() {
        let patch = release_patch(&pod("a", "Succeeded", true, false));
        assert_eq!(patch["metadata"]["finalizers"], json!(["other"]));
    }
}
