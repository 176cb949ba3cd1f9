//! Field sets in structured-merge-diff's `FieldsV1` encoding: a trie whose edges are
//! `f:<field>`, `k:{"key":value}` (associative list item), `v:<json>` (set item) or
//! `i:<index>`, and where `".": {}` marks a node that is itself a member.
//!
//! [`of_value`] computes the set of fields an object (or applied configuration) sets,
//! walking its schema: structs and maps descend, associative lists descend by key,
//! sets list their values, atomic lists/structs and scalars are leaves.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::openapi::navigate::Node;

/// A set of field paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// This node itself is a member (`".": {}`).
    pub member: bool,
    pub children: BTreeMap<String, FieldSet>,
}

/// One path element, encoded as in `FieldsV1` (`f:name`, `k:{...}`, `v:...`, `i:0`).
pub type PathElement = String;
pub type Path = Vec<PathElement>;

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// Decodes a `fieldsV1` object.
    pub fn from_fields_v1(v: &Value) -> Self {
        let mut set = FieldSet::default();
        if let Some(map) = v.as_object() {
            for (k, child) in map {
                if k == "." {
                    set.member = true;
                } else {
                    let mut c = FieldSet::from_fields_v1(child);
                    if c.children.is_empty() {
                        c.member = true;
                    }
                    set.children.insert(k.clone(), c);
                }
            }
        }
        set
    }

    /// Encodes as a `fieldsV1` object: leaves are `{}`, interior members carry `".": {}`.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, c) in &self.children {
            map.insert(k.clone(), c.to_fields_v1());
        }
        Value::Object(map)
    }

    /// Every member path (leaves and `.` members).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        if self.member || (self.children.is_empty() && !prefix.is_empty()) {
            out.push(prefix.clone());
        }
        for (k, c) in &self.children {
            prefix.push(k.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path.split_first() {
            None => self.member || self.children.is_empty(),
            Some((first, rest)) => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    pub fn insert(&mut self, path: &[PathElement]) {
        match path.split_first() {
            None => self.member = true,
            Some((first, rest)) => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Removes member `path`, pruning nodes left empty.
    pub fn remove(&mut self, path: &[PathElement]) {
        match path.split_first() {
            None => self.member = false,
            Some((first, rest)) => {
                if let Some(c) = self.children.get_mut(first) {
                    c.remove(rest);
                    if c.is_empty() {
                        self.children.remove(first);
                    }
                }
            }
        }
    }

    pub fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (k, c) in &other.children {
            self.children.entry(k.clone()).or_default().union(c);
        }
    }

    /// Drops the top-level field `name` (`f:<name>`) and all below it.
    pub fn remove_subtree(&mut self, path: &[PathElement]) {
        match path.split_first() {
            None => *self = FieldSet::default(),
            Some((first, [])) => {
                self.children.remove(first);
            }
            Some((first, rest)) => {
                if let Some(c) = self.children.get_mut(first) {
                    c.remove_subtree(rest);
                    if c.is_empty() {
                        self.children.remove(first);
                    }
                }
            }
        }
    }
}

/// The value of key field `key` of a list item, with the API default of `protocol`
/// (`TCP`, for container, service and endpoint ports) filled in as the server's
/// defaulting would before the item is stored.
pub fn key_value(item: &Value, key: &str) -> Option<Value> {
    match item.get(key) {
        Some(v) => Some(v.clone()),
        None if key == "protocol" => Some(Value::String("TCP".into())),
        None => None,
    }
}

/// `k:{"a":1,"b":"x"}` for an associative list item (keys sorted, compact JSON).
pub fn key_element(item: &Value, keys: &[String]) -> PathElement {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let mut m = Map::new();
    for k in sorted {
        if let Some(v) = key_value(item, k) {
            m.insert(k.clone(), v);
        }
    }
    format!("k:{}", Value::Object(m))
}

/// The fields `value` sets, per `node` (no schema: everything below is a leaf unless it
/// is an object, whose keys descend).
pub fn of_value(value: &Value, node: Option<Node<'_>>) -> FieldSet {
    let mut set = FieldSet::default();
    match value {
        Value::Object(map) => {
            let atomic = node.is_some_and(|n| n.schema().get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic"));
            if atomic || node.is_some_and(|n| n.is_free_form() && n.type_name() == Some("object")) || map.is_empty() {
                set.member = true;
                return set;
            }
            for (k, v) in map {
                let child = match node {
                    Some(n) if n.properties().is_some() => n.field(k).map(|f| (f.node, Some(f.meta))),
                    Some(n) => n.map_values().map(|m| (m, None)),
                    None => None,
                };
                let (child_node, meta) = match child {
                    Some((n, m)) => (Some(n), m),
                    None => (None, None),
                };
                let child_set = match (v, &meta) {
                    (Value::Array(items), Some(meta)) => list_set(items, child_node, meta),
                    (Value::Array(_), None) => FieldSet { member: true, ..FieldSet::default() },
                    _ => of_value(v, child_node),
                };
                set.children.insert(format!("f:{k}"), child_set);
            }
        }
        _ => set.member = true,
    }
    set
}

fn list_set(items: &[Value], node: Option<Node<'_>>, meta: &crate::openapi::navigate::ListMeta) -> FieldSet {
    let keys = meta.associative_keys();
    let mut set = FieldSet::default();
    if !keys.is_empty() && items.iter().all(Value::is_object) {
        let item_node = node.and_then(|n| n.items());
        for item in items {
            let mut child = of_value(item, item_node);
            child.member = true;
            set.children.insert(key_element(item, &keys), child);
        }
    } else if meta.is_set() && items.iter().all(|i| !i.is_object() && !i.is_array()) {
        for item in items {
            set.children.insert(format!("v:{item}"), FieldSet { member: true, ..FieldSet::default() });
        }
    } else {
        set.member = true;
    }
    if set.children.is_empty() {
        set.member = true;
    }
    set
}

/// The value at `path` in `obj`.
pub fn value_at<'a>(obj: &'a Value, path: &[PathElement]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else { return Some(obj) };
    let next = if let Some(name) = first.strip_prefix("f:") {
        obj.get(name)?
    } else if let Some(keys) = first.strip_prefix("k:") {
        let keys: Map<String, Value> = serde_json::from_str(keys).ok()?;
        obj.as_array()?.iter().find(|item| keys.iter().all(|(k, v)| key_value(item, k).as_ref() == Some(v)))?
    } else if let Some(v) = first.strip_prefix("v:") {
        let v: Value = serde_json::from_str(v).ok()?;
        obj.as_array()?.iter().find(|item| **item == v)?
    } else if let Some(i) = first.strip_prefix("i:") {
        obj.as_array()?.get(i.parse::<usize>().ok()?)?
    } else {
        return None;
    };
    value_at(next, rest)
}

/// Removes the value at `path` from `obj` (a field, list item or set value).
pub fn remove_at(obj: &mut Value, path: &[PathElement]) {
    let Some((last, parent_path)) = path.split_last() else { return };
    let Some(parent) = value_at_mut(obj, parent_path) else { return };
    if let Some(name) = last.strip_prefix("f:") {
        if let Some(m) = parent.as_object_mut() {
            m.remove(name);
        }
    } else if let Some(list) = parent.as_array_mut() {
        if let Some(keys) = last.strip_prefix("k:").and_then(|k| serde_json::from_str::<Map<String, Value>>(k).ok()) {
            list.retain(|item| !keys.iter().all(|(k, v)| key_value(item, k).as_ref() == Some(v)));
        } else if let Some(v) = last.strip_prefix("v:").and_then(|v| serde_json::from_str::<Value>(v).ok()) {
            list.retain(|item| *item != v);
        }
    }
}

fn value_at_mut<'a>(obj: &'a mut Value, path: &[PathElement]) -> Option<&'a mut Value> {
    let Some((first, rest)) = path.split_first() else { return Some(obj) };
    let next = if let Some(name) = first.strip_prefix("f:") {
        obj.get_mut(name)?
    } else if let Some(keys) = first.strip_prefix("k:") {
        let keys: Map<String, Value> = serde_json::from_str(keys).ok()?;
        obj.as_array_mut()?.iter_mut().find(|item| keys.iter().all(|(k, v)| key_value(item, k).as_ref() == Some(v)))?
    } else {
        return None;
    };
    value_at_mut(next, rest)
}

/// Upstream's path notation: `.spec.containers[name="nginx"].image`, `[=value]`, `[0]`.
pub fn display(path: &[PathElement]) -> String {
    let mut out = String::new();
    for e in path {
        if let Some(name) = e.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(keys) = e.strip_prefix("k:") {
            let keys: Map<String, Value> = serde_json::from_str(keys).unwrap_or_default();
            let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = e.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        } else if let Some(i) = e.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        }
    }
    out
}
