//! Type meta of embedded resources (`x-kubernetes-embedded-resource: true`), after
//! apiextensions-apiserver's `schema/objectmeta/validation.go`: `apiVersion` and `kind`
//! are required strings, the former a valid group/version, the latter a DNS-1035 label in
//! any case. The walk follows `properties`, `additionalProperties` and `items` only.

use serde_json::{Map, Value};

use super::FieldError;
use super::gofmt;
use super::node::Node;
use super::path;

/// The embedded-resource errors of the object (the root itself is checked only if its
/// schema is marked embedded, as upstream).
pub(super) fn validate(schema: Node<'_>, obj: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk("", Some(schema), obj, &mut errors);
    errors
}

fn walk(at: &str, schema: Option<Node<'_>>, value: &Value, errors: &mut Vec<FieldError>) {
    let Some(s) = schema else { return };
    match value {
        Value::Object(map) => {
            if s.embedded_resource() {
                check_type_meta(at, map, errors);
            }
            for (key, v) in gofmt::sorted(map) {
                if let Some(prop) = s.property(key) {
                    walk(&path::child(at, key), Some(prop), v, errors);
                } else if let Some(additional) = s.additional_properties() {
                    walk(&path::key(at, key), additional.schema, v, errors);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(&path::index(at, i), s.items(), item, errors);
            }
        }
        _ => {}
    }
}

fn check_type_meta(at: &str, map: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    let api_version_path = path::child(at, "apiVersion");
    let kind_path = path::child(at, "kind");
    if !map.contains_key("apiVersion") {
        errors.push(FieldError::required(&api_version_path, "must not be empty"));
    }
    if !map.contains_key("kind") {
        errors.push(FieldError::required(&kind_path, "must not be empty"));
    }
    if let Some(v) = map.get("apiVersion")
        && let Some(detail) = api_version_problem(v)
    {
        errors.push(FieldError::invalid(&api_version_path, v, &detail));
    }
    if let Some(v) = map.get("kind")
        && let Some(detail) = kind_problem(v)
    {
        errors.push(FieldError::invalid(&kind_path, v, &detail));
    }
}

fn api_version_problem(v: &Value) -> Option<String> {
    let Some(api_version) = v.as_str() else { return Some("must be a string".to_owned()) };
    if api_version.is_empty() {
        return Some("must not be empty".to_owned());
    }
    // schema.ParseGroupVersion accepts `v`, `g/v` and a lone `/`.
    (api_version != "/" && api_version.matches('/').count() > 1)
        .then(|| format!("unexpected GroupVersion string: {api_version}"))
}

fn kind_problem(v: &Value) -> Option<String> {
    let Some(kind) = v.as_str() else { return Some("must be a string".to_owned()) };
    if kind.is_empty() {
        return Some("must not be empty".to_owned());
    }
    let problems = dns1035_label_problems(&kind.to_lowercase());
    (!problems.is_empty()).then(|| format!("may have mixed case, but should otherwise match: {}", problems.join(",")))
}

/// `validation.IsDNS1035Label`'s messages.
fn dns1035_label_problems(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > 63 {
        problems.push("must be no more than 63 characters".to_owned());
    }
    let bytes = value.as_bytes();
    let valid = bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes.last().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if !valid {
        problems.push(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an \
             alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', \
             regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
                .to_owned(),
        );
    }
    problems
}
