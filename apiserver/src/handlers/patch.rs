//! PATCH: JSON patch (RFC 6902) and JSON merge patch (RFC 7386) here; strategic merge
//! patch from `waggle_apimachinery::strategic_merge`; server-side apply in
//! [`super::apply`].

use http::HeaderMap;
use serde_json::Value;

use super::write::{Mode, Update};
use crate::body;
use crate::params::Params;
use crate::reply::Reply;
use crate::state::ApiState;
use crate::status::ApiError;
use crate::target::Target;

/// The patch formats a PATCH may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    StrategicMerge,
    Apply,
}

impl PatchKind {
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        match body::content_type(headers).as_str() {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchKind::Apply),
            other => Err(unsupported(other)),
        }
    }
}

fn unsupported(media: &str) -> ApiError {
    ApiError::UnsupportedMediaType {
        message: format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {media})"
        ),
    }
}

/// Parses the patch document once (JSON for every kind but apply, which may be YAML).
pub fn parse_patch(kind: PatchKind, bytes: &[u8]) -> Result<Value, ApiError> {
    let parsed = match kind {
        PatchKind::Apply => serde_yaml::from_slice::<Value>(bytes).map_err(|e| e.to_string()),
        _ => serde_json::from_slice::<Value>(bytes).map_err(|e| e.to_string()),
    };
    parsed.map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}

/// A failed JSON patch in the words of the library kube-apiserver uses (evanphx/json-patch).
fn json_patch_message(e: &json_patch::PatchError) -> String {
    match e.kind {
        json_patch::PatchErrorKind::TestFailed => {
            format!("testing value {} failed: test failed", e.path)
        }
        _ => e.to_string(),
    }
}

/// Applies a patch to `current`, returning the patched object.
pub fn apply_patch(kind: PatchKind, patch: &Value, current: &Value) -> Result<Value, ApiError> {
    let mut doc = current.clone();
    match kind {
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
                ApiError::bad_request(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            json_patch::patch(&mut doc, &ops).map_err(|e| ApiError::Invalid {
                message: format!(
                    "the server rejected our request due to an error in our request: {}",
                    json_patch_message(&e)
                ),
                kind: String::new(),
                name: String::new(),
                causes: Vec::new(),
            })?;
        }
        PatchKind::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("merge patch must be a JSON object"));
            }
            json_patch::merge(&mut doc, patch);
        }
        PatchKind::StrategicMerge => {
            doc = waggle_apimachinery::strategic_merge::strategic_merge_patch(current, patch)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        }
        PatchKind::Apply => return Err(unsupported("application/apply-patch+yaml")),
    }
    Ok(doc)
}

pub async fn patch(
    state: &ApiState,
    target: &Target,
    params: &Params,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Reply, ApiError> {
    let kind = PatchKind::from_headers(headers)?;
    if kind == PatchKind::StrategicMerge && target.resource.custom.is_some() {
        // Custom resources have no merge keys to patch by, as upstream.
        return Err(ApiError::UnsupportedMediaType {
            message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
        });
    }
    let patch = parse_patch(kind, bytes)?;
    if kind == PatchKind::Apply {
        return super::apply::apply(state, target, params, &patch).await;
    }
    let resource = target.resource;
    let name = target.item_name().to_owned();
    let namespace = target.namespace.clone();
    let mode = match target.subresource.as_deref() {
        Some("status") => Mode::Status,
        Some("approval") => Mode::Approval,
        _ => Mode::Main,
    };
    let update = Update {
        state,
        resource,
        namespace: namespace.as_deref(),
        name: &name,
        precondition: None,
        mode,
        dry_run: params.dry_run()?,
    };
    let mut warnings = Vec::new();
    let written = update
        .run(|current| {
            let mut patched = apply_patch(kind, &patch, current)?;
            warnings =
                crate::kubectl::validation::check_patched(resource, params, current, &patched)?;
            // A resourceVersion in the patch is a precondition, as upstream.
            if patched.pointer("/metadata/resourceVersion")
                != current.pointer("/metadata/resourceVersion")
            {
                return Err(ApiError::conflict(resource.group, resource.plural, &name));
            }
            body::check_kind(resource, &mut patched)?;
            body::check_namespace(resource, &mut patched, namespace.as_deref())?;
            body::check_name(&mut patched, &name)?;
            Ok(patched)
        })
        .await?;
    Ok(Reply::ok(written).with_warnings(warnings))
}
