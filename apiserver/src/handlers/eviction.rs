//! `pods/eviction`: a `policy/v1 Eviction` asks for a pod to be deleted, subject to its
//! PodDisruptionBudget (see [`super::disruption`]): once the budget admits it, the
//! eviction is a delete of the pod honoring the Eviction's `deleteOptions` (graceful
//! for a pod bound to a node, as `DELETE` is).

use http::HeaderMap;
use serde_json::{Value, json};

use super::delete::{self, DeleteOptions};
use crate::body;
use crate::params::Params;
use crate::reply::Reply;
use crate::state::ApiState;
use crate::status::ApiError;
use crate::target::Target;

/// Whether the body is a `policy/v1` (or `v1beta1`) Eviction, as upstream checks.
fn check_kind(eviction: &Value) -> Result<(), ApiError> {
    body::check_request_kind(eviction, "Eviction", &["policy/v1", "policy/v1beta1"])
}

/// The Eviction's `deleteOptions`, validated as a `DELETE` body's are; a `dryRun`
/// query parameter on the eviction counts too.
fn delete_options(eviction: &Value, params: &Params) -> Result<DeleteOptions, ApiError> {
    let options = eviction
        .get("deleteOptions")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let bytes = serde_json::to_vec(&options).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut parsed = DeleteOptions::parse(&Params::default(), &headers, &bytes)?;
    parsed.dry_run |= params.dry_run()?;
    Ok(parsed)
}

pub async fn create(
    state: &ApiState,
    target: &Target,
    params: &Params,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Reply, ApiError> {
    let eviction = body::parse(headers, bytes)?;
    check_kind(&eviction)?;
    let pod = target.item_name();
    if eviction
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_some_and(|n| n != pod)
    {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let options = delete_options(&eviction, params)?;
    let dry_run = options.dry_run;
    let namespace = target.namespace.as_deref().unwrap_or_default();
    super::disruption::admit_eviction(state, namespace, pod, dry_run).await?;
    delete::delete_object(
        state,
        target.resource,
        target.namespace.as_deref(),
        pod,
        &options,
        dry_run,
    )
    .await?;
    Ok(Reply::created(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_policy_evictions_are_accepted() {
        assert!(check_kind(&json!({"apiVersion": "policy/v1", "kind": "Eviction"})).is_ok());
        assert!(check_kind(&json!({"apiVersion": "policy/v1beta1", "kind": "Eviction"})).is_ok());
        // kube-rs sends neither: the URL says what it is.
        assert!(check_kind(&json!({"metadata": {"name": "web"}})).is_ok());
        let wrong = check_kind(&json!({"apiVersion": "v1", "kind": "Pod"})).unwrap_err();
        assert_eq!(wrong.code(), http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn delete_options_come_from_the_eviction() {
        let eviction =
            json!({"deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "u1"}}});
        let options = delete_options(&eviction, &Params::default()).unwrap();
        assert_eq!(
            (
                options.grace_period,
                options.uid.as_deref(),
                options.dry_run
            ),
            (Some(0), Some("u1"), false)
        );
        let dry = delete_options(&json!({}), &Params::parse(Some("dryRun=All"))).unwrap();
        assert!(dry.dry_run);
        let bad = json!({"deleteOptions": {"propagationPolicy": "Sideways"}});
        assert!(delete_options(&bad, &Params::default()).is_err());
    }
}
