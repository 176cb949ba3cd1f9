//! A StatefulSet's status: its pods counted by readiness, availability and revision
//! (what `kubectl rollout status statefulset/x` reads), and the current revision
//! moving to the update revision once a rolling update has reached every pod.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::identity;
use crate::{Error, pods};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub current: i32,
    pub updated: i32,
    pub current_revision: String,
    pub update_revision: String,
    pub collision_count: i32,
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// Running with its `Ready` condition true.
pub fn running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && pods::is_ready(pod)
}

/// Counts the set's pods as upstream does: a pod counts once the API server gave it a
/// phase; pods being deleted count as replicas but toward no revision.
pub fn count(
    pods: &[&Pod],
    current_revision: &str,
    update_revision: &str,
    rolling: bool,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Status {
    let mut status = Status {
        current_revision: current_revision.to_owned(),
        update_revision: update_revision.to_owned(),
        ..Status::default()
    };
    for pod in pods {
        let created = !phase(pod).is_empty();
        if created {
            status.replicas += 1;
        }
        if running_and_ready(pod) {
            status.ready += 1;
            if pods::is_available(pod, min_ready_seconds, now) {
                status.available += 1;
            }
        }
        if created && pod.metadata.deletion_timestamp.is_none() {
            let revision = identity::revision_of(pod);
            if revision == current_revision {
                status.current += 1;
            }
            if revision == update_revision {
                status.updated += 1;
            }
        }
    }
    // A rolling update that reached every pod makes the update revision current.
    if rolling && status.updated == status.replicas && status.ready == status.replicas {
        status.current = status.updated;
        status.current_revision = status.update_revision.clone();
    }
    status
}

/// Writes `status` unless the set already reports it.
pub async fn write(set: &StatefulSet, status: &Status, client: &Client) -> Result<(), Error> {
    let old = set.status.clone().unwrap_or_default();
    let unchanged = old.observed_generation == set.metadata.generation
        && old.replicas == status.replicas
        && old.ready_replicas.unwrap_or(0) == status.ready
        && old.available_replicas.unwrap_or(0) == status.available
        && old.current_replicas.unwrap_or(0) == status.current
        && old.updated_replicas.unwrap_or(0) == status.updated
        && old.current_revision.as_deref() == Some(status.current_revision.as_str())
        && old.update_revision.as_deref() == Some(status.update_revision.as_str())
        && old.collision_count == Some(status.collision_count);
    if unchanged {
        return Ok(());
    }
    let patch = json!({"status": {
        "observedGeneration": set.metadata.generation,
        "replicas": status.replicas,
        "readyReplicas": status.ready,
        "availableReplicas": status.available,
        "currentReplicas": status.current,
        "updatedReplicas": status.updated,
        "currentRevision": status.current_revision,
        "updateRevision": status.update_revision,
        "collisionCount": status.collision_count,
    }});
    let api = Api::<StatefulSet>::namespaced(client.clone(), &set.namespace().unwrap_or_default());
    match api.patch_status(&set.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(revision: &str, phase: &str, ready: bool, deleting: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {
                "name": "p",
                "labels": {identity::REVISION_LABEL: revision},
                "deletionTimestamp": deleting.then_some("2026-01-01T00:00:00Z"),
            },
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .unwrap()
    }

    #[test]
    fn counts_by_revision_and_readiness() {
        let now = Timestamp::now();
        let pods = [
            pod("a", "Running", true, false),
            pod("b", "Running", true, false),
            pod("b", "Pending", false, false),
            pod("a", "Running", true, true),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let status = count(&refs, "a", "b", true, 0, now);
        assert_eq!((status.replicas, status.ready, status.available), (4, 3, 3));
        assert_eq!((status.current, status.updated), (1, 2));
        assert_eq!(status.current_revision, "a");
    }

    #[test]
    fn a_finished_rolling_update_makes_its_revision_current() {
        let now = Timestamp::now();
        let pods = [pod("b", "Running", true, false), pod("b", "Running", true, false)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let status = count(&refs, "a", "b", true, 0, now);
        assert_eq!((status.current, status.updated, status.current_revision.as_str()), (2, 2, "b"));
        let on_delete = count(&refs, "a", "b", false, 0, now);
        assert_eq!((on_delete.current, on_delete.current_revision.as_str()), (0, "a"));
    }
}
