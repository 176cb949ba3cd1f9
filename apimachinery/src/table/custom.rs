//! Tables of custom resources, as apiextensions-apiserver's table convertor: the name,
//! then the version's `additionalPrinterColumns` (or an `Age` column when it has none),
//! each cell read from the object by the column's JSONPath.

use jiff::Timestamp;
use jsonpath_rust::JsonPath;
use serde_json::{Value, json};

use super::{META, age, name};
use crate::openapi;
use crate::registry::{Custom, PrinterColumn};

fn metadata_description(field: &str) -> Value {
    openapi::all_definitions()
        .get(META)
        .and_then(|s| s.pointer(&format!("/properties/{field}/description")))
        .cloned()
        .unwrap_or_else(|| json!(""))
}

/// The column definitions of a custom resource's Table.
pub fn columns(custom: &Custom) -> Vec<Value> {
    let mut out = vec![json!({
        "name": "Name", "type": "string", "format": "name",
        "description": metadata_description("name"), "priority": 0,
    })];
    if custom.columns.is_empty() {
        out.push(json!({
            "name": "Age", "type": "date", "format": "",
            "description": metadata_description("creationTimestamp"), "priority": 0,
        }));
    }
    out.extend(custom.columns.iter().map(|c| {
        json!({"name": c.name, "type": c.kind, "format": c.format, "description": c.description, "priority": c.priority})
    }));
    out
}

/// One object's cells.
pub fn cells(custom: &Custom, obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut out = vec![Value::from(name(obj))];
    if custom.columns.is_empty() {
        out.push(age(obj, now));
    }
    out.extend(custom.columns.iter().map(|c| cell(c, obj, now)));
    out
}

/// The first value a Kubernetes JSONPath (`.spec.replicas`,
/// `.status.conditions[?(@.type=="Ready")].status`) finds in `obj`.
pub fn first<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let query = if path.starts_with('$') {
        path.to_owned()
    } else {
        format!("${path}")
    };
    obj.query(&query).ok()?.into_iter().next()
}

fn cell(column: &PrinterColumn, obj: &Value, now: Timestamp) -> Value {
    let Some(value) = first(obj, &column.json_path).filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match (column.kind.as_str(), value) {
        ("string", Value::String(s)) => s.as_str().into(),
        ("string", other) => other.to_string().into(),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, Value::from),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, Value::from),
        ("boolean", Value::Bool(b)) => (*b).into(),
        ("date", Value::String(s)) => match s.parse::<Timestamp>() {
            Ok(_) => age::since(Some(value), now).into(),
            Err(_) => "<invalid>".into(),
        },
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(columns: Vec<PrinterColumn>) -> Custom {
        Custom {
            definition: "crontabs.stable.example.com".into(),
            storage_version: "v1".into(),
            list_kind: "CronTabList".into(),
            schema: Value::Null,
            columns,
            scale: None,
            selectable_fields: Vec::new(),
            defaults_on_read: false,
            terminating: false,
        }
    }

    fn column(name: &str, kind: &str, json_path: &str) -> PrinterColumn {
        PrinterColumn {
            name: name.into(),
            kind: kind.into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            json_path: json_path.into(),
        }
    }

    #[test]
    fn without_printer_columns_a_resource_shows_name_and_age() {
        let c = custom(Vec::new());
        let names: Vec<Value> = columns(&c).iter().map(|c| c["name"].clone()).collect();
        assert_eq!(names, [json!("Name"), json!("Age")]);
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let obj = json!({"metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"}});
        assert_eq!(cells(&c, &obj, now), [json!("a"), json!("10m")]);
    }

    #[test]
    fn printer_columns_read_json_paths_and_type_their_cells() {
        let c = custom(vec![
            column("Spec", "string", ".spec.cronSpec"),
            column("Replicas", "integer", ".spec.replicas"),
            column(
                "Ready",
                "string",
                ".status.conditions[?(@.type==\"Ready\")].status",
            ),
            column("Items", "string", ".spec.items"),
            column("Missing", "string", ".spec.nothing"),
            column("Wrong", "integer", ".spec.cronSpec"),
            column("Since", "date", ".status.since"),
        ]);
        let now: Timestamp = "2026-01-01T02:00:00Z".parse().unwrap();
        let obj = json!({
            "metadata": {"name": "a"},
            "spec": {"cronSpec": "* * * * */5", "replicas": 3.0, "items": [1, 2]},
            "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}], "since": "2026-01-01T00:00:00Z"},
        });
        assert_eq!(
            cells(&c, &obj, now),
            [
                json!("a"),
                json!("* * * * */5"),
                json!(3),
                json!("True"),
                json!("[1,2]"),
                Value::Null,
                Value::Null,
                json!("120m")
            ]
        );
    }
}
