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
    let include = crate::kubectl::context::include_object();
    let now = jiff::Timestamp::now();
    match crate::convert::for_printing(resource, body) {
        Some((printer, printable)) => table::to_table(printer, &printable, include, now),
        None => table::to_table(resource, body, include, now),
    }
}
