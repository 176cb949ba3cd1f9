//! Field selectors: `metadata.name=x,spec.nodeName!=`, over the fields each kind
//! supports upstream. An unsupported field is an error, never "everything".

use serde_json::Value;
use waggle_apimachinery::registry::Resource;

use crate::status::ApiError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub field: String,
    pub value: String,
    pub negated: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

/// How a supported field is read from an object, and what an absent value reads as.
#[derive(Clone, Copy)]
enum Source {
    Str(&'static str),
    Bool(&'static str),
    Int(&'static str),
}

/// The fields `resource` can be selected by (besides `metadata.name`/`metadata.namespace`).
fn kind_fields(resource: &Resource) -> &'static [(&'static str, Source)] {
    use Source::*;
    match (resource.group, resource.plural) {
        ("", "pods") => &[
            ("spec.nodeName", Str("/spec/nodeName")),
            ("spec.restartPolicy", Str("/spec/restartPolicy")),
            ("spec.schedulerName", Str("/spec/schedulerName")),
            ("spec.serviceAccountName", Str("/spec/serviceAccountName")),
            ("spec.hostNetwork", Bool("/spec/hostNetwork")),
            ("status.phase", Str("/status/phase")),
            ("status.podIP", Str("/status/podIP")),
            ("status.nominatedNodeName", Str("/status/nominatedNodeName")),
        ],
        ("", "events") => &[
            ("involvedObject.kind", Str("/involvedObject/kind")),
            ("involvedObject.namespace", Str("/involvedObject/namespace")),
            ("involvedObject.name", Str("/involvedObject/name")),
            ("involvedObject.uid", Str("/involvedObject/uid")),
            ("involvedObject.apiVersion", Str("/involvedObject/apiVersion")),
            ("involvedObject.resourceVersion", Str("/involvedObject/resourceVersion")),
            ("involvedObject.fieldPath", Str("/involvedObject/fieldPath")),
            ("reason", Str("/reason")),
            ("reportingComponent", Str("/reportingComponent")),
            ("source", Str("/source/component")),
            ("type", Str("/type")),
        ],
        // Read from the stored core Event, under the names of `events.k8s.io/v1`.
        ("events.k8s.io", "events") => &[
            ("regarding.kind", Str("/involvedObject/kind")),
            ("regarding.namespace", Str("/involvedObject/namespace")),
            ("regarding.name", Str("/involvedObject/name")),
            ("regarding.uid", Str("/involvedObject/uid")),
            ("regarding.apiVersion", Str("/involvedObject/apiVersion")),
            ("regarding.resourceVersion", Str("/involvedObject/resourceVersion")),
            ("regarding.fieldPath", Str("/involvedObject/fieldPath")),
            ("reason", Str("/reason")),
            ("reportingController", Str("/reportingComponent")),
            ("type", Str("/type")),
        ],
        ("", "secrets") => &[("type", Str("/type"))],
        ("", "nodes") => &[("spec.unschedulable", Bool("/spec/unschedulable"))],
        ("", "namespaces") => &[("status.phase", Str("/status/phase"))],
        ("", "replicationcontrollers") | ("apps", "replicasets") => &[("status.replicas", Int("/status/replicas"))],
        ("batch", "jobs") => &[("status.successful", Int("/status/successful"))],
        ("certificates.k8s.io", "certificatesigningrequests") => &[("spec.signerName", Str("/spec/signerName"))],
        _ => &[],
    }
}

fn read(obj: &Value, source: Source) -> String {
    match source {
        Source::Str(pointer) => obj.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned(),
        Source::Bool(pointer) => obj.pointer(pointer).and_then(Value::as_bool).unwrap_or(false).to_string(),
        Source::Int(pointer) => obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0).to_string(),
    }
}

/// The JSONPath of a custom resource's selectable field (`spec.color` → `.spec.color`).
fn custom_field<'a>(resource: &'a Resource, field: &str) -> Option<&'a str> {
    resource.custom?.selectable_fields.iter().map(String::as_str).find(|path| path.trim_start_matches('.') == field)
}

/// A custom resource's selectable field as a selector compares it: strings as they are,
/// booleans and integers spelled out, absent as empty.
fn read_custom(obj: &Value, path: &str) -> String {
    match waggle_apimachinery::table::custom::first(obj, path) {
        Some(Value::String(s)) => s.clone(),
        Some(v @ (Value::Bool(_) | Value::Number(_))) => v.to_string(),
        _ => String::new(),
    }
}

/// The value of a selectable field, `None` if `resource` does not support it.
fn field_value(resource: &Resource, obj: &Value, field: &str) -> Option<String> {
    match field {
        "metadata.name" => Some(read(obj, Source::Str("/metadata/name"))),
        "metadata.namespace" if resource.namespaced() => Some(read(obj, Source::Str("/metadata/namespace"))),
        _ => match custom_field(resource, field) {
            Some(path) => Some(read_custom(obj, path)),
            None => kind_fields(resource).iter().find(|(name, _)| *name == field).map(|(_, s)| read(obj, *s)),
        },
    }
}

fn supported(resource: &Resource, field: &str) -> bool {
    matches!(field, "metadata.name") || (field == "metadata.namespace" && resource.namespaced())
        || kind_fields(resource).iter().any(|(name, _)| *name == field)
        || custom_field(resource, field).is_some()
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn parse(resource: &Resource, input: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in split_unescaped(input, ',') {
            if part.trim().is_empty() {
                continue;
            }
            let (field, value, negated) = if let Some((f, v)) = split_once_unescaped(&part, "!=") {
                (f, v, true)
            } else if let Some((f, v)) = split_once_unescaped(&part, "==") {
                (f, v, false)
            } else if let Some((f, v)) = split_once_unescaped(&part, "=") {
                (f, v, false)
            } else {
                return Err(ApiError::bad_request(format!("invalid field selector: invalid selector: '{part}'; can't understand '{part}'")));
            };
            let field = field.trim().to_owned();
            if !supported(resource, &field) {
                return Err(ApiError::bad_request(format!("field label not supported: {field}")));
            }
            requirements.push(Requirement { field, value: unescape(&value), negated });
        }
        Ok(Selector { requirements })
    }

    pub fn matches(&self, resource: &Resource, obj: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let actual = field_value(resource, obj, &r.field).unwrap_or_default();
            (actual == r.value) != r.negated
        })
    }

    /// The value a requirement pins `field` to with `=`, if any (for key-range narrowing).
    pub fn equals(&self, field: &str) -> Option<&str> {
        self.requirements.iter().find(|r| r.field == field && !r.negated).map(|r| r.value.as_str())
    }
}

fn split_unescaped(input: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in input.chars() {
        if escaped {
            parts.last_mut().expect("non-empty").extend(['\\', c]);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("non-empty").push(c);
        }
    }
    parts
}

fn split_once_unescaped(input: &str, op: &str) -> Option<(String, String)> {
    let bytes = input.as_bytes();
    let mut i = 0;
    while i + op.len() <= bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if input[i..].starts_with(op) {
            // `!=` must not be read as `=` preceded by `!`, and `==` not as `=`.
            return Some((input[..i].to_owned(), input[i + op.len()..].to_owned()));
        }
        i += 1;
    }
    None
}

fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in value.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use waggle_apimachinery::registry::find;

    #[test]
    fn pod_fields_match_with_defaults_for_absent_values() {
        let pods = find("", "v1", "pods").unwrap();
        let pod = json!({"metadata": {"name": "a", "namespace": "n"}, "status": {"phase": "Running"}});
        let s = Selector::parse(pods, "spec.nodeName=,status.phase==Running").unwrap();
        assert!(s.matches(pods, &pod));
        let s = Selector::parse(pods, "metadata.name!=a").unwrap();
        assert!(!s.matches(pods, &pod));
        assert_eq!(Selector::parse(pods, "spec.nodeName=n1").unwrap().equals("spec.nodeName"), Some("n1"));
    }

    #[test]
    fn unsupported_fields_are_rejected_with_upstream_message() {
        let cms = find("", "v1", "configmaps").unwrap();
        let err = Selector::parse(cms, "data.x=y").unwrap_err();
        assert_eq!(err.to_string(), "field label not supported: data.x");
        let nodes = find("", "v1", "nodes").unwrap();
        assert!(Selector::parse(nodes, "metadata.namespace=x").is_err());
        let s = Selector::parse(nodes, "spec.unschedulable=false").unwrap();
        assert!(s.matches(nodes, &json!({"metadata": {"name": "n"}})));
    }
}
