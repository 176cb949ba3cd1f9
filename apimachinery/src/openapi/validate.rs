//! Unknown-field detection for `fieldValidation=Strict` (and `Warn`), with upstream's
//! messages: decoding a body reports `unknown field "spec.foo"` inside a
//! `... cannot be handled as a Pod: strict decoding error: ...` BadRequest, server-side
//! apply reports `.spec.foo: field not declared in schema`.

use serde_json::Value;

use super::navigate::Node;

/// Paths (upstream's decoder notation: `spec.containers[0].foo`) of the fields of `obj`
/// that the schema of `apiVersion`/`kind` does not declare. Empty when the kind is unknown
/// (nothing to check against).
pub fn unknown_fields(obj: &Value) -> Vec<String> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let Some(root) = Node::for_kind(super::all_definitions(), api_version, kind) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(root, obj, "", &mut out);
    out
}

fn walk(node: Node<'_>, value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(props) = node.properties() {
                for (k, v) in map {
                    let child_path = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    if !props.contains_key(k) {
                        out.push(child_path);
                        continue;
                    }
                    if let Some(field) = node.field(k) {
                        walk(field.node, v, &child_path, out);
                    }
                }
            } else if let Some(values) = node.map_values() {
                for (k, v) in map {
                    walk(values, v, &format!("{path}[{k}]"), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = node.items() {
                for (i, v) in items.iter().enumerate() {
                    walk(item, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// The message of the BadRequest upstream returns for a create/update body with unknown
/// fields: `Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.foo"`.
pub fn strict_decoding_message(kind: &str, version: &str, fields: &[String]) -> String {
    let list: Vec<String> = fields.iter().map(|f| format!("unknown field \"{f}\"")).collect();
    format!("{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}", list.join(", "))
}

/// The `Warning` header texts upstream sends for `fieldValidation=Warn`
/// (`unknown field "spec.foo"`).
pub fn unknown_field_warnings(fields: &[String]) -> Vec<String> {
    fields.iter().map(|f| format!("unknown field \"{f}\"")).collect()
}

/// Server-side apply's form: `.spec.foo: field not declared in schema`.
pub fn apply_schema_errors(fields: &[String]) -> Vec<String> {
    fields.iter().map(|f| format!(".{f}: field not declared in schema")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_nested_unknown_fields() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"any": "thing"}, "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePolicy": "x",
                      "resources": {"limits": {"cpu": "1"}}}], "foo": true},
        });
        assert_eq!(unknown_fields(&pod), ["metadata.bogus", "spec.containers[0].imagePolicy", "spec.foo"]);
    }

    #[test]
    fn valid_objects_have_none() {
        let deploy = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]}}},
            "status": {"replicas": 1},
        });
        assert!(unknown_fields(&deploy).is_empty());
        assert!(unknown_fields(&json!({"apiVersion": "x/v1", "kind": "Nope", "zzz": 1})).is_empty());
    }

    #[test]
    fn messages_match_upstream() {
        assert_eq!(
            strict_decoding_message("Pod", "v1", &["spec.foo".into()]),
            "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.foo\""
        );
        assert_eq!(apply_schema_errors(&["spec.foo".into()]), [".spec.foo: field not declared in schema"]);
    }
}
