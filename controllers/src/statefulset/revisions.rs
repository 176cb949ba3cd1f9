//! A StatefulSet's history as ControllerRevisions: each holds the patch that restores
//! a template (`{"spec":{"template":{...,"$patch":"replace"}}}`, what upstream stores and
//! `kubectl rollout undo` applies), is named `<set>-<hash>` and numbered by `revision`.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::Error;

/// The label carrying a revision's hash.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

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

/// The template a revision's data restores.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok()
}

/// A stable, DNS-label-safe hash of a revision's data and the collision count (as
/// upstream, the count's decimal digits follow the data).
pub fn hash(data: &Value, collision_count: i32) -> String {
    let mut bytes = serde_json::to_vec(data).expect("revision data serializes");
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

/// A new revision of `set` storing `data`: owned by the set, labelled with its
/// template's labels and the hash, carrying its annotations.
pub fn new_revision(set: &StatefulSet, data: Value, number: i64, collision_count: i32) -> ControllerRevision {
    let hash = hash(&data, collision_count);
    let mut labels =
        set.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).and_then(|m| m.labels.clone()).unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone());
    let owner = set.controller_owner_ref(&()).expect("a stored StatefulSet has a name and uid");
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", set.name_any())),
            namespace: set.namespace(),
            labels: Some(labels),
            annotations: set.metadata.annotations.clone(),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(data)),
        revision: number,
    }
}

/// The revisions to delete so that at most `limit` remain besides those `live` (in use
/// by a pod or the status): the oldest first. `history` is sorted by revision.
pub fn to_prune<'a>(history: &'a [ControllerRevision], live: &BTreeSet<String>, limit: usize) -> Vec<&'a str> {
    let dead: Vec<&str> =
        history.iter().map(|r| r.metadata.name.as_deref().unwrap_or("")).filter(|n| !live.contains(*n)).collect();
    let excess = dead.len().saturating_sub(limit);
    dead.into_iter().take(excess).collect()
}

/// What [`update_revision`] decided.
pub enum Outcome {
    /// The revision of the current template.
    Revision(Box<ControllerRevision>),
    /// Its name was taken by another revision: the collision count to report, after
    /// which the next reconcile hashes again.
    Collided(i32),
}

/// The revision of the set's current template: an equal one already the newest is
/// kept, an equal older one is renumbered as the newest (a rollback), otherwise a new
/// one is created. `history` is sorted by revision and updated in place.
pub async fn update_revision(
    set: &StatefulSet,
    history: &mut Vec<ControllerRevision>,
    api: &Api<ControllerRevision>,
) -> Result<Outcome, Error> {
    let template = set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let data = data(&template);
    let newest = history.last().map(|r| r.revision).unwrap_or(0);
    let collision_count = set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
    if let Some(index) = history.iter().rposition(|r| stores(r, &data)) {
        if history[index].revision == newest {
            return Ok(Outcome::Revision(Box::new(history[index].clone())));
        }
        let name = history[index].name_any();
        let patch = json!({"revision": newest + 1});
        let renumbered = api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        tracing::info!(set = %set.name_any(), revision = %name, number = newest + 1, "revision made current again");
        history.remove(index);
        history.push(renumbered.clone());
        return Ok(Outcome::Revision(Box::new(renumbered)));
    }
    let revision = new_revision(set, data.clone(), newest + 1, collision_count);
    match api.create(&PostParams::default(), &revision).await {
        Ok(created) => {
            history.push(created.clone());
            Ok(Outcome::Revision(Box::new(created)))
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api.get(&revision.name_any()).await?;
            let mine = existing.owner_references().iter().any(|r| Some(&r.uid) == set.meta().uid.as_ref());
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

    fn set_of(image: &str) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1", "annotations": {"a": "b"}},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": image}]},
                },
            },
        }))
        .unwrap()
    }

    fn set() -> StatefulSet {
        set_of("nginx:1")
    }

    fn template(image: &str) -> PodTemplateSpec {
        set_of(image).spec.unwrap().template
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
        let revision = new_revision(&set(), data.clone(), 3, 0);
        assert_eq!(template_of(&revision), Some(template("nginx:1")));
        assert!(stores(&revision, &data));
        assert!(!stores(&revision, &super::data(&template("nginx:2"))));
    }

    #[test]
    fn revisions_are_named_by_hash_and_labelled() {
        let data = data(&template("nginx:1"));
        let h = hash(&data, 0);
        assert!(h.bytes().all(|c| ALPHABET.contains(&c)), "{h}");
        assert_ne!(h, hash(&data, 1));
        assert_ne!(h, hash(&super::data(&template("nginx:2")), 0));
        let revision = new_revision(&set(), data, 3, 0);
        assert_eq!(revision.name_any(), format!("web-{h}"));
        assert_eq!(revision.revision, 3);
        assert_eq!(revision.labels()[HASH_LABEL], h);
        assert_eq!(revision.labels()["app"], "web");
        assert_eq!(revision.annotations()["a"], "b");
        assert_eq!(revision.owner_references()[0].uid, "u1");
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
