//! Version conversion: of custom resources served in several versions (conversion
//! strategy `None`: only `apiVersion` changes, as upstream), of `events.k8s.io/v1`
//! Events (stored as core `v1` Events, as upstream, so that every client sees every
//! event; fields are renamed both ways), and of the built-in kind served in two versions,
//! `autoscaling/v1` and `autoscaling/v2` HorizontalPodAutoscalers. As upstream, objects
//! are stored in `v2` (the storage version); a request to `v1` has its body converted
//! to `v2` before it is stored and every object it reads converted back. Requests to
//! `v2` (kubectl's preferred version) read the stored bytes as they are, so list and
//! watch keep their fast paths. A `v1` write keeps the `v2`-only fields (other metrics,
//! `behavior`, conditions) of the object it replaces.

use serde_json::{Map, Value, json};
use waggle_apimachinery::registry::Resource;

const V1: &str = "autoscaling/v1";
const V2: &str = "autoscaling/v2";

/// Whether objects of `resource` are read and written through a conversion.
pub fn needed(resource: &Resource) -> bool {
    match resource.custom {
        Some(custom) => custom.storage_version != resource.version,
        None => (resource.group == "autoscaling" && resource.version == "v1") || is_events_v1(resource),
    }
}

/// Converts a stored object to the version `resource` is served in (no-op otherwise).
pub fn to_request(resource: &Resource, obj: &mut Value) {
    if resource.custom.is_some() {
        set_api_version(obj, &resource.api_version());
    } else if is_events_v1(resource) {
        if obj.get("apiVersion").and_then(Value::as_str) == Some("v1") {
            *obj = renamed(obj, EVENTS_V1, |(core, new)| (core, new));
        }
    } else if needed(resource) && obj.get("apiVersion").and_then(Value::as_str) == Some(V2) {
        *obj = v2_to_v1(obj);
    }
}

/// An object of `resource` (or a list of them) as the kind that prints it: an
/// `events.k8s.io/v1` Event prints as the core Event it is stored as, as upstream.
pub fn for_printing(resource: &Resource, body: &Value) -> Option<(&'static Resource, Value)> {
    if !is_events_v1(resource) {
        return None;
    }
    let core = waggle_apimachinery::registry::find("", "v1", "events").expect("core events are served");
    let mut body = body.clone();
    match body.get_mut("items").and_then(Value::as_array_mut) {
        Some(items) => items.iter_mut().for_each(|item| *item = event_to_core(item)),
        None => body = event_to_core(&body),
    }
    Some((core, body))
}

const EVENTS_V1: &str = "events.k8s.io/v1";

/// Fields of a core Event (stored) and their `events.k8s.io/v1` names; the others
/// (`reason`, `type`, `action`, `eventTime`, `series`, `related`, `reportingInstance`)
/// are the same in both.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn is_events_v1(resource: &Resource) -> bool {
    resource.group == "events.k8s.io" && resource.kind == "Event"
}

fn event_to_core(obj: &Value) -> Value {
    if obj.get("apiVersion").and_then(Value::as_str) != Some(EVENTS_V1) {
        return obj.clone();
    }
    renamed(obj, "v1", |(core, new)| (new, core))
}

/// `obj` with `apiVersion` set and each field of [`EVENT_FIELDS`] renamed: `direction`
/// picks (from, to) out of (core name, events.k8s.io name).
fn renamed(obj: &Value, api_version: &str, direction: fn((&'static str, &'static str)) -> (&'static str, &'static str)) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        for &pair in EVENT_FIELDS {
            let (from, to) = direction(pair);
            if let Some(value) = map.remove(from) {
                map.insert(to.to_owned(), value);
            }
        }
    }
    set_api_version(&mut out, api_version);
    out
}

/// The object to store for a write to `resource`: `obj` itself, or its `v2` form
/// completed with the `v2`-only fields of `previous` (the stored object it replaces),
/// or a custom resource in its storage version.
pub fn to_storage(resource: &Resource, obj: &Value, previous: Option<&Value>) -> Option<Value> {
    if is_events_v1(resource) {
        return Some(event_to_core(obj));
    }
    if let Some(custom) = resource.custom {
        if !needed(resource) {
            return None;
        }
        let mut stored = obj.clone();
        set_api_version(&mut stored, &format!("{}/{}", resource.group, custom.storage_version));
        return Some(stored);
    }
    if !needed(resource) || obj.get("apiVersion").and_then(Value::as_str) != Some(V1) {
        return None;
    }
    let mut stored = v1_to_v2(obj);
    if let Some(previous) = previous.filter(|p| p.get("apiVersion").and_then(Value::as_str) == Some(V2)) {
        let kept: Vec<Value> = items(previous, "/spec/metrics").iter().filter(|m| !is_cpu_utilization(m)).cloned().collect();
        if !kept.is_empty() {
            let mut metrics = items(&stored, "/spec/metrics").to_vec();
            metrics.extend(kept);
            stored["spec"]["metrics"] = Value::Array(metrics);
        }
        for (section, field) in [("spec", "behavior"), ("status", "conditions")] {
            if let Some(v) = previous.get(section).and_then(|s| s.get(field))
                && let Some(target) = stored.get_mut(section).and_then(Value::as_object_mut)
            {
                target.insert(field.into(), v.clone());
            }
        }
    }
    Some(stored)
}

fn set_api_version(obj: &mut Value, api_version: &str) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(api_version.to_owned()));
    }
}

fn items<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn is_cpu_utilization(metric: &Value) -> bool {
    metric.get("type").and_then(Value::as_str) == Some("Resource")
        && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && metric.pointer("/resource/target/type").and_then(Value::as_str) == Some("Utilization")
}

/// Copies `fields` of `from` into `to` where present.
fn copy(from: Option<&Value>, to: &mut Map<String, Value>, fields: &[&str]) {
    for field in fields {
        if let Some(v) = from.and_then(|f| f.get(*field)) {
            to.insert((*field).into(), v.clone());
        }
    }
}

const SPEC: &[&str] = &["scaleTargetRef", "minReplicas", "maxReplicas"];
const STATUS: &[&str] = &["observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas"];

fn v1_to_v2(obj: &Value) -> Value {
    let mut out = obj.clone();
    out["apiVersion"] = json!(V2);
    let mut spec = Map::new();
    copy(obj.get("spec"), &mut spec, SPEC);
    if let Some(target) = obj.pointer("/spec/targetCPUUtilizationPercentage").filter(|t| !t.is_null()) {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]),
        );
    }
    out["spec"] = Value::Object(spec);
    if let Some(status) = obj.get("status").filter(|s| s.is_object()) {
        let mut converted = Map::new();
        copy(Some(status), &mut converted, STATUS);
        if let Some(current) = status.get("currentCPUUtilizationPercentage").filter(|c| !c.is_null()) {
            converted.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}]),
            );
        }
        out["status"] = Value::Object(converted);
    }
    out
}

fn v2_to_v1(obj: &Value) -> Value {
    let mut out = obj.clone();
    out["apiVersion"] = json!(V1);
    let mut spec = Map::new();
    copy(obj.get("spec"), &mut spec, SPEC);
    if let Some(cpu) = items(obj, "/spec/metrics").iter().find(|m| is_cpu_utilization(m)) {
        if let Some(target) = cpu.pointer("/resource/target/averageUtilization") {
            spec.insert("targetCPUUtilizationPercentage".into(), target.clone());
        }
    }
    out["spec"] = Value::Object(spec);
    if let Some(status) = obj.get("status").filter(|s| s.is_object()) {
        let mut converted = Map::new();
        copy(Some(status), &mut converted, STATUS);
        let cpu = items(status, "/currentMetrics").iter().find(|m| {
            m.get("type").and_then(Value::as_str) == Some("Resource") && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        });
        if let Some(current) = cpu.and_then(|m| m.pointer("/resource/current/averageUtilization")) {
            converted.insert("currentCPUUtilizationPercentage".into(), current.clone());
        }
        out["status"] = Value::Object(converted);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use waggle_apimachinery::registry::find;

    #[test]
    fn v1_round_trips_through_storage_and_keeps_v2_only_fields() {
        let v1 = find("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        let v2 = find("autoscaling", "v2", "horizontalpodautoscalers").unwrap();
        let written = json!({"apiVersion": V1, "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 4,
                     "targetCPUUtilizationPercentage": 70},
            "status": {"currentReplicas": 2, "desiredReplicas": 2, "currentCPUUtilizationPercentage": 35}});
        let stored = to_storage(v1, &written, None).unwrap();
        assert_eq!(stored["apiVersion"], V2);
        assert_eq!(stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 70);
        assert_eq!(stored["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"], 35);
        assert!(stored["spec"].get("targetCPUUtilizationPercentage").is_none());
        let mut read = stored.clone();
        to_request(v1, &mut read);
        assert_eq!(read, written);
        // v2 requests read the stored object as is.
        let mut as_v2 = stored.clone();
        to_request(v2, &mut as_v2);
        assert_eq!(as_v2, stored);
        assert!(to_storage(v2, &stored, None).is_none());

        let mut previous = stored.clone();
        previous["spec"]["metrics"].as_array_mut().unwrap().push(json!({"type": "Pods", "pods": {"metric": {"name": "qps"}}}));
        previous["spec"]["behavior"] = json!({"scaleDown": {"stabilizationWindowSeconds": 60}});
        let updated = to_storage(v1, &written, Some(&previous)).unwrap();
        assert_eq!(updated["spec"]["metrics"].as_array().unwrap().len(), 2);
        assert_eq!(updated["spec"]["behavior"], previous["spec"]["behavior"]);
    }
}
