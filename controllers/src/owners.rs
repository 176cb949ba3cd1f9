//! Controller owner references: which controller an object belongs to, and claiming
//! (adopting or releasing) objects by selector, as kube-controller-manager does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{Api, Patch, PatchParams};
use kube::core::{ObjectMeta, Selector, SelectorExt};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use crate::Error;

/// The controller owner reference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|r| r.controller == Some(true))
}

/// A parsed label selector; an empty one selects nothing here (a workload with an
/// empty selector would otherwise claim every pod in its namespace).
pub fn selector<K: Resource<DynamicType = ()>>(owner: &K, selector: &LabelSelector) -> Result<Selector, Error> {
    let invalid = |reason: String| Error::Selector {
        kind: kind_of(owner),
        namespace: owner.namespace().unwrap_or_default(),
        name: owner.name_any(),
        reason,
    };
    let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector.match_expressions.as_ref().is_none_or(|e| e.is_empty());
    if empty {
        return Err(invalid("empty selector is invalid for a controller".into()));
    }
    Selector::try_from(selector.clone()).map_err(|e| invalid(e.to_string()))
}

fn kind_of<K: Resource<DynamicType = ()>>(_: &K) -> &'static str {
    // `K::kind` returns a Cow borrowed from a static for the typed k8s-openapi kinds.
    match K::kind(&()) {
        std::borrow::Cow::Borrowed(kind) => kind,
        std::borrow::Cow::Owned(_) => "object",
    }
}

/// The owners of kind `O` an event on `dependent` concerns: its controller when that
/// is an `O`; for an orphan, every `O` of its namespace whose selector matches it (one
/// of them may adopt it).
pub fn interested<O, D>(
    owners: &Store<O>,
    dependent: &D,
    selector_of: fn(&O) -> Option<&LabelSelector>,
) -> Vec<ObjectRef<O>>
where
    O: Resource<DynamicType = ()> + Clone,
    D: Resource,
{
    let Some(namespace) = dependent.meta().namespace.clone() else { return Vec::new() };
    if let Some(owner) = controller_of(dependent.meta()) {
        if owner.kind == O::kind(&()) && owner.api_version == O::api_version(&()) {
            return vec![ObjectRef::new(&owner.name).within(&namespace)];
        }
        return Vec::new();
    }
    let labels = dependent.meta().labels.clone().unwrap_or_default();
    owners
        .state()
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|o| selector_of(o).and_then(|s| selector(o.as_ref(), s).ok()).is_some_and(|s| s.matches(&labels)))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// What claiming decided for one candidate object.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Controlled by the owner and matching: it is the owner's.
    Owned,
    /// No controller, matching, alive: the owner should adopt it.
    Adopt,
    /// Controlled by the owner but no longer matching: the owner should let it go.
    Release,
    /// Someone else's, or not matching: ignore.
    Ignore,
}

/// kube-controller-manager's claim rules for one object.
pub fn claim(owner_uid: &str, owner_deleting: bool, selector: &Selector, meta: &ObjectMeta) -> Claim {
    let labels = meta.labels.clone().unwrap_or_default();
    let matches = selector.matches(&labels);
    match controller_of(meta) {
        Some(r) if r.uid == owner_uid => {
            if matches || owner_deleting {
                Claim::Owned
            } else {
                Claim::Release
            }
        }
        Some(_) => Claim::Ignore,
        None if matches && !owner_deleting && meta.deletion_timestamp.is_none() => Claim::Adopt,
        None => Claim::Ignore,
    }
}

/// The merge patch that adopts an object: its owner references plus `owner` as
/// controller, guarded by the object's uid.
pub fn adoption_patch(meta: &ObjectMeta, owner: OwnerReference) -> serde_json::Value {
    let mut references = meta.owner_references.clone().unwrap_or_default();
    references.push(owner);
    serde_json::json!({"metadata": {"ownerReferences": references, "uid": meta.uid}})
}

/// The merge patch that releases an object from the controller `owner_uid`.
pub fn release_patch(meta: &ObjectMeta, owner_uid: &str) -> serde_json::Value {
    let references: Vec<_> = meta.owner_references.iter().flatten().filter(|r| r.uid != owner_uid).cloned().collect();
    serde_json::json!({"metadata": {"ownerReferences": references, "uid": meta.uid}})
}

/// Writes an adoption or release patch. `None` when the object went or changed
/// meanwhile (404, 409): the next pass sees it as it is then.
pub async fn write_claim<K>(api: &Api<K>, name: &str, patch: &serde_json::Value) -> Result<Option<K>, Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(patched) => Ok(Some(patched)),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(None),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn meta(labels: &[(&str, &str)], controller: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()),
            owner_references: controller.map(|uid| {
                vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "ReplicaSet".into(),
                    name: "rs".into(),
                    uid: uid.into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn claims_follow_controller_and_selector() {
        let selector: Selector = Selector::from_iter([("app", "web")]);
        assert_eq!(claim("me", false, &selector, &meta(&[("app", "web")], Some("me"))), Claim::Owned);
        assert_eq!(claim("me", false, &selector, &meta(&[("app", "web")], None)), Claim::Adopt);
        assert_eq!(claim("me", true, &selector, &meta(&[("app", "web")], None)), Claim::Ignore);
        assert_eq!(claim("me", false, &selector, &meta(&[("app", "db")], Some("me"))), Claim::Release);
        assert_eq!(claim("me", false, &selector, &meta(&[("app", "web")], Some("other"))), Claim::Ignore);
    }
}
