//! Strategic merge patch (`PATCH` with `Content-Type: application/strategic-merge-patch+json`),
//! driven by the list metadata in the generated OpenAPI schemas
//! (`x-kubernetes-patch-merge-key` / `x-kubernetes-patch-strategy`):
//!
//! * maps merge recursively; `null` deletes a field;
//! * lists with strategy `merge` and a merge key merge item by item (containers by
//!   `name`, ports by `containerPort`, ...); lists of scalars with strategy `merge` are
//!   unions (finalizers); every other list is replaced;
//! * directives: `$patch: replace|merge|delete` (on a map or as a list item),
//!   `$retainKeys`, `$setElementOrder/<field>`, `$deleteFromPrimitiveList/<field>`.
//!
//! This is what kubectl's client-side `apply`, `edit` and `patch` send; the three-way diff
//! happens in kubectl, the server only applies the patch.

use serde_json::{Map, Value};

use crate::openapi::{self, navigate::Node};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Why a patch could not be applied (the server answers 400 / 422 with the message).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchError {
    #[error("the patch must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("unknown patch directive: {0}")]
    UnknownDirective(String),
    #[error("invalid {directive} directive: {reason}")]
    InvalidDirective { directive: &'static str, reason: String },
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Applies strategic merge `patch` to `original`, using the schema of the original's
/// `apiVersion`/`kind` (lists of unknown kinds are replaced, as in a JSON merge patch).
pub fn strategic_merge_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let api_version = original.get("apiVersion").or_else(|| patch.get("apiVersion")).and_then(Value::as_str).unwrap_or_default();
    let kind = original.get("kind").or_else(|| patch.get("kind")).and_then(Value::as_str).unwrap_or_default();
    let schema = Node::for_kind(openapi::all_definitions(), api_version, kind);
    let Value::Object(patch_map) = patch else {
        return Err(PatchError::NotAnObject(type_name(patch)));
    };
    let original_map = original.as_object().cloned().unwrap_or_default();
    merge_map(original_map, patch_map, schema).map(Value::Object)
}

fn merge_map(mut original: Map<String, Value>, patch: &Map<String, Value>, schema: Option<Node<'_>>) -> Result<Map<String, Value>, PatchError> {
    match patch.get(PATCH) {
        None => {}
        Some(Value::String(d)) if d == "replace" => return strip_directives(patch, schema),
        Some(Value::String(d)) if d == "delete" => return Ok(Map::new()),
        Some(Value::String(d)) if d == "merge" => {}
        Some(other) => return Err(PatchError::UnknownDirective(other.to_string())),
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let keys = retain.as_array().ok_or_else(|| PatchError::InvalidDirective {
            directive: "$retainKeys",
            reason: "must be a list of field names".into(),
        })?;
        original.retain(|k, _| keys.iter().any(|key| key.as_str() == Some(k)));
    }
    for (key, value) in patch {
        if key == PATCH || key == RETAIN_KEYS || key.starts_with(SET_ORDER) {
            continue;
        }
        if let Some(field) = key.strip_prefix(DELETE_PRIMITIVE) {
            let remove = value.as_array().ok_or_else(|| PatchError::InvalidDirective {
                directive: "$deleteFromPrimitiveList",
                reason: format!("the value for {field} must be a list"),
            })?;
            if let Some(Value::Array(list)) = original.get_mut(field) {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        let field = schema.and_then(|s| s.field(key));
        if value.is_null() {
            original.remove(key);
            continue;
        }
        let merged = merge_value(original.remove(key), value, field.as_ref(), patch.get(&format!("{SET_ORDER}{key}")))?;
        original.insert(key.clone(), merged);
    }
    // `$setElementOrder` for a list the patch does not otherwise touch still reorders it.
    for (key, order) in patch {
        let Some(field) = key.strip_prefix(SET_ORDER) else { continue };
        if patch.contains_key(field) {
            continue;
        }
        let merge_key = schema.and_then(|s| s.field(field)).and_then(|f| f.meta.merge_key);
        if let Some(Value::Array(list)) = original.get_mut(field) {
            reorder(list, order, merge_key.as_deref());
        }
    }
    Ok(original)
}

/// The patch value with directives processed against an empty original.
fn strip_directives(patch: &Map<String, Value>, schema: Option<Node<'_>>) -> Result<Map<String, Value>, PatchError> {
    let mut without = patch.clone();
    without.remove(PATCH);
    merge_map(Map::new(), &without, schema)
}

fn merge_value(
    original: Option<Value>,
    patch: &Value,
    field: Option<&openapi::navigate::Field<'_>>,
    order: Option<&Value>,
) -> Result<Value, PatchError> {
    let node = field.map(|f| f.node);
    match (original, patch) {
        (Some(Value::Object(o)), Value::Object(p)) => merge_map(o, p, node).map(Value::Object),
        (None, Value::Object(p)) => merge_map(Map::new(), p, node).map(Value::Object),
        (o, Value::Array(p)) => {
            let original_list = match o {
                Some(Value::Array(list)) => list,
                _ => Vec::new(),
            };
            merge_list(original_list, p, field, order).map(Value::Array)
        }
        (_, scalar) => Ok(scalar.clone()),
    }
}

fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    field: Option<&openapi::navigate::Field<'_>>,
    order: Option<&Value>,
) -> Result<Vec<Value>, PatchError> {
    let merges = field.is_some_and(|f| f.meta.has_strategy("merge"));
    let item_schema = field.and_then(|f| f.node.items());
    let merge_key = field.and_then(|f| f.meta.merge_key.clone());
    // A `{"$patch": "replace"}` item replaces the whole list with the other items.
    let replace = patch.iter().any(|i| i.get(PATCH).and_then(Value::as_str) == Some("replace"));
    if replace {
        let rest: Vec<&Value> = patch.iter().filter(|i| i.get(PATCH).is_none()).collect();
        return rest.into_iter().map(|i| fresh_item(i, item_schema)).collect();
    }
    if !merges {
        return patch.iter().map(|i| fresh_item(i, item_schema)).collect();
    }
    let mut result = original;
    match merge_key {
        Some(key) => {
            for item in patch {
                let Value::Object(item_map) = item else {
                    return Err(PatchError::InvalidDirective {
                        directive: "merge",
                        reason: format!("list items merged by {key} must be objects, got {}", type_name(item)),
                    });
                };
                let Some(id) = item_map.get(&key) else {
                    return Err(PatchError::InvalidDirective {
                        directive: "merge",
                        reason: format!("map: {item} does not contain declared merge key: {key}"),
                    });
                };
                let position = result.iter().position(|o| o.get(&key) == Some(id));
                match item_map.get(PATCH).and_then(Value::as_str) {
                    Some("delete") => result.retain(|o| o.get(&key) != Some(id)),
                    _ => match position {
                        Some(at) => {
                            let existing = std::mem::take(&mut result[at]);
                            let existing_map = existing.as_object().cloned().unwrap_or_default();
                            result[at] = Value::Object(merge_map(existing_map, item_map, item_schema)?);
                        }
                        None => result.push(Value::Object(merge_map(Map::new(), item_map, item_schema)?)),
                    },
                }
            }
            if let Some(order) = order {
                reorder(&mut result, order, Some(&key));
            }
        }
        None => {
            for item in patch {
                if !result.contains(item) {
                    result.push(item.clone());
                }
            }
            if let Some(order) = order {
                reorder(&mut result, order, None);
            }
        }
    }
    Ok(result)
}

/// A patch list item taken as is, with directives inside it processed.
fn fresh_item(item: &Value, schema: Option<Node<'_>>) -> Result<Value, PatchError> {
    match item {
        Value::Object(m) => merge_map(Map::new(), m, schema).map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// Orders `list` as `$setElementOrder` says: listed items first in that order, then the
/// others (items only the server knows about) in their existing order.
fn reorder(list: &mut [Value], order: &Value, key: Option<&str>) {
    let Some(order) = order.as_array() else { return };
    let identity = |v: &Value| -> Value {
        match key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let wanted: Vec<Value> = order.iter().map(&identity).collect();
    let rank = |v: &Value| wanted.iter().position(|w| *w == identity(v)).unwrap_or(usize::MAX);
    // Stable: unlisted items keep their relative order after the listed ones.
    list.sort_by_key(|v| rank(v));
}

#[cfg(test)]
mod tests;
