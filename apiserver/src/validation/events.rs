//! `events.k8s.io/v1` Events: upstream's strict validation of events written through
//! the new API (the core API keeps its legacy rules, in [`super::misc`]).

use serde_json::Value;

use super::{Errors, names};
use crate::status::Cause;

/// The longest `reportingInstance`, `action` and `reason`, and the longest `note`.
const SHORT_MAX: usize = 128;
const NOTE_MAX: usize = 1024;

fn text<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get(field).and_then(Value::as_str).unwrap_or_default()
}

fn unset(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_i64() == Some(0),
        Some(Value::Object(map)) => map.values().all(|v| v.as_str().is_none_or(str::is_empty)),
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// An `Invalid value: ""` cause, as upstream reports these rules.
fn invalid(field: &str, detail: impl AsRef<str>) -> Cause {
    Cause::invalid(field, &Value::String(String::new()), detail)
}

/// Validates an Event written through `events.k8s.io/v1` (a create when `old` is None).
pub fn validate(obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    if let Some(series) = obj.get("series").filter(|s| !s.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            errors.push(invalid("series.count", "should be at least 2"));
        }
        if unset(series.get("lastObservedTime")) {
            errors.push(Cause::required("series.lastObservedTime"));
        }
    }
    if old.is_some() {
        return;
    }
    if unset(obj.get("eventTime")) {
        errors.push(Cause::required("eventTime"));
    } else {
        let regarding_ns = obj
            .pointer("/regarding/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ns = crate::objects::namespace(obj).unwrap_or_default();
        if regarding_ns.is_empty() && !matches!(ns, "default" | "kube-system") {
            errors.push(Cause::invalid(
                "regarding.namespace",
                &Value::String(String::new()),
                "does not match event.namespace",
            ));
        }
        let controller = text(obj, "reportingController");
        if controller.is_empty() {
            errors.push(Cause::required("reportingController"));
        } else {
            errors.check(
                "reportingController",
                controller,
                names::qualified_name(controller),
            );
        }
        for (field, max) in [
            ("reportingInstance", SHORT_MAX),
            ("action", SHORT_MAX),
            ("reason", SHORT_MAX),
        ] {
            let value = text(obj, field);
            if value.is_empty() {
                errors.push(Cause::required(field));
            } else if value.len() > max {
                errors.push(invalid(field, format!("can have at most {max} characters")));
            }
        }
        if text(obj, "note").len() > NOTE_MAX {
            errors.push(invalid(
                "note",
                format!("can have at most {NOTE_MAX} characters"),
            ));
        }
    }
    let kind = text(obj, "type");
    if !matches!(kind, "Normal" | "Warning") {
        errors.push(invalid("type", format!("has invalid value: {kind}")));
    }
    for field in [
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
        "deprecatedCount",
        "deprecatedSource",
    ] {
        if !unset(obj.get(field)) {
            errors.push(invalid(field, "needs to be unset"));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "example.com/operator", "reportingInstance": "operator-0",
            "action": "Reconcile", "reason": "Synced", "type": "Normal",
            "regarding": {"kind": "ConfigMap", "name": "web", "namespace": "default"},
        })
    }

    fn causes(obj: &Value, old: Option<&Value>) -> Vec<String> {
        let mut errors = Errors::default();
        validate(obj, old, &mut errors);
        errors
            .0
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn a_complete_event_passes_and_each_rule_names_its_field() {
        assert!(causes(&event(), None).is_empty());
        let mut bad = event();
        for field in ["reportingController", "action", "eventTime"] {
            bad.as_object_mut().unwrap().remove(field);
        }
        bad["type"] = json!("Info");
        bad["deprecatedCount"] = json!(3);
        bad["series"] = json!({"count": 1});
        assert_eq!(
            causes(&bad, None),
            [
                "series.count: Invalid value: \"\": should be at least 2",
                "series.lastObservedTime: Required value",
                "eventTime: Required value",
                "type: Invalid value: \"\": has invalid value: Info",
                "deprecatedCount: Invalid value: \"\": needs to be unset",
            ]
        );
        // A repeat patches the series in.
        let mut repeat = event();
        repeat["series"] = json!({"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"});
        assert!(causes(&repeat, Some(&event())).is_empty());
    }
}
