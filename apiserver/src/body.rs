//! Request bodies: size limit, JSON or YAML, and the object checks every write makes
//! (kind and apiVersion, name and namespace against the URL).

use axum::body::Body;
use http::HeaderMap;
use serde_json::Value;
use waggle_apimachinery::registry::Resource;

use crate::objects;
use crate::status::ApiError;

/// Reads the whole body, failing with 413 above `limit` bytes.
pub async fn read(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.to_string().contains("length limit"))
            || e.to_string().contains("length limit");
        if too_large {
            ApiError::TooLarge { message: format!("Request entity too large: limit is {limit}") }
        } else {
            ApiError::bad_request(format!("failed to read the request body: {e}"))
        }
    })
}

/// The media type of the body, without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .unwrap_or_else(|| "application/json".into())
}

/// Parses a JSON or YAML document (as the Content-Type says).
pub fn parse(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let media = content_type(headers);
    let value: Value = match media.as_str() {
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?,
        "application/vnd.kubernetes.protobuf" => waggle_apimachinery::protobuf::decode(bytes)
            .map_err(|e| ApiError::bad_request(format!("failed to decode protobuf body: {e}")))?,
        "application/json" | "" | "*/*" => serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}")))?,
        other => {
            return Err(ApiError::UnsupportedMediaType {
                message: format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other})"),
            });
        }
    };
    if !value.is_object() {
        return Err(ApiError::bad_request("the request body must be a JSON or YAML object"));
    }
    Ok(value)
}

/// Checks `apiVersion`/`kind` of an object for `resource` (filling them when absent).
pub fn check_kind(resource: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    let expected_version = resource.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = Value::String(expected_version),
        Some(v) if v == expected_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected_version})"
            )));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = Value::String(resource.kind.into()),
        Some(k) if k == resource.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                resource.kind
            )));
        }
    }
    Ok(())
}

/// Checks the body of a subresource that takes its own kind (an Eviction, a
/// TokenRequest): `kind` and one of `api_versions` must be set, and the error names
/// the first of them, as kube-apiserver's does.
pub fn check_request_kind(obj: &Value, kind: &str, api_versions: &[&str]) -> Result<(), ApiError> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let given_kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    // Neither given: the request's own (kube-rs sends evictions so), as upstream decodes.
    if given_kind == kind && api_versions.contains(&api_version) || (given_kind.is_empty() && api_version.is_empty()) {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "the API version in the data ({api_version}) does not match the expected API version ({})",
        api_versions.first().copied().unwrap_or_default()
    )))
}

/// Checks (and fills) `metadata.namespace` against the URL's namespace.
pub fn check_namespace(resource: &Resource, obj: &mut Value, namespace: Option<&str>) -> Result<(), ApiError> {
    if !resource.namespaced() {
        objects::meta_mut(obj).remove("namespace");
        return Ok(());
    }
    let url_ns = namespace.unwrap_or_default();
    match objects::namespace(obj) {
        Some(ns) if ns != url_ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            objects::meta_mut(obj).insert("namespace".into(), Value::String(url_ns.into()));
            Ok(())
        }
    }
}

/// Checks (and fills) `metadata.name` against the URL's name.
pub fn check_name(obj: &mut Value, url_name: &str) -> Result<(), ApiError> {
    match objects::meta_str(obj, "name").filter(|n| !n.is_empty()) {
        Some(name) if name != url_name => Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({url_name})"
        ))),
        _ => {
            objects::meta_mut(obj).insert("name".into(), Value::String(url_name.into()));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_yaml_and_rejects_garbage() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, "application/yaml".parse().unwrap());
        let v = parse(&headers, b"kind: Pod\nmetadata:\n  name: x\n").unwrap();
        assert_eq!(v["metadata"]["name"], "x");
        let json_headers = HeaderMap::new();
        assert_eq!(parse(&json_headers, b"{nope").unwrap_err().code(), 400);
        assert_eq!(parse(&json_headers, b"[1]").unwrap_err().code(), 400);
    }

    #[test]
    fn kind_and_name_checks() {
        let pods = waggle_apimachinery::registry::find("", "v1", "pods").unwrap();
        let mut obj = json!({"metadata": {"name": "a"}});
        check_kind(pods, &mut obj).unwrap();
        assert_eq!(obj["kind"], "Pod");
        let mut wrong = json!({"apiVersion": "apps/v1", "kind": "Pod"});
        assert!(check_kind(pods, &mut wrong).is_err());
        assert!(check_name(&mut obj, "b").is_err());
        let mut ns = json!({"metadata": {"namespace": "x"}});
        assert!(check_namespace(pods, &mut ns, Some("y")).is_err());
    }
}
