//! A StatefulSet's revisions (see [`crate::revisions`] for what they hold): named by
//! the hash of their data, labelled with the template's labels and that hash.

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::Value;

use crate::Error;
use crate::revisions::{self, Outcome};

/// The label carrying a revision's hash.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// A new revision of `set` storing `data`: owned by the set, labelled with its
/// template's labels and the hash, carrying its annotations.
pub fn new_revision(set: &StatefulSet, data: Value, number: i64, collision_count: i32) -> ControllerRevision {
    let hash = revisions::hash(&data, collision_count);
    let labels = set.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).and_then(|m| m.labels.clone());
    revisions::new_revision(set, labels, (HASH_LABEL, hash), data, number)
}

/// The revision of the set's current template (see [`revisions::update_revision`]).
pub async fn update_revision(
    set: &StatefulSet,
    history: &mut Vec<ControllerRevision>,
    api: &Api<ControllerRevision>,
) -> Result<Outcome, Error> {
    let template = set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let collision_count = set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
    let wanted = new_revision(set, revisions::data(&template), 0, collision_count);
    revisions::update_revision(wanted, collision_count, history, api).await
}

/// Writes a new collision count to the set's status.
pub async fn report_collision(set: &StatefulSet, count: i32, api: &Api<StatefulSet>) -> Result<(), Error> {
    let patch = serde_json::json!({"status": {"collisionCount": count}});
    api.patch_status(&set.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn revisions_are_named_by_the_hash_of_their_data_and_labelled() {
        let set = set_of("nginx:1");
        let data = revisions::data(&set.spec.as_ref().unwrap().template);
        let h = revisions::hash(&data, 0);
        let revision = new_revision(&set, data.clone(), 3, 0);
        assert_eq!(revision.name_any(), format!("web-{h}"));
        assert_eq!(revision.revision, 3);
        assert_eq!(revision.labels()[HASH_LABEL], h);
        assert_eq!(revision.labels()["app"], "web");
        assert_eq!(revision.annotations()["a"], "b");
        assert_eq!(revision.owner_references()[0].uid, "u1");
        assert_eq!(revisions::template_of(&revision), Some(set.spec.unwrap().template));
    }
}
