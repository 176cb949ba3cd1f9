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

/// The fields of `obj` its schema does not declare: a built-in kind's OpenAPI schema,
/// or a custom resource's structural schema (which prunes them when it is written).
fn unknown(resource: &Resource, obj: &Value) -> Vec<String> {
    match resource.custom {
        Some(custom) => custom
            .structural_schema()
            .map(|schema| waggle_apimachinery::schema::prune(schema, &mut obj.clone()))
            .unwrap_or_default(),
        None => unknown_fields(obj),
    }
}

/// Type-checks a create/update body and judges its unknown fields; returns the warnings.
pub fn check(resource: &Resource, params: &Params, obj: &Value) -> Result<Vec<String>, ApiError> {
    typed::check(resource, obj)?;
    let warnings = judge(resource, params, unknown(resource, obj))?;
    Ok(with_definition_warnings(resource, obj, warnings))
}

/// Adds what a CustomResourceDefinition's author should know (rules not enforced).
fn with_definition_warnings(resource: &Resource, obj: &Value, mut warnings: Vec<String>) -> Vec<String> {
    if crate::crd::is_definitions(resource.group, resource.plural) {
        warnings.extend(crate::crd::warnings(obj));
    }
    warnings
}

/// Like [`check`] for a patch: only fields the patch introduced count (objects stored
/// before keep what they had).
pub fn check_patched(resource: &Resource, params: &Params, current: &Value, patched: &Value) -> Result<Vec<String>, ApiError> {
    typed::check(resource, patched)?;
    let before = unknown(resource, current);
    let introduced = unknown(resource, patched).into_iter().filter(|f| !before.contains(f)).collect();
    let warnings = judge(resource, params, introduced)?;
    Ok(with_definition_warnings(resource, patched, warnings))
}
