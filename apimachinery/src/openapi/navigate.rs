//! Walking the generated schemas: from a kind's root schema down properties, list items
//! and map values, following `$ref`s, and reading a field's list merge metadata. Strict
//! field validation, strategic merge patch and server-side apply all walk objects this way.

use serde_json::Value;

use super::definitions::{Definitions, ref_target};

/// A resolved schema node (never a bare `$ref`).
#[derive(Clone, Copy)]
pub struct Node<'a> {
    defs: &'a Definitions,
    schema: &'a Value,
    /// Definition name, when the node is a named definition.
    pub name: Option<&'a str>,
}

/// How a list field merges, read from its schema extensions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListMeta {
    pub merge_key: Option<String>,
    /// `x-kubernetes-patch-strategy`, split on `,`.
    pub strategies: Vec<String>,
    pub list_type: Option<String>,
    pub map_keys: Vec<String>,
}

impl ListMeta {
    fn from_schema(s: &Value) -> Self {
        let str_of = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
        ListMeta {
            merge_key: str_of("x-kubernetes-patch-merge-key"),
            strategies: str_of("x-kubernetes-patch-strategy")
                .map(|s| s.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            list_type: str_of("x-kubernetes-list-type"),
            map_keys: s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
        }
    }

    pub fn has_strategy(&self, s: &str) -> bool {
        self.strategies.iter().any(|x| x == s)
    }

    /// The keys identifying items of an associative list for server-side apply:
    /// `x-kubernetes-list-map-keys`, else the patch merge key (upstream's schema
    /// conversion treats a merge-keyed list as a map).
    pub fn associative_keys(&self) -> Vec<String> {
        if self.list_type.as_deref() == Some("atomic") {
            return Vec::new();
        }
        if !self.map_keys.is_empty() {
            return self.map_keys.clone();
        }
        self.merge_key.iter().cloned().collect()
    }

    /// A list of scalars merged as a set (`x-kubernetes-list-type: set`, or a merge
    /// strategy without key).
    pub fn is_set(&self) -> bool {
        self.list_type.as_deref() == Some("set") || (self.merge_key.is_none() && self.has_strategy("merge"))
    }
}

/// A named field of an object node: its resolved schema and its own metadata.
pub struct Field<'a> {
    pub node: Node<'a>,
    pub meta: ListMeta,
}

impl<'a> Node<'a> {
    /// The root schema of definition `name`.
    pub fn definition(defs: &'a Definitions, name: &str) -> Option<Self> {
        let (name, schema) = defs.get_key_value(name)?;
        Some(Node { defs, schema, name: Some(name.as_str()) }.resolved())
    }

    /// The root schema of the kind `apiVersion`/`kind`, found by its
    /// `x-kubernetes-group-version-kind` extension.
    pub fn for_kind(defs: &'a Definitions, api_version: &str, kind: &str) -> Option<Self> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        defs.iter()
            .find(|(_, s)| {
                s.get("x-kubernetes-group-version-kind").and_then(Value::as_array).is_some_and(|gvks| {
                    gvks.iter().any(|g| g["group"] == group && g["version"] == version && g["kind"] == kind)
                })
            })
            .map(|(name, schema)| Node { defs, schema, name: Some(name.as_str()) })
    }

    /// A schema that references no definitions (a custom resource's structural schema).
    pub fn standalone(schema: &'a Value) -> Self {
        static NONE: std::sync::LazyLock<Definitions> = std::sync::LazyLock::new(Definitions::new);
        Node { defs: &NONE, schema, name: None }
    }

    fn resolved(self) -> Self {
        let mut node = self;
        for _ in 0..16 {
            let target = node
                .schema
                .get("$ref")
                .and_then(Value::as_str)
                .or_else(|| node.schema.get("allOf")?.get(0)?.get("$ref")?.as_str())
                .and_then(ref_target);
            match target.and_then(|t| node.defs.get_key_value(t)) {
                Some((name, schema)) => node = Node { defs: node.defs, schema, name: Some(name.as_str()) },
                None => break,
            }
        }
        node
    }

    pub fn schema(&self) -> &'a Value {
        self.schema
    }

    fn child(&self, schema: &'a Value) -> Node<'a> {
        Node { defs: self.defs, schema, name: None }.resolved()
    }

    pub fn type_name(&self) -> Option<&'a str> {
        self.schema.get("type").and_then(Value::as_str)
    }

    /// Declared properties, if this is a struct.
    pub fn properties(&self) -> Option<&'a serde_json::Map<String, Value>> {
        self.schema.get("properties").and_then(Value::as_object).filter(|p| !p.is_empty())
    }

    /// The field `name` of a struct node.
    pub fn field(&self, name: &str) -> Option<Field<'a>> {
        let raw = self.properties()?.get(name)?;
        Some(Field { node: self.child(raw), meta: ListMeta::from_schema(raw) })
    }

    /// The item schema of an array node.
    pub fn items(&self) -> Option<Node<'a>> {
        self.schema.get("items").map(|s| self.child(s))
    }

    /// The value schema of a map node (`additionalProperties`).
    pub fn map_values(&self) -> Option<Node<'a>> {
        match self.schema.get("additionalProperties") {
            Some(s @ Value::Object(_)) => Some(self.child(s)),
            _ => None,
        }
    }

    /// An object whose keys are not described (`type: object` without properties or
    /// `additionalProperties`, e.g. `FieldsV1`, `RawExtension`), or a schema without type:
    /// anything goes below it.
    pub fn is_free_form(&self) -> bool {
        self.properties().is_none()
            && self.map_values().is_none()
            && self.items().is_none()
            && matches!(self.type_name(), None | Some("object"))
            && self.schema.get("format").is_none()
    }
}
