//! Server-side printing: an object or a list → `meta.k8s.io/v1 Table`, with upstream's
//! column definitions and cells per kind (`pkg/printers/internalversion`). The server
//! answers with it when the client sends
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`; the cells are what kubectl
//! prints. Like upstream's API server, rows always carry the wide (priority 1) cells;
//! kubectl hides those columns unless `-o wide`.
//!
//! Entry point: [`to_table`].

/// A column description taken from the schema of `io.k8s.api.<def>`'s `field`
/// (defined before the printer modules so that each of them can use it).
macro_rules! field {
    ($def:literal, $field:literal) => {
        Description::Field(concat!("io.k8s.api.", $def), $field)
    };
}

mod age;
mod core;
pub mod custom;
mod ingress;
mod pod;
mod policy;
mod quota;
mod storage;
mod workloads;

use jiff::Timestamp;
use serde_json::{Value, json};

pub use age::human_duration;

use crate::openapi;
use crate::registry::Resource;

/// What each row's `object` holds (the `includeObject` query parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    /// `PartialObjectMetadata` (upstream's default).
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    /// Parses `includeObject=None|Metadata|Object`; anything else is the default.
    pub fn from_query(value: Option<&str>) -> Self {
        match value {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// One column: name, type, format, priority, and the schema path of its description.
pub(crate) struct Column {
    pub name: &'static str,
    pub kind: &'static str,
    pub format: &'static str,
    pub priority: u8,
    pub description: Description,
}

/// Where a column's description comes from: upstream uses the Go types' swagger docs,
/// which are the OpenAPI descriptions, or a fixed sentence.
pub(crate) enum Description {
    Field(&'static str, &'static str),
    Text(&'static str),
}

pub(crate) const fn col(
    name: &'static str,
    kind: &'static str,
    priority: u8,
    description: Description,
) -> Column {
    Column {
        name,
        kind,
        format: "",
        priority,
        description,
    }
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub(crate) const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    priority: 0,
    description: Description::Field(META, "name"),
};
pub(crate) const AGE: Column = col(
    "Age",
    "string",
    0,
    Description::Field(META, "creationTimestamp"),
);
pub(crate) const CONTAINERS: Column = col(
    "Containers",
    "string",
    1,
    Description::Text("Names of each container in the template."),
);
pub(crate) const IMAGES: Column = col(
    "Images",
    "string",
    1,
    Description::Text("Images referenced by each container in the template."),
);

fn describe(d: &Description) -> String {
    match d {
        Description::Text(t) => (*t).to_owned(),
        Description::Field(def, field) => openapi::all_definitions()
            .get(*def)
            .and_then(|s| s.pointer(&format!("/properties/{field}/description")))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Turns one object into its row's cells at a given time.
pub(crate) type Cells = fn(&Value, Timestamp) -> Vec<Value>;

/// A kind's printer: its columns and a function from object to cells.
pub(crate) struct Printer {
    pub columns: &'static [Column],
    pub cells: Cells,
}

fn printer(kind: &str, group: &str) -> Option<Printer> {
    pod::printer(kind, group)
        .or_else(|| workloads::printer(kind, group))
        .or_else(|| core::printer(kind, group))
        .or_else(|| quota::printer(kind, group))
        .or_else(|| storage::printer(kind, group))
        .or_else(|| ingress::printer(kind, group))
        .or_else(|| policy::printer(kind, group))
}

static DEFAULT_COLUMNS: &[Column] = &[
    NAME,
    Column {
        name: "Created At",
        kind: "date",
        format: "",
        priority: 0,
        description: Description::Field(META, "creationTimestamp"),
    },
];

fn default_cells(obj: &Value, _now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        obj.pointer("/metadata/creationTimestamp")
            .cloned()
            .unwrap_or(Value::Null),
    ]
}

fn row_object(obj: &Value, include: IncludeObject) -> Option<Value> {
    match include {
        IncludeObject::None => None,
        IncludeObject::Object => Some(obj.clone()),
        IncludeObject::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })),
    }
}

/// Converts `body` (one object of `resource`, or a list of them) to a Table at time `now`.
pub fn to_table(
    resource: &Resource,
    body: &Value,
    include: IncludeObject,
    now: Timestamp,
) -> Value {
    // A subresource's own kind prints as itself (`--subresource=scale`).
    let scale = body["kind"] == "Scale" && body["apiVersion"] == "autoscaling/v1";
    let (group, kind, custom) = match scale {
        true => ("autoscaling", "Scale", None),
        false => (resource.group, resource.kind, resource.custom),
    };
    let p = printer(kind, group).unwrap_or(Printer {
        columns: DEFAULT_COLUMNS,
        cells: default_cells,
    });
    let row_cells = |obj: &Value| match custom {
        Some(c) => custom::cells(c, obj, now),
        None => (p.cells)(obj, now),
    };
    let items: Vec<&Value> = match body.get("items").and_then(Value::as_array) {
        Some(items) => items.iter().collect(),
        None => vec![body],
    };
    let rows: Vec<Value> = items
        .into_iter()
        .map(|obj| {
            let mut row = json!({"cells": row_cells(obj)});
            if let Some(conditions) = pod::row_conditions(resource, obj) {
                row["conditions"] = conditions;
            }
            if let Some(o) = row_object(obj, include) {
                row["object"] = o;
            }
            row
        })
        .collect();
    let mut metadata = json!({});
    if let Some(meta) = body.get("metadata").and_then(Value::as_object) {
        for key in ["resourceVersion", "continue", "remainingItemCount"] {
            if let Some(v) = meta.get(key) {
                metadata[key] = v.clone();
            }
        }
    }
    let columns: Vec<Value> = match custom {
        Some(c) => custom::columns(c),
        None => p
            .columns
            .iter()
            .map(|c| {
                json!({"name": c.name, "type": c.kind, "format": c.format, "description": describe(&c.description), "priority": c.priority})
            })
            .collect(),
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

// ---- helpers shared by the printers ----

pub(crate) fn name(obj: &Value) -> &str {
    s(obj, "/metadata/name")
}

pub(crate) fn s<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(crate) fn i(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

pub(crate) fn arr<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub(crate) fn age(obj: &Value, now: Timestamp) -> Value {
    age::since(obj.pointer("/metadata/creationTimestamp"), now).into()
}

pub(crate) fn none_if_empty(v: String) -> String {
    if v.is_empty() { "<none>".into() } else { v }
}

/// `labels.FormatLabels`: `a=b,c=d` sorted by key, `<none>` when empty.
pub(crate) fn format_labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    none_if_empty(pairs.join(","))
}

/// A `LabelSelector`'s string form (`metav1.LabelSelectorAsSelector(..).String()`):
/// requirements sorted by key; empty for an empty or missing selector.
pub(crate) fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return String::new() };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
        }
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let mut values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort();
        let text = match e
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        };
        reqs.push((key.to_owned(), text));
    }
    reqs.sort();
    reqs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

/// `layoutContainerCells`: comma-joined container names and images.
pub(crate) fn container_cells(containers: &[Value]) -> (Value, Value) {
    let names: Vec<&str> = containers.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, "/image")).collect();
    (names.join(",").into(), images.join(",").into())
}

#[cfg(test)]
mod tests;
