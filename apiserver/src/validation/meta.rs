//! `metadata` validation shared by every kind.

use serde_json::Value;
use waggle_apimachinery::registry::Resource;

use super::{Errors, names};
use crate::status::Cause;

/// Total size limit of annotations, as upstream.
const ANNOTATIONS_MAX: usize = 256 * 1024;

/// The name rule of each kind (most are DNS subdomains).
fn name_check(resource: &Resource) -> fn(&str) -> Result<(), String> {
    match (resource.group, resource.kind) {
        ("", "Namespace") => names::dns1123_label,
        ("", "Service") => names::dns1035_label,
        ("", "Event") => names::path_segment,
        ("events.k8s.io", "Event") => names::dns1123_subdomain,
        ("rbac.authorization.k8s.io", _) => names::path_segment,
        _ => names::dns1123_subdomain,
    }
}

pub fn validate(resource: &Resource, obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let meta = obj.get("metadata").unwrap_or(&Value::Null);
    match meta.get("name").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(name) => errors.check("metadata.name", name, name_check(resource)(name)),
        None => errors.push(Cause {
            reason: "FieldValueRequired",
            field: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        }),
    }
    if resource.namespaced() {
        if let Some(ns) = meta.get("namespace").and_then(Value::as_str) {
            errors.check("metadata.namespace", ns, names::dns1123_label(ns));
        }
    }
    validate_labels(meta.get("labels"), "metadata.labels", errors);
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        let mut total = 0;
        for (key, value) in annotations {
            errors.check("metadata.annotations", key, names::qualified_name(&key.to_ascii_lowercase()));
            total += key.len() + value.as_str().map_or(0, str::len);
        }
        if total > ANNOTATIONS_MAX {
            errors.push(Cause {
                reason: "FieldValueTooLong",
                field: "metadata.annotations".into(),
                message: format!("Too long: must have at most {ANNOTATIONS_MAX} bytes"),
            });
        }
    }
    for (i, finalizer) in super::items(obj, "/metadata/finalizers").iter().enumerate() {
        let f = finalizer.as_str().unwrap_or_default();
        let field = format!("metadata.finalizers[{i}]");
        errors.check(&field, f, names::qualified_name(f));
    }
    for (i, owner) in super::items(obj, "/metadata/ownerReferences").iter().enumerate() {
        for part in ["apiVersion", "kind", "name", "uid"] {
            errors.required_str(&format!("metadata.ownerReferences[{i}].{part}"), owner.get(part));
        }
    }
    if let Some(old) = old {
        for field in ["uid", "creationTimestamp"] {
            let (new_v, old_v) = (meta.get(field), old.pointer(&format!("/metadata/{field}")));
            if new_v.is_some_and(|v| !v.is_null()) && new_v != old_v {
                errors.push(Cause::invalid(format!("metadata.{field}"), new_v.unwrap_or(&Value::Null), "field is immutable"));
            }
        }
    }
}

/// Label keys and values (also used for selectors and templates).
pub fn validate_labels(labels: Option<&Value>, field: &str, errors: &mut Errors) {
    let Some(labels) = labels.filter(|l| !l.is_null()) else { return };
    let Some(map) = labels.as_object() else {
        errors.push(Cause::invalid(field, labels, "must be a map of strings"));
        return;
    };
    for (key, value) in map {
        errors.check(field, key, names::qualified_name(key));
        match value.as_str() {
            Some(v) => errors.check(field, v, names::label_value(v)),
            None => errors.push(Cause::invalid(field, value, "label values must be strings")),
        }
    }
}
