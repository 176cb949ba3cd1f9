//! Server-side printing (`meta.k8s.io/v1` Table) for `kubectl get`: the per-kind
//! columns live in `waggle_apimachinery::table`; this picks `includeObject`.

use http::HeaderMap;
use serde_json::Value;
use waggle_apimachinery::registry::Resource;
use waggle_apimachinery::table;

/// Converts an object or a list to a Table; the rows carry what the request's
/// `includeObject` asks for (`PartialObjectMetadata` by default; kubectl asks for the
/// whole `Object` when it sorts with `--sort-by`).
pub fn to_table(resource: &Resource, body: &Value, _headers: &HeaderMap) -> Value {
    table::to_table(resource, body, crate::kubectl::context::include_object(), jiff::Timestamp::now())
}
