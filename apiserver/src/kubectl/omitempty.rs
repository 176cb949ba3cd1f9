//! Empty metadata collections vanish on write, as upstream's `omitempty` JSON tags make
//! them vanish when kube-apiserver re-encodes a typed object: after `kubectl annotate
//! cfg owner-` removes the last annotation, `{.metadata.annotations}` is empty rather
//! than `{}`.

use serde_json::Value;

/// The `ObjectMeta` fields tagged `omitempty` that writes commonly empty.
const OMIT_WHEN_EMPTY: &[&str] = &["labels", "annotations", "finalizers", "ownerReferences"];

/// Removes empty maps and lists among `metadata`'s `omitempty` fields.
pub fn drop_empty_metadata(obj: &mut Value) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    meta.retain(|key, value| {
        let empty = match value {
            Value::Object(map) => map.is_empty(),
            Value::Array(list) => list.is_empty(),
            Value::Null => true,
            _ => false,
        };
        !(empty && OMIT_WHEN_EMPTY.contains(&key.as_str()))
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn empty_collections_go_and_others_stay() {
        let mut obj = json!({"metadata": {"name": "x", "labels": {}, "annotations": {"a": "1"}, "finalizers": [], "ownerReferences": null}});
        drop_empty_metadata(&mut obj);
        assert_eq!(
            obj,
            json!({"metadata": {"name": "x", "annotations": {"a": "1"}}})
        );
    }
}
