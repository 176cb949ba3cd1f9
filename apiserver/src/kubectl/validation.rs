//! `fieldValidation` on create, update and patch: fields the OpenAPI schema does not
//! declare fail the request (`Strict`, upstream's `strict decoding error` BadRequest),
//! come back as `Warning` headers (`Warn`, the default) or pass (`Ignore`).

use serde_json::Value;
use waggle_apimachinery::openapi::validate::{strict_decoding_message, unknown_field_warnings, unknown_fields};
use waggle_apimachinery::registry::Resource;

use crate::params::Params;
use crate::status::ApiError;
use crate::typed;

/// The `fieldValidation` directive of a request.
fn directive(params: &Params) -> Result<&str, ApiError> {
    match params.value("fieldValidation").unwrap_or("Warn") {
        d @ ("Strict" | "Warn" | "Ignore") => Ok(d),
        other => Err(ApiError::bad_request(format!("fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got \"{other}\""))),
    }
}

fn judge(resource: &Resource, params: &Params, unknown: Vec<String>) -> Result<Vec<String>, ApiError> {
    match directive(params)? {
        "Strict" if !unknown.is_empty() => Err(ApiError::bad_request(strict_decoding_message(resource.kind, resource.version, &unknown))),
        "Ignore" => Ok(Vec::new()),
        _ => Ok(unknown_field_warnings(&unknown)),
    }
}

/// Type-checks a create/update body and judges its unknown fields; returns the warnings.
pub fn check(resource: &Resource, params: &Params, obj: &Value) -> Result<Vec<String>, ApiError> {
    typed::check(resource, obj)?;
    judge(resource, params, unknown_fields(obj))
}

/// Like [`check`] for a patch: only fields the patch introduced count (objects stored
/// before keep what they had).
pub fn check_patched(resource: &Resource, params: &Params, current: &Value, patched: &Value) -> Result<Vec<String>, ApiError> {
    typed::check(resource, patched)?;
    let before = unknown_fields(current);
    let introduced = unknown_fields(patched).into_iter().filter(|f| !before.contains(f)).collect();
    judge(resource, params, introduced)
}
