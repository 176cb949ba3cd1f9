//! A Deployment's ReplicaSets: which one is new (its template is the Deployment's),
//! revisions, the annotations the controller keeps on them, creating the new one and
//! scaling any of them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::strategy;
use super::template::{self, HASH_LABEL};
use crate::Error;
use crate::events::Events;
use crate::owners;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";

/// Deployment annotations that are not copied to its ReplicaSets.
fn is_own_annotation(key: &str) -> bool {
    matches!(key, REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | LAST_APPLIED | ROLLBACK_TO)
}

pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

pub fn available_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

pub fn ready_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0)
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations().get(REVISION).and_then(|r| r.parse().ok()).unwrap_or(0)
}

fn annotation_number(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.annotations().get(key).and_then(|v| v.parse().ok())
}

pub fn desired_replicas(rs: &ReplicaSet) -> Option<i32> {
    annotation_number(rs, DESIRED_REPLICAS)
}

pub fn max_replicas(rs: &ReplicaSet) -> Option<i32> {
    annotation_number(rs, MAX_REPLICAS)
}

/// The ReplicaSet running the Deployment's current template: the oldest, should two match.
pub fn find_new(d: &Deployment, sets: &[ReplicaSet]) -> Option<usize> {
    let template = d.spec.as_ref()?.template.clone();
    let mut matching: Vec<usize> = (0..sets.len())
        .filter(|&i| {
            sets[i]
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| template::equal_ignoring_hash(t, &template))
        })
        .collect();
    matching.sort_by_key(|&i| (sets[i].metadata.creation_timestamp.as_ref().map(|t| t.0), sets[i].name_any()));
    matching.first().copied()
}

/// Sets the annotations the new ReplicaSet carries: the Deployment's own (but for the
/// controller's), its revision (recording the one it replaces in the history, after a
/// rollback to it), and the replica counts it was sized for. Returns whether any changed.
fn set_new_annotations(d: &Deployment, rs: &mut ReplicaSet, new_revision: i64) -> bool {
    let before = rs.metadata.annotations.clone();
    let annotations = rs.annotations_mut();
    for (key, value) in d.annotations() {
        if !is_own_annotation(key) {
            annotations.insert(key.clone(), value.clone());
        }
    }
    let old: Option<i64> = annotations.get(REVISION).and_then(|r| r.parse().ok());
    if old.is_none_or(|old| old < new_revision) {
        annotations.insert(REVISION.into(), new_revision.to_string());
        if let Some(old) = old {
            let history = match annotations.get(REVISION_HISTORY) {
                Some(h) if !h.is_empty() => format!("{h},{old}"),
                _ => old.to_string(),
            };
            annotations.insert(REVISION_HISTORY.into(), history);
        }
    }
    let replicas = strategy::replicas(d);
    annotations.insert(DESIRED_REPLICAS.into(), replicas.to_string());
    annotations.insert(MAX_REPLICAS.into(), (replicas + strategy::max_surge(d)).to_string());
    rs.metadata.annotations != before
}

/// What writing ReplicaSets needs.
pub struct Writer<'a> {
    pub deployment: &'a Deployment,
    pub api: Api<ReplicaSet>,
    pub events: &'a Events,
    pub reference: ObjectReference,
}

/// The outcome of looking for (and maybe creating) the new ReplicaSet.
pub enum NewSet {
    /// It exists (it may have just been created or taken a new revision).
    Found { index: usize, created: bool },
    /// There is none and none was to be created.
    Missing,
}

impl Writer<'_> {
    /// The new ReplicaSet of `sets`, brought to the next revision; created (and pushed
    /// onto `sets`) when missing and `create` is set.
    pub async fn new_set(&self, sets: &mut Vec<ReplicaSet>, create: bool) -> Result<NewSet, Error> {
        let d = self.deployment;
        let existing = find_new(d, sets);
        let max_old = sets.iter().enumerate().filter(|(i, _)| Some(*i) != existing).map(|(_, rs)| revision(rs)).max();
        let new_revision = max_old.unwrap_or(0) + 1;
        if let Some(index) = existing {
            let mut copy = sets[index].clone();
            let annotations_changed = set_new_annotations(d, &mut copy, new_revision);
            let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let min_ready_changed = copy.spec.as_ref().and_then(|s| s.min_ready_seconds) != min_ready;
            if annotations_changed || min_ready_changed {
                let patch = json!({
                    "metadata": {"annotations": copy.metadata.annotations, "resourceVersion": copy.metadata.resource_version},
                    "spec": {"minReadySeconds": min_ready},
                });
                sets[index] = self.api.patch(&copy.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
            }
            return Ok(NewSet::Found { index, created: false });
        }
        if !create {
            return Ok(NewSet::Missing);
        }
        let spec = d.spec.clone().unwrap_or_default();
        let collisions = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template::hash(&spec.template, collisions);
        let mut labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
        labels.insert(HASH_LABEL.into(), hash.clone());
        let mut selector = spec.selector.clone();
        selector.match_labels.get_or_insert_with(BTreeMap::new).insert(HASH_LABEL.into(), hash.clone());
        let replicas = super::rollout::new_set_replicas(d, sets, None);
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", d.name_any())),
                namespace: d.namespace(),
                labels: Some(labels),
                owner_references: Some(vec![
                    d.controller_owner_ref(&()).expect("a stored Deployment has a name and uid"),
                ]),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template::with_hash(&spec.template, &hash)),
            }),
            status: None,
        };
        set_new_annotations(d, &mut rs, new_revision);
        match self.api.create(&PostParams::default(), &rs).await {
            Ok(created) => {
                if replicas > 0 {
                    let note = format!("Scaled up replica set {} from 0 to {replicas}", created.name_any());
                    self.events.normal(&self.reference, "ScalingReplicaSet", note).await;
                }
                sets.push(created);
                Ok(NewSet::Found { index: sets.len() - 1, created: true })
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                // Ours already (a list that lagged), or another template under this name.
                let name = rs.name_any();
                let theirs = self.api.get(&name).await?;
                let ours =
                    owners::controller_of(&theirs.metadata).is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
                let same = theirs
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| template::equal_ignoring_hash(t, &spec.template));
                if ours && same {
                    sets.push(theirs);
                    return Ok(NewSet::Found { index: sets.len() - 1, created: false });
                }
                let next = collisions.unwrap_or(0).saturating_add(1);
                let api =
                    Api::<Deployment>::namespaced(self.api.clone().into_client(), &d.namespace().unwrap_or_default());
                let patch = json!({"status": {"collisionCount": next}});
                api.patch_status(&d.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
                Err(Error::Invalid {
                    kind: "Deployment",
                    namespace: d.namespace().unwrap_or_default(),
                    name: d.name_any(),
                    reason: format!("replica set {name} exists with another template; collision count is now {next}"),
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Sets a ReplicaSet's replicas (and the sizes it is sized for); records the event
    /// when the size changes. Returns whether the size changed.
    pub async fn scale(&self, rs: &mut ReplicaSet, replicas: i32) -> Result<bool, Error> {
        let d = self.deployment;
        let old = spec_replicas(rs);
        let desired = strategy::replicas(d);
        let max = desired + strategy::max_surge(d);
        if old == replicas && desired_replicas(rs) == Some(desired) && max_replicas(rs) == Some(max) {
            return Ok(false);
        }
        let patch = json!({
            "metadata": {
                "annotations": {DESIRED_REPLICAS: desired.to_string(), MAX_REPLICAS: max.to_string()},
                "resourceVersion": rs.metadata.resource_version,
            },
            "spec": {"replicas": replicas},
        });
        *rs = self.api.patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        if old != replicas {
            let direction = if replicas > old { "up" } else { "down" };
            let note = format!("Scaled {direction} replica set {} from {old} to {replicas}", rs.name_any());
            self.events.normal(&self.reference, "ScalingReplicaSet", note).await;
        }
        Ok(old != replicas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_annotations(pairs: &[(&str, &str)]) -> ReplicaSet {
        let mut rs = ReplicaSet::default();
        for (k, v) in pairs {
            rs.annotations_mut().insert(k.to_string(), v.to_string());
        }
        rs
    }

    #[test]
    fn a_rollback_moves_the_old_revision_into_the_history() {
        let mut d = Deployment::default();
        d.annotations_mut().insert("kubernetes.io/change-cause".into(), "rollback".into());
        d.annotations_mut().insert(REVISION.into(), "3".into());
        let mut rs = with_annotations(&[(REVISION, "1")]);
        assert!(set_new_annotations(&d, &mut rs, 4));
        assert_eq!(rs.annotations()[REVISION], "4");
        assert_eq!(rs.annotations()[REVISION_HISTORY], "1");
        assert_eq!(rs.annotations()["kubernetes.io/change-cause"], "rollback");
        assert!(!set_new_annotations(&d, &mut rs, 4));
    }
}
