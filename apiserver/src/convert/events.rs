//! `events.k8s.io/v1` Events, stored as the core `v1` Events they are upstream: the
//! same object under other field names.

use serde_json::Value;

use super::set_api_version;

pub const API_VERSION: &str = "events.k8s.io/v1";

/// Fields of a core Event (stored) and their `events.k8s.io/v1` names; the others
/// (`reason`, `type`, `action`, `eventTime`, `series`, `related`, `reportingInstance`)
/// are the same in both.
const FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// A stored core Event as `events.k8s.io/v1` serves it.
pub fn from_core(obj: &Value) -> Value {
    renamed(obj, API_VERSION, |(core, new)| (core, new))
}

/// An `events.k8s.io/v1` Event as it is stored (anything else is left as it is).
pub fn to_core(obj: &Value) -> Value {
    if obj.get("apiVersion").and_then(Value::as_str) != Some(API_VERSION) {
        return obj.clone();
    }
    renamed(obj, "v1", |(core, new)| (new, core))
}

/// `obj` with `apiVersion` set and each field of [`FIELDS`] renamed: `direction` picks
/// (from, to) out of (core name, events.k8s.io name).
fn renamed(
    obj: &Value,
    api_version: &str,
    direction: fn((&'static str, &'static str)) -> (&'static str, &'static str),
) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        for &pair in FIELDS {
            let (from, to) = direction(pair);
            if let Some(value) = map.remove(from) {
                map.insert(to.to_owned(), value);
            }
        }
    }
    set_api_version(&mut out, api_version);
    out
}
