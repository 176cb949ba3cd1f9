//! Read access to one JSONSchemaProps node (apiextensions.k8s.io/v1, as JSON).

use serde_json::{Map, Value};

/// One schema node. Anything but a JSON object reads as the empty schema `{}`, which
/// declares and constrains nothing.
#[derive(Clone, Copy, Debug)]
pub(super) struct Node<'a>(Option<&'a Map<String, Value>>);

/// A node's `additionalProperties`: `true`/`false`, or a schema (which allows).
#[derive(Clone, Copy, Debug)]
pub(super) struct Additional<'a> {
    pub schema: Option<Node<'a>>,
    pub allows: bool,
}

impl<'a> Node<'a> {
    pub fn new(schema: &'a Value) -> Self {
        Node(schema.as_object())
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0?.get(key)
    }

    /// A boolean keyword, false when absent.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// An integer keyword (`maxLength`, `minItems`, ...); a fractional value truncates.
    pub fn i64(&self, key: &str) -> Option<i64> {
        let v = self.get(key)?;
        v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
    }

    pub fn array(&self, key: &str) -> Option<&'a Vec<Value>> {
        self.get(key).and_then(Value::as_array)
    }

    /// A sub-schema keyword such as `not`.
    pub fn sub(&self, key: &str) -> Option<Node<'a>> {
        self.get(key).map(Node::new)
    }

    /// The schemas of `allOf`, `anyOf` or `oneOf`.
    pub fn schemas(&self, key: &str) -> impl Iterator<Item = Node<'a>> + use<'a> {
        self.array(key).into_iter().flatten().map(Node::new)
    }

    pub fn properties(&self) -> Option<&'a Map<String, Value>> {
        self.get("properties").and_then(Value::as_object)
    }

    pub fn property(&self, name: &str) -> Option<Node<'a>> {
        self.properties()?.get(name).map(Node::new)
    }

    pub fn additional_properties(&self) -> Option<Additional<'a>> {
        match self.get("additionalProperties")? {
            Value::Bool(allows) => Some(Additional { schema: None, allows: *allows }),
            schema => Some(Additional { schema: Some(Node::new(schema)), allows: true }),
        }
    }

    /// `items` as a single schema (structural schemas have no tuple form).
    pub fn items(&self) -> Option<Node<'a>> {
        self.get("items").filter(|v| v.is_object()).map(Node::new)
    }

    /// The `default`; an explicit `null` is no default, as upstream.
    pub fn default(&self) -> Option<&'a Value> {
        self.get("default").filter(|v| !v.is_null())
    }

    pub fn nullable(&self) -> bool {
        self.flag("nullable")
    }

    pub fn preserve_unknown_fields(&self) -> bool {
        self.flag("x-kubernetes-preserve-unknown-fields")
    }

    pub fn embedded_resource(&self) -> bool {
        self.flag("x-kubernetes-embedded-resource")
    }

    /// The allowed types: `type`, or `integer,string` with `x-kubernetes-int-or-string`.
    pub fn types(&self) -> Vec<&'a str> {
        if self.flag("x-kubernetes-int-or-string") {
            return vec!["integer", "string"];
        }
        match self.get("type") {
            Some(Value::String(t)) if !t.is_empty() => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// The schema that applies to field `name` of an object: its property, else the
    /// `additionalProperties` schema.
    pub fn field(&self, name: &str) -> Option<Node<'a>> {
        self.property(name).or_else(|| self.additional_properties().and_then(|ap| ap.schema))
    }
}
