//! `metadata.managedFields` on ordinary writes: every create, update and non-apply patch
//! hands the request's field manager the fields it changed
//! ([`waggle_apimachinery::apply::record_update`]), after defaulting, as upstream.

use serde_json::Value;
use waggle_apimachinery::apply::{Kind, record_update};
use waggle_apimachinery::registry::Resource;

use super::context;

/// Updates `new`'s managed fields for a write of `old` → `new` to `subresource` (`""` or
/// `"status"`) by the current request's manager; a no-op outside a request.
pub fn record(resource: &Resource, old: Option<&Value>, new: &mut Value, subresource: &str) {
    if let Some(manager) = context::current_manager() {
        *new = record_update(Kind::of(resource), old, new, &manager, subresource, jiff::Timestamp::now());
    }
}
