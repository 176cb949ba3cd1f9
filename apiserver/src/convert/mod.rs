//! Version conversion between what a request's version says and what is stored:
//!
//! - custom resources served in several versions: stored in the storage version,
//!   conversion strategy `None` (only `apiVersion` changes), as upstream; and read with
//!   their schema's defaults applied, as upstream does (objects stored before a default
//!   was added get it);
//! - `events.k8s.io/v1` Events, stored as core `v1` Events ([`events`]), so every client
//!   sees every event;
//! - `autoscaling/v1` HorizontalPodAutoscalers, stored as `v2` ([`hpa`]), with what only
//!   `v2` says carried in annotations, as upstream.
//!
//! Requests in the stored version read the stored bytes as they are, so list and watch
//! keep their fast paths.

mod events;
mod hpa;

use serde_json::Value;
use waggle_apimachinery::registry::Resource;

fn is_events_v1(resource: &Resource) -> bool {
    resource.group == "events.k8s.io" && resource.kind == "Event"
}

fn is_hpa_v1(resource: &Resource) -> bool {
    resource.group == "autoscaling" && resource.version == "v1"
}

/// Whether objects of `resource` are read and written through a conversion.
pub fn needed(resource: &Resource) -> bool {
    match resource.custom {
        Some(custom) => custom.storage_version != resource.version || custom.defaults_on_read,
        None => is_hpa_v1(resource) || is_events_v1(resource),
    }
}

fn api_version_of(obj: &Value) -> &str {
    obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default()
}

/// Converts a stored object to the version `resource` is served in (no-op otherwise).
pub fn to_request(resource: &Resource, obj: &mut Value) {
    if let Some(custom) = resource.custom {
        set_api_version(obj, &resource.api_version());
        if let Some(schema) = custom.structural_schema().filter(|_| custom.defaults_on_read) {
            waggle_apimachinery::schema::apply_defaults(schema, obj);
        }
    } else if is_events_v1(resource) && api_version_of(obj) == "v1" {
        *obj = events::from_core(obj);
    } else if is_hpa_v1(resource) && api_version_of(obj) == hpa::V2 {
        *obj = hpa::v2_to_v1(obj);
    }
}

/// The object to store for a write of `obj` to `resource`, when it is not `obj` itself.
pub fn to_storage(resource: &Resource, obj: &Value) -> Option<Value> {
    if is_events_v1(resource) {
        return Some(events::to_core(obj));
    }
    if let Some(custom) = resource.custom {
        if custom.storage_version == resource.version {
            return None;
        }
        let mut stored = obj.clone();
        set_api_version(&mut stored, &format!("{}/{}", resource.group, custom.storage_version));
        return Some(stored);
    }
    (is_hpa_v1(resource) && api_version_of(obj) == hpa::V1).then(|| hpa::v1_to_v2(obj))
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
        Some(items) => items.iter_mut().for_each(|item| *item = events::to_core(item)),
        None => body = events::to_core(&body),
    }
    Some((core, body))
}

fn set_api_version(obj: &mut Value, api_version: &str) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(api_version.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use waggle_apimachinery::registry::find;

    use super::*;

    #[test]
    fn each_version_reads_and_writes_its_own_form() {
        let v1 = find("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        let v2 = find("autoscaling", "v2", "horizontalpodautoscalers").unwrap();
        let written = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4, "targetCPUUtilizationPercentage": 70}});
        let stored = to_storage(v1, &written).unwrap();
        assert_eq!(stored["apiVersion"], "autoscaling/v2");
        let mut read = stored.clone();
        to_request(v1, &mut read);
        assert_eq!(read, written);
        // v2 requests read the stored object as is.
        let mut as_v2 = stored.clone();
        to_request(v2, &mut as_v2);
        assert_eq!(as_v2, stored);
        assert!(to_storage(v2, &stored).is_none() && !needed(v2));

        let events = find("events.k8s.io", "v1", "events").unwrap();
        let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "n", "regarding": {"name": "x"}, "reason": "R"});
        let core = to_storage(events, &event).unwrap();
        assert_eq!(
            core,
            json!({"apiVersion": "v1", "kind": "Event", "message": "n", "involvedObject": {"name": "x"}, "reason": "R"})
        );
        let mut back = core.clone();
        to_request(events, &mut back);
        assert_eq!(back, event);
        let (printer, printable) = for_printing(events, &json!({"items": [event]})).unwrap();
        assert_eq!((printer.group, printable["items"][0]["message"].as_str()), ("", Some("n")));
    }
}
