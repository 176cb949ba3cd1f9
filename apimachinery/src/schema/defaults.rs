//! Defaulting, after apiextensions-apiserver's `schema/defaulting/prunenulls.go` and
//! `schema/defaulting/algorithm.go`.

use serde_json::Value;

use super::node::Node;

/// Fills in `default` values from the schema where fields are absent (and, as upstream,
/// where a value is null and the field is not nullable), recursing into objects, arrays and additionalProperties.
///
/// First, as upstream's decoder does right after pruning, object fields whose value is
/// `null` are dropped when their schema is neither `nullable` nor has a `default`; the
/// null-with-default ones are then replaced by the default. Null array items (and null
/// `additionalProperties` values) of a non-nullable schema take its default, or stay null
/// when there is none.
pub fn apply_defaults(schema: &Value, obj: &mut Value) {
    let root = Node::new(schema);
    drop_undefaultable_nulls(obj, Some(root));
    default(obj, Some(root));
}

/// A null that the schema neither allows nor defaults (upstream's
/// `isNonNullableNonDefaultableNull`).
fn is_undefaultable_null(v: &Value, schema: Option<Node<'_>>) -> bool {
    v.is_null() && schema.is_some_and(|s| !s.nullable() && s.default().is_none())
}

/// A null that the schema does not allow (upstream's `isNonNullableNull`).
fn is_disallowed_null(v: &Value, schema: Option<Node<'_>>) -> bool {
    v.is_null() && schema.is_some_and(|s| !s.nullable())
}

/// Upstream's `PruneNonNullableNullsWithoutDefaults`.
fn drop_undefaultable_nulls(x: &mut Value, schema: Option<Node<'_>>) {
    match x {
        Value::Object(map) => map.retain(|key, value| {
            let field = schema.and_then(|s| s.field(key));
            if is_undefaultable_null(value, field) {
                return false;
            }
            drop_undefaultable_nulls(value, field);
            true
        }),
        Value::Array(items) => {
            let item_schema = schema.and_then(|s| s.items());
            for item in items {
                drop_undefaultable_nulls(item, item_schema);
            }
        }
        _ => {}
    }
}

/// Upstream's `Default`: a node's property defaults are set before its fields (including
/// the just-defaulted ones) are defaulted in turn.
fn default(x: &mut Value, schema: Option<Node<'_>>) {
    let Some(s) = schema else { return };
    match x {
        Value::Object(map) => {
            for (name, prop) in s.properties().into_iter().flatten() {
                let prop = Node::new(prop);
                let Some(value) = prop.default() else { continue };
                if map.get(name).is_none_or(|v| is_disallowed_null(v, Some(prop))) {
                    map.insert(name.clone(), value.clone());
                }
            }
            for (key, value) in map.iter_mut() {
                if let Some(prop) = s.property(key) {
                    default(value, Some(prop));
                } else if let Some(additional) = s.additional_properties() {
                    replace_disallowed_null(value, additional.schema);
                    default(value, additional.schema);
                }
            }
        }
        Value::Array(items) => {
            let item_schema = s.items();
            for item in items {
                replace_disallowed_null(item, item_schema);
                default(item, item_schema);
            }
        }
        _ => {}
    }
}

/// Replaces a null the schema does not allow by the schema's default (null if none).
fn replace_disallowed_null(v: &mut Value, schema: Option<Node<'_>>) {
    if is_disallowed_null(v, schema) {
        *v = schema.and_then(|s| s.default()).cloned().unwrap_or(Value::Null);
    }
}
