//! Successful responses: an object or list, with warnings, negotiated as JSON or as a
//! server-side `Table` (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;
use waggle_apimachinery::registry::Resource;

use crate::table;

/// What a handler produced.
pub struct Reply {
    pub code: StatusCode,
    pub body: Value,
    /// `Warning` headers (`299 - "text"`).
    pub warnings: Vec<String>,
    /// The body already serialized (large lists); `body` is then unused.
    pub raw: Option<Vec<u8>>,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Reply { code: StatusCode::OK, body, warnings: Vec::new(), raw: None }
    }

    /// A 200 with a body serialized by the handler (never converted to a Table).
    pub fn raw(bytes: Vec<u8>) -> Self {
        Reply { code: StatusCode::OK, body: Value::Null, warnings: Vec::new(), raw: Some(bytes) }
    }

    pub fn created(body: Value) -> Self {
        Reply { code: StatusCode::CREATED, body, warnings: Vec::new(), raw: None }
    }

    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }

    /// Renders for the client's `Accept` header.
    pub fn render(self, resource: Option<&Resource>, headers: &HeaderMap) -> Response {
        let Reply { code, body, warnings, raw } = self;
        let bytes = match raw {
            Some(raw) => raw,
            None => {
                let body = match resource {
                    Some(resource) if wants_table(headers) && is_resource_body(&body) => table::to_table(resource, &body, headers),
                    _ => body,
                };
                serde_json::to_vec(&body).unwrap_or_default()
            }
        };
        let mut response = (code, [(http::header::CONTENT_TYPE, "application/json")], bytes).into_response();
        for warning in warnings {
            let text = format!("299 - \"{}\"", warning.replace('"', "\\\""));
            if let Ok(value) = HeaderValue::from_str(&text) {
                response.headers_mut().append(http::header::WARNING, value);
            }
        }
        response
    }
}

/// Whether the client accepts a `meta.k8s.io/v1` Table.
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let params: Vec<&str> = range.split(';').map(str::trim).collect();
            params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io") && params.contains(&"v=v1")
        })
}

fn is_resource_body(body: &Value) -> bool {
    body.get("kind").and_then(Value::as_str).is_some_and(|k| k != "Status")
}
