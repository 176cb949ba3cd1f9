//! The `scale` subresource: an `autoscaling/v1` Scale view of `spec.replicas` (of the
//! fields a CustomResourceDefinition names, for a custom resource).

use http::HeaderMap;
use serde_json::{Value, json};
use waggle_apimachinery::registry::Resource;

use super::patch::{PatchKind, apply_patch, parse_patch};
use super::write::{Mode, Update, precondition_of};
use crate::body;
use crate::params::Params;
use crate::reply::Reply;
use crate::selectors::label::Selector;
use crate::state::ApiState;
use crate::status::{ApiError, Cause};
use crate::target::Target;

/// Where `resource`'s objects keep the desired and the current replicas, as simple
/// paths (`.spec.replicas`): a custom resource's definition names them.
fn replicas_paths(resource: &Resource) -> (&str, &str) {
    match resource.custom.and_then(|c| c.scale.as_ref()) {
        Some(paths) => (&paths.spec_replicas, &paths.status_replicas),
        None => (".spec.replicas", ".status.replicas"),
    }
}

/// A JSON pointer for a simple path (`.spec.replicas` → `/spec/replicas`).
fn pointer(path: &str) -> String {
    path.replace('.', "/")
}

/// The Scale of an object.
pub fn scale_of(resource: &Resource, obj: &Value) -> Value {
    let paths = resource.custom.and_then(|c| c.scale.as_ref());
    let selector = match (paths, obj.pointer("/spec/selector")) {
        (Some(paths), _) => paths
            .label_selector
            .as_deref()
            .and_then(|path| obj.pointer(&pointer(path)))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        (None, Some(sel)) if sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some() => {
            Selector::from_object(sel)
                .map(|s| s.to_string())
                .unwrap_or_default()
        }
        // ReplicationControllers have a plain map selector.
        (None, Some(Value::Object(map))) => {
            let mut pairs: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            pairs.sort();
            pairs.join(",")
        }
        _ => String::new(),
    };
    let meta = obj.get("metadata").cloned().unwrap_or(Value::Null);
    let mut metadata = json!({});
    for key in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(key) {
            metadata[key] = v.clone();
        }
    }
    let (spec_replicas, status_replicas) = replicas_paths(resource);
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": obj.pointer(&pointer(spec_replicas)).cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer(&pointer(status_replicas)).cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// The object with `spec.replicas` from a Scale.
fn apply_scale(resource: &Resource, obj: &Value, scale: &Value) -> Result<Value, ApiError> {
    let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    if replicas.as_i64().is_none_or(|r| r < 0) {
        return Err(ApiError::invalid(
            "Scale",
            crate::objects::name(obj),
            vec![Cause::invalid(
                "spec.replicas",
                &replicas,
                "must be greater than or equal to 0",
            )],
        ));
    }
    if scale
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k != "Scale")
    {
        return Err(ApiError::bad_request(format!(
            "expected a Scale for {}",
            resource.plural
        )));
    }
    let mut new = obj.clone();
    let mut at = &mut new;
    for field in replicas_paths(resource).0.trim_start_matches('.').split('.') {
        if !at.is_object() {
            *at = json!({});
        }
        at = at.as_object_mut().expect("made an object").entry(field).or_insert(Value::Null);
    }
    *at = replicas;
    Ok(new)
}

pub async fn get(state: &ApiState, target: &Target) -> Result<Reply, ApiError> {
    Ok(Reply::ok(scale_of(target.resource, &super::get::read(state, target).await?)))
}

pub async fn update(
    state: &ApiState,
    target: &Target,
    params: &Params,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Reply, ApiError> {
    let resource = target.resource;
    let scale = body::parse(headers, bytes)?;
    let update = Update {
        state,
        resource,
        namespace: target.namespace.as_deref(),
        name: target.item_name(),
        precondition: precondition_of(&scale)?,
        mode: Mode::Scale,
        dry_run: params.dry_run()?,
    };
    let written = update
        .run(|current| apply_scale(resource, current, &scale))
        .await?;
    Ok(Reply::ok(scale_of(resource, &written)))
}

pub async fn patch(
    state: &ApiState,
    target: &Target,
    params: &Params,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Reply, ApiError> {
    let resource = target.resource;
    let kind = PatchKind::from_headers(headers)?;
    let patch = parse_patch(kind, bytes)?;
    let update = Update {
        state,
        resource,
        namespace: target.namespace.as_deref(),
        name: target.item_name(),
        precondition: None,
        mode: Mode::Scale,
        dry_run: params.dry_run()?,
    };
    let written = update
        .run(|current| {
            let scale = apply_patch(kind, &patch, &scale_of(resource, current))?;
            apply_scale(resource, current, &scale)
        })
        .await?;
    Ok(Reply::ok(scale_of(resource, &written)))
}
