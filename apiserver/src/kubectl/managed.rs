//! `metadata.managedFields` on ordinary writes: every create, update and non-apply patch
//! hands the request's field manager the fields it changed
//! ([`waggle_apimachinery::apply::record_update`]), after defaulting, as upstream.

use serde_json::Value;
use waggle_apimachinery::apply::record_update;

use super::context;

/// Updates `new`'s managed fields for a write of `old` → `new` to `subresource` (`""` or
/// `"status"`) by the current request's manager; a no-op outside a request.
pub fn record(old: Option<&Value>, new: &mut Value, subresource: &str) {
    if let Some(manager) = context::current_manager() {
        *new = record_update(old, new, &manager, subresource, jiff::Timestamp::now());
    }
}
