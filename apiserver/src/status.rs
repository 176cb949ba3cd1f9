//! API errors and the `meta.k8s.io/v1` `Status` objects they become on the wire.
//!
//! Messages follow kube-apiserver's wording so that clients (kubectl, kube-rs, the
//! Python client) show users what they would show against upstream.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};
use waggle_store::StoreError;

/// One field problem of an `Invalid` error (`details.causes[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, ...
    pub reason: &'static str,
    /// The field path: `spec.containers[0].image`.
    pub field: String,
    pub message: String,
}

impl Cause {
    pub fn required(field: impl Into<String>) -> Self {
        Cause {
            reason: "FieldValueRequired",
            field: field.into(),
            message: "Required value".into(),
        }
    }

    pub fn invalid(field: impl Into<String>, value: &Value, detail: impl AsRef<str>) -> Self {
        Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!(
                "Invalid value: {}: {}",
                render_value(value),
                detail.as_ref()
            ),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        Cause {
            reason: "FieldValueDuplicate",
            field: field.into(),
            message: format!("Duplicate value: {}", render_value(value)),
        }
    }

    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        Cause {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                render_value(value),
                list.join(", ")
            ),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Cause {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: format!("Forbidden: {}", detail.into()),
        }
    }

    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Cause {
            reason: "FieldValueTooLong",
            field: field.into(),
            message: format!("Too long: may not be more than {max} bytes"),
        }
    }

    /// `field: message`, as the aggregated `Invalid` message lists each cause.
    fn summary(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

/// Everything a request can fail with; each maps to one HTTP code and `Status` reason.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { message: String },
    #[error("{message}")]
    NotFound {
        message: String,
        kind: String,
        name: String,
    },
    #[error("{message}")]
    AlreadyExists {
        message: String,
        kind: String,
        name: String,
    },
    #[error("{message}")]
    Conflict {
        message: String,
        kind: String,
        name: String,
    },
    #[error("{message}")]
    Invalid {
        message: String,
        kind: String,
        name: String,
        causes: Vec<Cause>,
    },
    #[error("{message}")]
    Forbidden {
        message: String,
        kind: String,
        name: String,
    },
    #[error("{message}")]
    Gone { message: String },
    #[error("{message}")]
    MethodNotAllowed { message: String },
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("{message}")]
    NotAcceptable { message: String },
    #[error("{message}")]
    TooLarge { message: String },
    #[error("{message}")]
    Internal { message: String },
    #[error("{message}")]
    Unauthorized { message: String },
    /// Refused for now (429): an eviction a disruption budget does not allow.
    #[error("{message}")]
    TooManyRequests { message: String, causes: Vec<(&'static str, String)> },
    /// The request asked for a state the server has not reached yet (504, retry).
    #[error("{message}")]
    Timeout { message: String },
    /// A failure that is not an API status (a backend that cannot be dialled): 500 with
    /// no reason, which kubectl prints as `Error from server: <message>`.
    #[error("{message}")]
    Unknown { message: String },
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::Internal {
            message: message.into(),
        }
    }

    /// `pods "x" not found`
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        ApiError::NotFound {
            message: format!("{} \"{name}\" not found", qualified(group, plural)),
            kind: qualified(group, plural),
            name: name.into(),
        }
    }

    /// `pods "x" already exists`
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        ApiError::AlreadyExists {
            message: format!("{} \"{name}\" already exists", qualified(group, plural)),
            kind: qualified(group, plural),
            name: name.into(),
        }
    }

    /// The optimistic-concurrency failure of an update with a stale resourceVersion.
    pub fn conflict(group: &str, plural: &str, name: &str) -> Self {
        ApiError::Conflict {
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(group, plural)
            ),
            kind: qualified(group, plural),
            name: name.into(),
        }
    }

    /// `Pod "x" is invalid: [a: Required value, b: ...]`; kinds outside the core group
    /// are qualified (`Deployment.apps "x" is invalid: ...`), as upstream's `NewInvalid`.
    pub fn invalid(kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let resources = waggle_apimachinery::registry::RESOURCES;
        // A served kind, or the kind a subresource takes (`TokenRequest`, `Eviction`).
        let group = resources
            .iter()
            .find(|r| r.kind == kind)
            .map(|r| r.group)
            .or_else(|| {
                resources
                    .iter()
                    .flat_map(|r| r.subresources.iter().filter_map(|s| r.subresource_info(s)))
                    .find(|info| info.kind == kind)
                    .map(|info| info.group)
            })
            .unwrap_or("");
        Self::invalid_in(group, kind, name, causes)
    }

    /// [`ApiError::invalid`] for a kind of `group` (custom resources' kinds are not
    /// in the built-in table).
    pub fn invalid_in(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified_kind = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let kind = qualified_kind.as_str();
        let message = match causes.as_slice() {
            [one] => format!("{kind} \"{name}\" is invalid: {}", one.summary()),
            many => {
                let parts: Vec<String> = many.iter().map(Cause::summary).collect();
                format!("{kind} \"{name}\" is invalid: [{}]", parts.join(", "))
            }
        };
        ApiError::Invalid {
            message,
            kind: kind.into(),
            name: name.into(),
            causes,
        }
    }

    /// `pods "x" is forbidden: reason`
    pub fn forbidden(group: &str, plural: &str, name: &str, reason: &str) -> Self {
        ApiError::Forbidden {
            message: format!(
                "{} \"{name}\" is forbidden: {reason}",
                qualified(group, plural)
            ),
            kind: qualified(group, plural),
            name: name.into(),
        }
    }

    pub fn gone(message: impl Into<String>) -> Self {
        ApiError::Gone {
            message: message.into(),
        }
    }

    pub fn code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable { .. } => StatusCode::NOT_ACCEPTABLE,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal { .. } | ApiError::Unknown { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "BadRequest",
            ApiError::NotFound { .. } => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::Gone { .. } => "Expired",
            ApiError::MethodNotAllowed { .. } => "MethodNotAllowed",
            ApiError::UnsupportedMediaType { .. } => "UnsupportedMediaType",
            ApiError::NotAcceptable { .. } => "NotAcceptable",
            ApiError::TooLarge { .. } => "RequestEntityTooLarge",
            ApiError::Internal { .. } => "InternalError",
            ApiError::Unauthorized { .. } => "Unauthorized",
            ApiError::Timeout { .. } => "Timeout",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
            ApiError::Unknown { .. } => "",
        }
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        let details = match self {
            ApiError::NotFound { kind, name, .. }
            | ApiError::AlreadyExists { kind, name, .. }
            | ApiError::Conflict { kind, name, .. }
            | ApiError::Forbidden { kind, name, .. } => Some(split_kind(kind, name, None)),
            ApiError::Invalid {
                kind, name, causes, ..
            } => Some(split_kind(kind, name, Some(causes))),
            ApiError::Timeout { .. } => Some(json!({"retryAfterSeconds": 1})),
            ApiError::TooManyRequests { causes, .. } => Some(json!({
                "causes": causes.iter().map(|(reason, message)| json!({"reason": reason, "message": message})).collect::<Vec<_>>(),
            })),
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        if self.reason().is_empty() {
            // `reason` is omitempty upstream.
            status.as_object_mut().map(|s| s.remove("reason"));
        }
        status
    }

    /// Maps a storage failure that the caller did not handle specifically.
    pub fn from_store(err: StoreError) -> Self {
        match err {
            StoreError::Compacted {
                requested,
                compacted,
            } => ApiError::gone(format!(
                "too old resource version: {requested} ({compacted})"
            )),
            StoreError::FutureRevision { requested, current } => ApiError::Timeout {
                message: format!("Too large resource version: {requested}, current: {current}"),
            },
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// `details` of a Status: `kind` is the plural (optionally `plural.group`), as upstream.
fn split_kind(kind: &str, name: &str, causes: Option<&Vec<Cause>>) -> Value {
    let (plural, group) = kind.split_once('.').unwrap_or((kind, ""));
    let mut details = json!({ "name": name, "kind": plural });
    if !group.is_empty() {
        details["group"] = Value::String(group.into());
    }
    if let Some(causes) = causes {
        details["causes"] = causes
            .iter()
            .map(|c| json!({ "reason": c.reason, "message": c.message, "field": c.field }))
            .collect();
    }
    details
}

/// `pods` for core, `deployments.apps` otherwise.
pub fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_owned()
    } else {
        format!("{plural}.{group}")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self, ApiError::Internal { .. }) {
            tracing::warn!(error = %self, "internal error");
        }
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        (
            self.code(),
            [(http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// The `Status` a successful delete of an already-gone object returns.
pub fn success_status(group: &str, plural: &str, name: &str, uid: &str) -> Value {
    let mut details = json!({ "name": name, "kind": plural, "uid": uid });
    if !group.is_empty() {
        details["group"] = Value::String(group.into());
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_message_lists_causes_like_upstream() {
        let one = ApiError::invalid(
            "Pod",
            "x",
            vec![Cause::required("spec.containers[0].image")],
        );
        assert_eq!(
            one.to_string(),
            "Pod \"x\" is invalid: spec.containers[0].image: Required value"
        );
        let two = ApiError::invalid(
            "Pod",
            "x",
            vec![
                Cause::required("a"),
                Cause::invalid("b", &json!("B"), "bad"),
            ],
        );
        assert_eq!(
            two.to_string(),
            "Pod \"x\" is invalid: [a: Required value, b: Invalid value: \"B\": bad]"
        );
        let status = two.to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(status["details"]["causes"][1]["field"], "b");
    }

    #[test]
    fn group_qualified_kinds_split_in_details() {
        let err = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(err.to_string(), "deployments.apps \"web\" not found");
        let status = err.to_status();
        assert_eq!(status["details"]["kind"], "deployments");
        assert_eq!(status["details"]["group"], "apps");
        assert_eq!(status["reason"], "NotFound");
    }
}
