//! A workload's history as ControllerRevisions, shared by the StatefulSet and DaemonSet
//! controllers: each revision holds the patch that restores a pod template
//! (`{"spec":{"template":{...,"$patch":"replace"}}}`, what upstream stores and `kubectl
//! rollout undo` applies), is named `<owner>-<hash>` and numbered by `revision`.
//!
//! What a revision is labelled with and what its hash covers differ per workload; the
//! caller builds a new revision ([`update_revision`] numbers and stores it).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::Error;
use crate::owners::{self, Claim};

/// The characters the hash is spelled in: no vowels (no words), no look-alikes.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The patch a revision of `template` stores.
pub fn data(template: &PodTemplateSpec) -> Value {
    let mut template = serde_json::to_value(template).expect("a pod template serializes");
    if let Value::Object(map) = &mut template {
        map.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// Revision `number` of `owner` storing `data`, named and labelled (`hash_label`) by
/// `hash`: owned by the set, with its template's labels and its annotations.
pub fn new_revision<K>(
    owner: &K,
    template_labels: Option<BTreeMap<String, String>>,
    (hash_label, hash): (&str, String),
    data: Value,
    number: i64,
) -> ControllerRevision
where
    K: Resource<DynamicType = ()>,
{
    let mut labels = template_labels.unwrap_or_default();
    labels.insert(hash_label.into(), hash.clone());
    let reference = owner.controller_owner_ref(&()).expect("a stored workload has a name and uid");
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", owner.meta().name.clone().unwrap_or_default())),
            namespace: owner.meta().namespace.clone(),
            labels: Some(labels),
            annotations: owner.meta().annotations.clone(),
            owner_references: Some(vec![reference]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(data)),
        revision: number,
    }
}

/// The template a revision's data restores.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok()
}

/// A stable, DNS-label-safe hash of `value` and the collision count (as upstream, the
/// count's decimal digits follow the hashed object).
pub fn hash(value: &Value, collision_count: i32) -> String {
    let mut bytes = serde_json::to_vec(value).expect("revision data serializes");
    bytes.extend_from_slice(collision_count.to_string().as_bytes());
    // FNV-1a, 32 bits.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in bytes {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string().bytes().map(|digit| char::from(ALPHABET[usize::from(digit) % ALPHABET.len()])).collect()
}

/// Whether a revision stores `data`.
pub fn stores(revision: &ControllerRevision, data: &Value) -> bool {
    revision.data.as_ref().is_some_and(|d| &d.0 == data)
}

/// The revisions to delete so that at most `limit` remain besides those `live` (in use
/// by a pod or the status): the oldest first. `history` is sorted by revision.
pub fn to_prune<'a>(history: &'a [ControllerRevision], live: &BTreeSet<String>, limit: usize) -> Vec<&'a str> {
    let dead: Vec<&str> =
        history.iter().map(|r| r.metadata.name.as_deref().unwrap_or("")).filter(|n| !live.contains(*n)).collect();
    let excess = dead.len().saturating_sub(limit);
    dead.into_iter().take(excess).collect()
}

/// `owner`'s ControllerRevisions, adopting matching orphans and releasing its own that
/// stopped matching, as upstream's ControllerRefManager does.
pub async fn claim<K>(
    owner: &K,
    selector: &LabelSelector,
    api: &Api<ControllerRevision>,
) -> Result<Vec<ControllerRevision>, Error>
where
    K: Resource<DynamicType = ()>,
{
    let selector = owners::selector(owner, selector)?;
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let deleting = owner.meta().deletion_timestamp.is_some();
    let mut mine = Vec::new();
    for revision in api.list(&ListParams::default()).await?.items {
        let patch = match owners::claim(&uid, deleting, &selector, &revision.metadata) {
            Claim::Owned => {
                mine.push(revision);
                continue;
            }
            Claim::Adopt => owners::adoption_patch(
                &revision.metadata,
                owner.controller_owner_ref(&()).expect("a stored owner has a name and uid"),
            ),
            Claim::Release => owners::release_patch(&revision.metadata, &uid),
            Claim::Ignore => continue,
        };
        let release = owners::controller_of(&revision.metadata).is_some();
        let patched = owners::write_claim(api, &revision.name_any(), &patch).await?;
        mine.extend(patched.filter(|_| !release));
    }
    Ok(mine)
}

/// What [`update_revision`] decided.
pub enum Outcome {
    /// The revision of the current template.
    Revision(Box<ControllerRevision>),
    /// Its name was taken by another revision: the collision count to report, after
    /// which the next reconcile hashes again.
    Collided(i32),
}

/// The revision storing `wanted`'s data (`wanted` is a new revision as its owner
/// builds it, named by its hash under `collision_count`): an equal one already the
/// newest is kept, an equal older one is renumbered as the newest (a rollback),
/// otherwise `wanted` is created as the newest. `history` is sorted by revision and
/// updated in place.
pub async fn update_revision(
    mut wanted: ControllerRevision,
    collision_count: i32,
    history: &mut Vec<ControllerRevision>,
    api: &Api<ControllerRevision>,
) -> Result<Outcome, Error> {
    let data = wanted.data.as_ref().map(|d| d.0.clone()).unwrap_or_default();
    let owner = owners::controller_of(&wanted.metadata).map(|r| (r.name.clone(), r.uid.clone())).unwrap_or_default();
    let newest = history.last().map(|r| r.revision).unwrap_or(0);
    if let Some(index) = history.iter().rposition(|r| stores(r, &data)) {
        if history[index].revision == newest {
            return Ok(Outcome::Revision(Box::new(history[index].clone())));
        }
        let name = history[index].name_any();
        let patch = json!({"revision": newest + 1});
        let renumbered = api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        tracing::info!(owner = %owner.0, revision = %name, number = newest + 1, "revision made current again");
        history.remove(index);
        history.push(renumbered.clone());
        return Ok(Outcome::Revision(Box::new(renumbered)));
    }
    wanted.revision = newest + 1;
    match api.create(&PostParams::default(), &wanted).await {
        Ok(created) => {
            history.push(created.clone());
            Ok(Outcome::Revision(Box::new(created)))
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api.get(&wanted.name_any()).await?;
            let mine = existing.owner_references().iter().any(|r| r.uid == owner.1);
            if mine && stores(&existing, &data) {
                history.push(existing.clone());
                return Ok(Outcome::Revision(Box::new(existing)));
            }
            // Another revision took the name: hash again with the next collision count.
            Ok(Outcome::Collided(collision_count + 1))
        }
        Err(error) => Err(error.into()),
    }
}

/// Deletes the revisions [`to_prune`] picks.
pub async fn prune(
    history: &[ControllerRevision],
    live: &BTreeSet<String>,
    limit: usize,
    api: &Api<ControllerRevision>,
) -> Result<(), Error> {
    for name in to_prune(history, live, limit) {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => tracing::debug!(revision = name, "pruned revision"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image}]},
        }))
        .unwrap()
    }

    #[test]
    fn data_is_the_patch_kubectl_undo_applies() {
        let data = data(&template("nginx:1"));
        assert_eq!(
            data,
            json!({"spec": {"template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1"}]},
                "$patch": "replace",
            }}})
        );
        let revision = ControllerRevision {
            metadata: ObjectMeta::default(),
            data: Some(k8s_openapi::apimachinery::pkg::runtime::RawExtension(data.clone())),
            revision: 1,
        };
        assert_eq!(template_of(&revision), Some(template("nginx:1")));
        assert!(stores(&revision, &data));
        assert!(!stores(&revision, &super::data(&template("nginx:2"))));
    }

    #[test]
    fn hashes_are_dns_safe_and_differ_by_collision_count() {
        let data = data(&template("nginx:1"));
        let h = hash(&data, 0);
        assert!(h.bytes().all(|c| ALPHABET.contains(&c)), "{h}");
        assert_ne!(h, hash(&data, 1));
        assert_ne!(h, hash(&super::data(&template("nginx:2")), 0));
        assert_eq!(h, hash(&data, 0));
    }

    #[test]
    fn pruning_keeps_live_and_newest_dead() {
        let history: Vec<ControllerRevision> = (1..=5)
            .map(|n| ControllerRevision {
                metadata: ObjectMeta { name: Some(format!("r{n}")), ..ObjectMeta::default() },
                data: None,
                revision: n,
            })
            .collect();
        let live: BTreeSet<String> = ["r1".to_string(), "r5".to_string()].into();
        assert_eq!(to_prune(&history, &live, 1), ["r2", "r3"]);
        assert_eq!(to_prune(&history, &live, 0), ["r2", "r3", "r4"]);
        assert!(to_prune(&history, &live, 10).is_empty());
    }
}
