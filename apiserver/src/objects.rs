//! Helpers on objects as JSON: metadata access, resourceVersion stamping, store codec.

use serde_json::{Map, Value};
use waggle_store::{KeyValue, Revision};

use crate::status::ApiError;

/// `metadata` of an object, created if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Map::new());
    }
    obj["metadata"].as_object_mut().expect("metadata is an object")
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or_default()
}

pub fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace").filter(|ns| !ns.is_empty())
}

/// `metadata.finalizers` (empty if absent).
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null())
}

pub fn set_resource_version(obj: &mut Value, revision: Revision) {
    meta_mut(obj).insert("resourceVersion".into(), Value::String(revision.to_string()));
}

/// Parses a `resourceVersion` as the store revision it encodes.
pub fn parse_resource_version(rv: &str) -> Result<Revision, ApiError> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version \"{rv}\"")))
}

/// The object as read from the store, with `resourceVersion` set from `mod_revision`.
pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("corrupt object at {}: {e}", kv.key)))?;
    set_resource_version(&mut obj, kv.mod_revision);
    Ok(obj)
}

/// The bytes to store: the object without `resourceVersion`.
pub fn encode(obj: &Value) -> Vec<u8> {
    let mut copy = obj.clone();
    strip_resource_version(&mut copy);
    serde_json::to_vec(&copy).expect("JSON values always serialize")
}

pub fn strip_resource_version(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
}

/// Now, as Kubernetes writes timestamps (RFC 3339, whole seconds, UTC).
pub fn now() -> String {
    timestamp_in(0)
}

/// `seconds` from now, RFC 3339.
pub fn timestamp_in(seconds: i64) -> String {
    let now = jiff::Timestamp::now().as_second() + seconds;
    jiff::Timestamp::from_second(now)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Seconds since the epoch of an RFC 3339 timestamp.
pub fn parse_timestamp(value: &str) -> Option<i64> {
    value.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// `apiVersion`/`kind` of a list of `kind`.
pub fn list_object(api_version: &str, kind: &str, items: Vec<Value>, metadata: Map<String, Value>) -> Value {
    let mut list = Map::new();
    list.insert("kind".into(), Value::String(format!("{kind}List")));
    list.insert("apiVersion".into(), Value::String(api_version.into()));
    list.insert("metadata".into(), Value::Object(metadata));
    list.insert("items".into(), Value::Array(items));
    Value::Object(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn store_codec_strips_and_restamps_resource_version() {
        let obj = json!({"metadata": {"name": "a", "resourceVersion": "7"}});
        let bytes = encode(&obj);
        assert!(!String::from_utf8_lossy(&bytes).contains("resourceVersion"));
        let kv = KeyValue { key: "k".into(), value: bytes, create_revision: 3, mod_revision: 9 };
        assert_eq!(decode(&kv).unwrap()["metadata"]["resourceVersion"], "9");
    }

    #[test]
    fn timestamps_round_trip() {
        let t = now();
        assert!(t.ends_with('Z') && t.len() == 20, "{t}");
        assert!(parse_timestamp(&t).is_some());
    }
}
