//! The PersistentVolumeClaims a StatefulSet's volume claim templates give its pods:
//! created before the pod, and owned per `persistentVolumeClaimRetentionPolicy` so the
//! garbage collector deletes them with the set (`whenDeleted: Delete`) or with a
//! scaled-down pod (`whenScaled: Delete`); `Retain` keeps them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::identity;
use crate::Error;
use crate::events::Events;

/// Which of the set's lifecycle events delete its claims.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub delete_when_deleted: bool,
    pub delete_when_scaled: bool,
}

pub fn retention(set: &StatefulSet) -> Retention {
    let policy = set.spec.as_ref().and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let delete = |value: Option<&String>| value.is_some_and(|v| v == "Delete");
    Retention {
        delete_when_deleted: delete(policy.and_then(|p| p.when_deleted.as_ref())),
        delete_when_scaled: delete(policy.and_then(|p| p.when_scaled.as_ref())),
    }
}

/// A plain (not controller) owner reference, as upstream puts on claims.
fn reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: None,
        block_owner_deletion: None,
    }
}

/// The owner references a claim should carry: `existing` with references to the set
/// and the pod added or removed as the retention policy says, given whether the pod's
/// ordinal has been scaled away.
pub fn owners(
    existing: &[OwnerReference],
    set: OwnerReference,
    pod: Option<OwnerReference>,
    retention: Retention,
    scaled_down: bool,
) -> Vec<OwnerReference> {
    let mut refs: Vec<OwnerReference> = existing.to_vec();
    let set_ref = |refs: &mut Vec<OwnerReference>, owner: &OwnerReference, wanted: bool| {
        let has = refs.iter().any(|r| r.uid == owner.uid);
        if wanted && !has {
            refs.push(owner.clone());
        } else if !wanted && has {
            refs.retain(|r| r.uid != owner.uid);
        }
    };
    let (by_set, by_pod) = match (retention.delete_when_scaled, retention.delete_when_deleted) {
        (false, false) => (false, false),
        (false, true) => (true, false),
        (true, false) => (false, scaled_down),
        (true, true) => (!scaled_down, scaled_down),
    };
    set_ref(&mut refs, &set, by_set);
    if let Some(pod) = pod {
        set_ref(&mut refs, &pod, by_pod);
    }
    refs
}

/// The claims of a namespace by name.
pub type Existing = BTreeMap<String, PersistentVolumeClaim>;

/// Creates the claims of `ordinal` that do not exist yet. False when one of them is
/// being deleted (the pod must wait for it to go).
pub async fn create_missing(
    set: &StatefulSet,
    ordinal: i32,
    existing: &mut Existing,
    api: &Api<PersistentVolumeClaim>,
    events: &Events,
) -> Result<bool, Error> {
    let on: ObjectReference = set.object_ref(&());
    let retention = retention(set);
    let pod = identity::pod_name(&set.name_any(), ordinal);
    for mut claim in identity::claims(set, ordinal) {
        let name = claim.name_any();
        if let Some(found) = existing.get(&name) {
            if found.metadata.deletion_timestamp.is_some() {
                tracing::info!(claim = %name, %pod, "waiting for a claim being deleted");
                return Ok(false);
            }
            continue;
        }
        let refs = owners(&[], reference(set), None, retention, false);
        claim.metadata.owner_references = (!refs.is_empty()).then_some(refs);
        match api.create(&PostParams::default(), &claim).await {
            Ok(created) => {
                let note = format!("create Claim {name} Pod {pod} in StatefulSet {} success", set.name_any());
                events.normal(&on, "SuccessfulCreate", note).await;
                existing.insert(name, created);
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                existing.insert(name.clone(), api.get(&name).await?);
            }
            Err(error) => {
                let note = format!(
                    "create Claim {name} for Pod {pod} in StatefulSet {} failed error: {}",
                    set.name_any(),
                    super::message(&error)
                );
                events.warning(&on, "FailedCreate", note).await;
                return Err(error.into());
            }
        }
    }
    Ok(true)
}

/// Brings the owner references of `pod`'s claims in line with the retention policy.
pub async fn update_owners(
    set: &StatefulSet,
    pod: &Pod,
    ordinal: i32,
    scaled_down: bool,
    existing: &Existing,
    api: &Api<PersistentVolumeClaim>,
) -> Result<(), Error> {
    let retention = retention(set);
    for claim in identity::claims(set, ordinal) {
        let Some(found) = existing.get(&claim.name_any()) else { continue };
        let current = found.metadata.owner_references.clone().unwrap_or_default();
        let wanted = owners(&current, reference(set), Some(reference(pod)), retention, scaled_down);
        if wanted == current {
            continue;
        }
        let patch = json!({"metadata": {"ownerReferences": wanted, "uid": found.metadata.uid}});
        match api.patch(&found.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(uid: &str) -> OwnerReference {
        OwnerReference { uid: uid.into(), name: uid.into(), ..OwnerReference::default() }
    }

    fn uids(refs: &[OwnerReference]) -> Vec<&str> {
        refs.iter().map(|r| r.uid.as_str()).collect()
    }

    #[test]
    fn retention_decides_the_owners() {
        let other = [owner("other")];
        let policy = |deleted, scaled| Retention { delete_when_deleted: deleted, delete_when_scaled: scaled };
        let set = || owner("set");
        let pod = || Some(owner("pod"));
        assert_eq!(uids(&owners(&other, set(), pod(), policy(false, false), false)), ["other"]);
        assert_eq!(uids(&owners(&other, set(), pod(), policy(true, false), true)), ["other", "set"]);
        assert_eq!(uids(&owners(&other, set(), pod(), policy(false, true), false)), ["other"]);
        assert_eq!(uids(&owners(&other, set(), pod(), policy(false, true), true)), ["other", "pod"]);
        assert_eq!(uids(&owners(&other, set(), pod(), policy(true, true), false)), ["other", "set"]);
        assert_eq!(uids(&owners(&[owner("set")], set(), pod(), policy(true, true), true)), ["pod"]);
        // Retain everywhere drops references an earlier policy set.
        assert!(owners(&[owner("set"), owner("pod")], set(), pod(), policy(false, false), true).is_empty());
    }
}
