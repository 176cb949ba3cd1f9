//! The ResourceQuota printer: `used/hard` per resource, requests and limits apart.
//! (LimitRange uses the default `Name`, `Created At` columns, as upstream.)

use jiff::Timestamp;
use serde_json::Value;

use super::{AGE, Cells, Column, Description, NAME, Printer, age, col, name};

static RESOURCE_QUOTA: &[Column] = &[
    NAME,
    AGE,
    col(
        "Request",
        "string",
        0,
        Description::Text(
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
    ),
    col(
        "Limit",
        "string",
        0,
        Description::Text(
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
    ),
];

pub(super) fn printer(kind: &str, group: &str) -> Option<Printer> {
    let cells: Cells = match (group, kind) {
        ("", "ResourceQuota") => resource_quota,
        _ => return None,
    };
    Some(Printer {
        columns: RESOURCE_QUOTA,
        cells,
    })
}

/// A quantity from `status.<field>.<resource>`, `0` when absent (Go's zero Quantity).
fn quantity<'a>(obj: &'a Value, field: &str, resource: &str) -> &'a str {
    obj.get("status")
        .and_then(|s| s.get(field))
        .and_then(|m| m.get(resource))
        .and_then(Value::as_str)
        .unwrap_or("0")
}

/// `resource: used/hard, ...` over `spec.hard`'s resources in name order; `limits.*`
/// resources go to the Limit column.
fn resource_quota(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut resources: Vec<&str> = obj
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    resources.sort_unstable();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for resource in resources {
        let entry = format!(
            "{resource}: {}/{}",
            quantity(obj, "used", resource),
            quantity(obj, "hard", resource)
        );
        match resource.split_once('.') {
            Some(("limits", _)) => limits.push(entry),
            _ => requests.push(entry),
        }
    }
    vec![
        name(obj).into(),
        age(obj, now),
        requests.join(", ").into(),
        limits.join(", ").into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_and_limits_are_split_and_sorted() {
        let quota = json!({
            "metadata": {"name": "q"},
            "spec": {"hard": {"pods": "10", "limits.cpu": "2", "cpu": "1"}},
            "status": {"hard": {"pods": "10", "cpu": "1", "limits.cpu": "2"}, "used": {"pods": "3"}},
        });
        let cells = resource_quota(&quota, Timestamp::now());
        assert_eq!(cells[2], "cpu: 0/1, pods: 3/10");
        assert_eq!(cells[3], "limits.cpu: 0/2");
    }
}
