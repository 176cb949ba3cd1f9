//! What kube-apiserver's apiextensions-apiserver does to a custom resource with the
//! `openAPIV3Schema` of its CRD version (apiextensions.k8s.io/v1 JSONSchemaProps as JSON):
//!
//! - [`prune`] drops undeclared fields (upstream's decoder, reporting them for
//!   `fieldValidation=Strict|Warn`),
//! - [`apply_defaults`] drops disallowed nulls and fills in `default`s (upstream's decoder,
//!   on requests and on reads from storage),
//! - [`validate`] checks the object (upstream's create/update strategy: kube-openapi's schema
//!   validator, embedded-resource type meta, `x-kubernetes-list-type` uniqueness), with
//!   upstream's `field.Error` texts,
//! - [`validate_rules`] evaluates the schema's CEL rules (`x-kubernetes-validations`).
//!
//! Upstream applies them in that order: decode, prune, default, then validate. The server
//! handles the root `metadata` (and `apiVersion`/`kind`) itself: pruning never touches them
//! at the root or in an `x-kubernetes-embedded-resource`, and validation checks them only
//! as far as the schema declares them, as upstream.
//!
//! Field paths follow upstream: kube-openapi's dotted names (`spec.items[2].name`, map
//! keys as `spec.labels.foo`) for schema errors, `field.Path` form (`spec.map[foo]`) for
//! the list-type and embedded-resource checks, and `<nil>` for errors upstream reports
//! without a path (an `anyOf`/`oneOf`/`allOf`/`not` failure, or a root-level error).

mod cel_library;
mod defaults;
mod embedded;
mod formats;
mod gofmt;
mod listtype;
mod node;
mod openapi;
mod pattern;
mod prune;
mod rules;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::Value;

pub use defaults::apply_defaults;
pub use prune::prune;
pub use rules::{unenforceable_rules, validate_rules};
pub use validate::validate;

/// One failure, shaped like kube-apiserver's field.Error: reason is the Status cause
/// type (`FieldValueRequired`, `FieldValueInvalid`, `FieldValueTypeInvalid`,
/// `FieldValueNotSupported`, `FieldValueTooLong`, `FieldValueTooMany`, `FieldValueDuplicate`),
/// field is the dotted path (`spec.replicas`, `spec.items[2].name`), message is the
/// text after the path exactly as upstream prints it (e.g. `Invalid value: "x": spec.replicas in body must be of type integer: "string"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

/// Renders as upstream's `field.Error.Error()`: `<field>: <message>`.
impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Constructors mirroring `k8s.io/apimachinery/pkg/util/validation/field`; a `detail`
/// is appended after `: ` when not empty.
impl FieldError {
    fn new(reason: &'static str, field: &str, body: String, detail: &str) -> Self {
        let message = if detail.is_empty() { body } else { format!("{body}: {detail}") };
        FieldError { reason, field: field.to_owned(), message }
    }

    /// `field.Required`: `Required value`.
    pub(crate) fn required(field: &str, detail: &str) -> Self {
        Self::new("FieldValueRequired", field, "Required value".to_owned(), detail)
    }

    /// `field.Forbidden`: `Forbidden`.
    pub(crate) fn forbidden(field: &str, detail: &str) -> Self {
        Self::new("FieldValueForbidden", field, "Forbidden".to_owned(), detail)
    }

    /// `field.Invalid`: `Invalid value: <value>`.
    pub(crate) fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        Self::new("FieldValueInvalid", field, format!("Invalid value: {}", gofmt::bad_value(value)), detail)
    }

    /// `field.TypeInvalid`: `Invalid value: <value>` with reason `FieldValueTypeInvalid`.
    pub(crate) fn type_invalid(field: &str, value: &Value, detail: &str) -> Self {
        Self::new("FieldValueTypeInvalid", field, format!("Invalid value: {}", gofmt::bad_value(value)), detail)
    }

    /// `field.NotSupported`: `Unsupported value: <value>: supported values: "a", "b"`.
    pub(crate) fn not_supported(field: &str, value: &Value, supported: &[String]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| gofmt::quote(s)).collect();
        let detail = if quoted.is_empty() { String::new() } else { format!("supported values: {}", quoted.join(", ")) };
        Self::new("FieldValueNotSupported", field, format!("Unsupported value: {}", gofmt::bad_value(value)), &detail)
    }

    /// `field.TooLong`: `Too long: may not be more than <max> bytes` (the value is never shown).
    pub(crate) fn too_long(field: &str, max: Option<i64>) -> Self {
        let detail = match max {
            Some(max) if max >= 0 => format!("may not be more than {max} bytes"),
            _ => "value is too long".to_owned(),
        };
        Self::new("FieldValueTooLong", field, "Too long".to_owned(), &detail)
    }

    /// `field.TooMany`: `Too many: <actual>: must have at most <max> items`.
    pub(crate) fn too_many(field: &str, actual: Option<i64>, max: Option<i64>) -> Self {
        let detail = match max {
            Some(max) if max >= 0 => format!("must have at most {max} items"),
            _ => "has too many items".to_owned(),
        };
        let body = match actual {
            Some(actual) if actual >= 0 => format!("Too many: {actual}"),
            _ => "Too many".to_owned(),
        };
        Self::new("FieldValueTooMany", field, body, &detail)
    }

    /// `field.Duplicate`: `Duplicate value: <value>`.
    pub(crate) fn duplicate(field: &str, value: &Value) -> Self {
        Self::new("FieldValueDuplicate", field, format!("Duplicate value: {}", gofmt::bad_value(value)), "")
    }
}

/// `field.Path` joining: a child (`a.b`, just `b` at the root), a map key (`a[k]`), an
/// index (`a[0]`).
mod path {
    pub fn child(parent: &str, name: &str) -> String {
        if parent.is_empty() { name.to_owned() } else { format!("{parent}.{name}") }
    }

    pub fn key(parent: &str, key: &str) -> String {
        format!("{parent}[{key}]")
    }

    pub fn index(parent: &str, i: usize) -> String {
        format!("{parent}[{i}]")
    }
}
