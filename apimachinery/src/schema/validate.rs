//! Validation of a custom resource, as the custom resource strategy's `Validate` does with
//! the schema: kube-openapi's validator (converted to `field.Error`s by apiextensions-
//! apiserver's `kubeOpenAPIResultToFieldErrors`), then the embedded resources' type meta,
//! then `x-kubernetes-list-type` uniqueness.

use serde_json::Value;

use super::FieldError;
use super::embedded;
use super::listtype;
use super::node::Node;
use super::openapi::{Code, Issue, Validator};

/// Validates the object against the schema (types incl. integer vs number, `nullable`,
/// `format` for the common formats upstream checks (int32, int64, date-time, byte, ...) as far as upstream does,
/// `enum`, `required`, minimum/maximum/exclusive*, multipleOf, minLength/maxLength,
/// pattern, minItems/maxItems, uniqueItems, minProperties/maxProperties,
/// `x-kubernetes-int-or-string`, `x-kubernetes-list-type` set/map uniqueness with
/// `x-kubernetes-list-map-keys`, allOf/anyOf/oneOf/not as upstream's kube-openapi validator treats them).
///
/// As upstream, `int32`/`int64`/`float`/`double` formats are not checked (apiextensions-
/// apiserver strips them), `null` fails any `enum`, and the errors come in upstream's order:
/// per value its type, composition, string, format, number, array, enum and object checks.
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    let root = Node::new(schema);
    let mut errors: Vec<FieldError> =
        Validator::default().validate(root, obj, "").issues.into_iter().map(to_field_error).collect();
    errors.extend(embedded::validate(root, obj));
    errors.extend(listtype::validate(root, obj));
    errors
}

/// apiextensions-apiserver's `kubeOpenAPIResultToFieldErrors` for one error.
fn to_field_error(issue: Issue) -> FieldError {
    if issue.code == Code::Composite {
        return FieldError::invalid("<nil>", &Value::String(String::new()), &issue.message);
    }
    let field = match issue.name.as_str() {
        "" | "." => "<nil>",
        name => name.strip_prefix('.').unwrap_or(name),
    };
    let shown = || match &issue.value {
        None | Some(Value::Null) => Value::String(String::new()),
        Some(v) => v.clone(),
    };
    let size = |v: &Option<Value>| v.as_ref().and_then(Value::as_i64);
    match issue.code {
        Code::Required => FieldError::required(field, ""),
        Code::Enum => {
            let supported: Vec<String> = issue
                .values
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => super::gofmt::json(other),
                })
                .collect();
            FieldError::not_supported(field, issue.value.as_ref().unwrap_or(&Value::Null), &supported)
        }
        Code::TooLong => FieldError::too_long(field, issue.valid),
        Code::MaxItems | Code::TooManyProperties => FieldError::too_many(field, size(&issue.value), issue.valid),
        Code::InvalidType => FieldError::type_invalid(field, &shown(), &issue.message),
        Code::Other | Code::Composite => FieldError::invalid(field, &shown(), &issue.message),
    }
}
