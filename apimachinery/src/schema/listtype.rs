//! `x-kubernetes-list-type` invariants, after apiextensions-apiserver's
//! `schema/listtype/validation.go`: a `set` holds no duplicate items, a `map` no two items
//! with the same `x-kubernetes-list-map-keys` values (items must be objects). The walk
//! follows `properties`, `additionalProperties` and `items` only.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::FieldError;
use super::gofmt::{self, GoNumber};
use super::node::Node;
use super::path;

/// The list-type errors of the object, in walk order.
pub(super) fn validate(schema: Node<'_>, obj: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Value::Object(map) = obj {
        walk_object("", schema, map, &mut errors);
    }
    errors
}

fn walk_object(at: &str, s: Node<'_>, map: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    let entries = gofmt::sorted(map);
    if let Some(schema) = s.additional_properties().and_then(|ap| ap.schema) {
        for (key, value) in &entries {
            walk(&path::key(at, key), schema, value, errors);
        }
    }
    for (key, value) in &entries {
        if let Some(prop) = s.property(key) {
            walk(&path::child(at, key), prop, value, errors);
        }
    }
}

fn walk(at: &str, s: Node<'_>, value: &Value, errors: &mut Vec<FieldError>) {
    match value {
        Value::Object(map) => walk_object(at, s, map, errors),
        Value::Array(items) => walk_array(at, s, items, errors),
        _ => {}
    }
}

fn walk_array(at: &str, s: Node<'_>, items: &[Value], errors: &mut Vec<FieldError>) {
    match s.str("x-kubernetes-list-type") {
        Some("set") => {
            for i in repeated(items.iter().map(Key::of)) {
                errors.push(FieldError::duplicate(&path::index(at, i), &items[i]));
            }
        }
        Some("map") => errors.extend(check_map(at, s, items)),
        _ => {}
    }
    if let Some(item_schema) = s.items() {
        for (i, item) in items.iter().enumerate() {
            walk(&path::index(at, i), item_schema, item, errors);
        }
    }
}

/// A `map` list: items are objects (or null), unique by their key fields.
fn check_map(at: &str, s: Node<'_>, items: &[Value]) -> Vec<FieldError> {
    if let Some(i) = items.iter().position(|x| !x.is_null() && !x.is_object()) {
        return vec![FieldError::invalid(
            &path::index(at, i),
            &items[i],
            "must be an object for an array of list-type map",
        )];
    }
    let key_fields: Vec<&str> =
        s.array("x-kubernetes-list-map-keys").into_iter().flatten().filter_map(Value::as_str).collect();
    // Each item's key: the key fields it has (a missing field stays missing).
    let keys: Vec<Map<String, Value>> = items
        .iter()
        .map(|item| {
            let fields = item.as_object();
            key_fields
                .iter()
                .filter_map(|f| fields.and_then(|m| m.get(*f)).map(|v| ((*f).to_owned(), v.clone())))
                .collect()
        })
        .collect();
    if let [field] = key_fields[..] {
        // One key field: compared as a value, with "unspecified" as a value of its own.
        let single = keys.iter().map(|k| k.get(field).map_or(Key::Unspecified, Key::of));
        return repeated(single)
            .into_iter()
            .map(|i| FieldError::duplicate(&path::index(at, i), &Value::Object(keys[i].clone())))
            .collect();
    }
    repeated(keys.iter().map(|k| Key::Compound(gofmt::json(&Value::Object(k.clone())))))
        .into_iter()
        .map(|i| FieldError::duplicate(&path::index(at, i), &Value::Object(keys[i].clone())))
        .collect()
}

/// An item's identity as upstream compares it: scalars by Go value (an `int64` 1 differs
/// from a `float64` 1), objects and arrays by their JSON encoding.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Unspecified,
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    String(String),
    Compound(String),
}

impl Key {
    fn of(v: &Value) -> Self {
        match v {
            Value::Null => Key::Null,
            Value::Bool(b) => Key::Bool(*b),
            Value::Number(n) => match GoNumber::of(n) {
                GoNumber::Int(i) => Key::Int(i),
                // -0 and 0 are the same map key in Go.
                GoNumber::Float(f) => Key::Float(if f == 0.0 { 0 } else { f.to_bits() }),
            },
            Value::String(s) => Key::String(s.clone()),
            Value::Array(_) | Value::Object(_) => Key::Compound(gofmt::json(v)),
        }
    }
}

/// The indices where a key is seen for the second time (upstream's `validateListSet`:
/// one error per repeated key, at its first repetition).
fn repeated(keys: impl Iterator<Item = Key>) -> Vec<usize> {
    let mut seen: HashMap<Key, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, key) in keys.enumerate() {
        let count = seen.entry(key).or_insert(0);
        *count += 1;
        if *count == 2 {
            out.push(i);
        }
    }
    out
}
