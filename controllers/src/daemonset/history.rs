//! A DaemonSet's revisions (see [`crate::revisions`] for what they hold): named
//! `<set>-<hash>` by the hash of its template and collision count, labelled with the
//! template's labels and `controller-revision-hash`, the label its pods carry too.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::nodes::HASH_LABEL;
use crate::revisions;

/// The hash of the set's current template under its collision count.
pub fn hash(set: &DaemonSet) -> String {
    let template = set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let collision_count = set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
    revisions::hash(&serde_json::to_value(&template).expect("a pod template serializes"), collision_count)
}

/// A new revision of the set's current template.
pub fn new_revision(set: &DaemonSet) -> ControllerRevision {
    let template = set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let labels = template.metadata.as_ref().and_then(|m| m.labels.clone());
    revisions::new_revision(set, labels, (HASH_LABEL, hash(set)), revisions::data(&template), 0)
}

/// The hash a revision is known by.
pub fn hash_of(revision: &ControllerRevision) -> &str {
    revision.labels().get(HASH_LABEL).map(String::as_str).unwrap_or_default()
}

/// The revisions in use: the current one and those some pod was made from.
pub fn live(history: &[ControllerRevision], current: &ControllerRevision, pods: &[Pod]) -> BTreeSet<String> {
    let hashes: BTreeSet<&str> = pods.iter().filter_map(|p| p.labels().get(HASH_LABEL)).map(String::as_str).collect();
    let mut live: BTreeSet<String> =
        history.iter().filter(|r| hashes.contains(hash_of(r))).map(|r| r.name_any()).collect();
    live.insert(current.name_any());
    live
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(image: &str, collisions: i32) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "default", "uid": "u1",
                         "annotations": {"kubernetes.io/change-cause": "first"}},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}},
                             "spec": {"containers": [{"name": "c", "image": image}]}},
            },
            "status": {"collisionCount": collisions, "currentNumberScheduled": 0, "desiredNumberScheduled": 0,
                       "numberMisscheduled": 0, "numberReady": 0},
        }))
        .unwrap()
    }

    #[test]
    fn revisions_are_named_and_labelled_by_the_template_hash() {
        let revision = new_revision(&set("agent:1", 0));
        let hash = hash(&set("agent:1", 0));
        assert_eq!(revision.name_any(), format!("agent-{hash}"));
        assert_eq!(hash_of(&revision), hash);
        assert_eq!(revision.labels()["app"], "agent");
        assert_eq!(revision.annotations()["kubernetes.io/change-cause"], "first");
        assert_eq!(revision.owner_references()[0].kind, "DaemonSet");
        assert_eq!(revision.data.as_ref().unwrap().0["spec"]["template"]["$patch"], "replace");
        assert_ne!(hash, super::hash(&set("agent:2", 0)));
        assert_ne!(hash, super::hash(&set("agent:1", 1)));
    }
}
