//! A StatefulSet pod's stable identity: its ordinal, its name `<set>-<ordinal>`, its
//! labels, hostname and subdomain, and the claims its volume claim templates give it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};

/// The label naming the pod, so that a Service can select exactly one.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label carrying the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The label naming the ControllerRevision a pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// The first ordinal (`spec.ordinals.start`, 0 by default).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.ordinals.as_ref()).and_then(|o| o.start).unwrap_or(0).max(0)
}

/// `spec.replicas` (1 by default), never negative.
pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0)
}

/// The ordinals the set should have pods for.
pub fn ordinals(set: &StatefulSet) -> std::ops::Range<i32> {
    let start = start_ordinal(set);
    start..start.saturating_add(replicas(set))
}

pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

/// The ordinal of a pod named `<set>-<ordinal>`, if the name is one of `set`'s.
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    let digits = pod.strip_prefix(set)?.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}

/// The name of the claim `template` gives the pod of `ordinal`.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{}", pod_name(set, ordinal))
}

/// The claims the set's volume claim templates give the pod of `ordinal`, labelled
/// with the template's labels and the set's selector labels.
pub fn claims(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let Some(spec) = set.spec.as_ref() else { return Vec::new() };
    let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .iter()
        .flatten()
        .map(|template| {
            let mut claim = template.clone();
            let template_name = template.metadata.name.clone().unwrap_or_default();
            let mut labels = claim.metadata.labels.take().unwrap_or_default();
            labels.extend(selector_labels.clone());
            claim.metadata = ObjectMeta {
                name: Some(claim_name(&template_name, &set.name_any(), ordinal)),
                namespace: set.namespace(),
                labels: Some(labels),
                annotations: claim.metadata.annotations.take(),
                ..ObjectMeta::default()
            };
            claim.status = None;
            claim
        })
        .collect()
}

/// A new pod of `set` with the given ordinal from `template`, made from revision
/// `revision`.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, revision: &str) -> Pod {
    let set_name = set.name_any();
    let name = pod_name(&set_name, ordinal);
    let meta = template.metadata.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = meta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_LABEL.into(), revision.into());
    let owner = set.controller_owner_ref(&()).expect("a stored StatefulSet has a name and uid");
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    let service = set.spec.as_ref().and_then(|s| s.service_name.clone()).filter(|s| !s.is_empty());
    if service.is_some() {
        spec.subdomain = service;
    }
    // Each claim template's volume replaces a template volume of the same name.
    let mut volumes = spec.volumes.take().unwrap_or_default();
    for claim in set.spec.as_ref().and_then(|s| s.volume_claim_templates.as_ref()).into_iter().flatten() {
        let volume_name = claim.metadata.name.clone().unwrap_or_default();
        volumes.retain(|v| v.name != volume_name);
        volumes.push(Volume {
            name: volume_name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&volume_name, &set_name, ordinal),
                read_only: None,
            }),
            ..Volume::default()
        });
    }
    if !volumes.is_empty() {
        spec.volumes = Some(volumes);
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: set.namespace(),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The identity labels a pod of `ordinal` lacks or has wrong (an adopted pod may), as
/// a merge patch guarded by its uid; `None` when they are right.
pub fn identity_patch(pod: &Pod, ordinal: i32) -> Option<serde_json::Value> {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let name = pod.name_any();
    let index = ordinal.to_string();
    let right = labels.get(POD_NAME_LABEL) == Some(&name) && labels.get(POD_INDEX_LABEL) == Some(&index);
    (!right).then(|| {
        serde_json::json!({"metadata": {
            "uid": pod.metadata.uid,
            "labels": {POD_NAME_LABEL: name, POD_INDEX_LABEL: index},
        }})
    })
}

/// The revision a pod was made from (its `controller-revision-hash` label).
pub fn revision_of(pod: &Pod) -> &str {
    pod.metadata.labels.as_ref().and_then(|l| l.get(REVISION_LABEL)).map(String::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {
                "replicas": 2,
                "ordinals": {"start": 3},
                "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}],
                             "volumes": [{"name": "www", "emptyDir": {}}]},
                },
                "volumeClaimTemplates": [{"metadata": {"name": "www", "labels": {"tier": "data"}},
                                          "spec": {"accessModes": ["ReadWriteOnce"]}}],
            },
        }))
        .unwrap()
    }

    #[test]
    fn ordinals_start_where_the_spec_says() {
        assert_eq!(ordinals(&set()), 3..5);
        let mut none = set();
        none.spec.as_mut().unwrap().ordinals = None;
        none.spec.as_mut().unwrap().replicas = None;
        assert_eq!(ordinals(&none), 0..1);
    }

    #[test]
    fn only_the_sets_own_names_have_ordinals() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-01"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "webby-1"), None);
        assert_eq!(ordinal_of("web", "web-a-1"), None);
    }

    #[test]
    fn pods_carry_their_identity_and_claims() {
        let set = set();
        let template = set.spec.as_ref().unwrap().template.clone();
        let pod = new_pod(&set, &template, 4, "web-abc");
        assert_eq!(pod.name_any(), "web-4");
        let labels = pod.labels();
        assert_eq!(labels[POD_NAME_LABEL], "web-4");
        assert_eq!(labels[POD_INDEX_LABEL], "4");
        assert_eq!(labels[REVISION_LABEL], "web-abc");
        assert_eq!(labels["app"], "web");
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-4"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let volumes = spec.volumes.as_ref().unwrap();
        assert_eq!(volumes.len(), 1, "the claim replaces the template's volume of its name");
        assert_eq!(volumes[0].persistent_volume_claim.as_ref().unwrap().claim_name, "www-web-4");
        assert_eq!(pod.owner_references()[0].controller, Some(true));
        assert_eq!(revision_of(&pod), "web-abc");
        assert_eq!(identity_patch(&pod, 4), None);
        let mut adopted = pod.clone();
        adopted.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        adopted.metadata.uid = Some("p4".into());
        assert_eq!(
            identity_patch(&adopted, 4),
            Some(json!({"metadata": {"uid": "p4", "labels": {POD_NAME_LABEL: "web-4", POD_INDEX_LABEL: "4"}}}))
        );

        let claims = claims(&set, 4);
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].name_any(), "www-web-4");
        assert_eq!(claims[0].labels()["tier"], "data");
        assert_eq!(claims[0].labels()["app"], "web");
    }
}
