//! Pruning of undeclared fields, after apiextensions-apiserver's
//! `schema/pruning/algorithm.go`.
//!
//! The object root is handled like an embedded resource: `apiVersion`, `kind` and
//! `metadata` are left alone there and at every `x-kubernetes-embedded-resource` node.
//! `x-kubernetes-preserve-unknown-fields` keeps unknown fields but still prunes inside the
//! declared ones. A field matched by `additionalProperties` is pruned with its schema;
//! with `additionalProperties: true` (no schema) that means an object value loses all its
//! fields, as upstream.

use serde_json::{Map, Value};

use super::node::Node;

/// The type and object meta fields the server handles itself.
const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Removes every field the schema does not declare (honouring
/// `x-kubernetes-preserve-unknown-fields`, `additionalProperties`, and
/// `x-kubernetes-embedded-resource`), returning the removed fields' paths in the form
/// upstream's strict field validation reports them (`spec.foo`, `spec.items[0].bar`), sorted as upstream does.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut pruner = Pruner::default();
    pruner.prune(obj, Some(Node::new(schema)), true);
    pruner.removed.sort();
    pruner.removed
}

#[derive(Default)]
struct Pruner {
    /// Path of the value being pruned (`spec.items[0]`), empty at the root.
    path: String,
    removed: Vec<String>,
}

impl Pruner {
    /// Prunes `x` against `schema`; no schema means nothing inside `x` is declared.
    /// `resource_root` marks the object root, which keeps its type and object meta.
    fn prune(&mut self, x: &mut Value, schema: Option<Node<'_>>, resource_root: bool) {
        if let Some(s) = schema.filter(Node::preserve_unknown_fields) {
            self.keep_unknown(x, Some(s), resource_root);
            return;
        }
        match x {
            Value::Object(map) => match schema {
                None => {
                    for key in map.keys() {
                        self.record(key);
                    }
                    map.clear();
                }
                Some(s) => self.prune_fields(map, s, resource_root || s.embedded_resource()),
            },
            Value::Array(items) => {
                let item_schema = schema.and_then(|s| s.items());
                for (i, item) in items.iter_mut().enumerate() {
                    self.at_index(i, |p| p.prune(item, item_schema, false));
                }
            }
            _ => {}
        }
    }

    /// Drops the fields of `map` that `s` does not declare and prunes the declared ones.
    fn prune_fields(&mut self, map: &mut Map<String, Value>, s: Node<'_>, embedded: bool) {
        map.retain(|key, value| {
            if embedded && META_FIELDS.contains(&key.as_str()) {
                return true;
            }
            if let Some(prop) = s.property(key) {
                self.at_key(key, |p| p.prune(value, Some(prop), false));
                return true;
            }
            if let Some(additional) = s.additional_properties() {
                self.at_key(key, |p| p.prune(value, additional.schema, false));
                return true;
            }
            if !META_FIELDS.contains(&key.as_str()) || !self.path.is_empty() {
                self.record(key);
            }
            false
        });
    }

    /// Upstream's `skipPrune` for `x-kubernetes-preserve-unknown-fields`: unknown fields
    /// stay, declared fields (and the items of arrays) are still walked.
    fn keep_unknown(&mut self, x: &mut Value, schema: Option<Node<'_>>, resource_root: bool) {
        let Some(s) = schema else { return };
        match x {
            Value::Object(map) => {
                let embedded = resource_root || s.embedded_resource();
                for (key, value) in map.iter_mut() {
                    if embedded && META_FIELDS.contains(&key.as_str()) {
                        continue;
                    }
                    if let Some(prop) = s.property(key) {
                        self.at_key(key, |p| p.prune(value, Some(prop), false));
                    } else if let Some(additional) = s.additional_properties() {
                        self.at_key(key, |p| p.prune(value, additional.schema, false));
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.at_index(i, |p| p.keep_unknown(item, s.items(), false));
                }
            }
            _ => {}
        }
    }

    fn at_key(&mut self, key: &str, f: impl FnOnce(&mut Self)) {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(key);
        f(self);
        self.path.truncate(len);
    }

    fn at_index(&mut self, index: usize, f: impl FnOnce(&mut Self)) {
        let len = self.path.len();
        self.path.push_str(&format!("[{index}]"));
        f(self);
        self.path.truncate(len);
    }

    fn record(&mut self, key: &str) {
        let path = if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) };
        self.removed.push(path);
    }
}
