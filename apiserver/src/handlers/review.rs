//! Create-only review kinds, answered and never stored:
//! `authentication.k8s.io/v1 SelfSubjectReview` (who the caller is, as the auth gate
//! authenticated them: `kubectl auth whoami`) and `authorization.k8s.io/v1
//! SelfSubjectAccessReview` (may the caller do X: `kubectl auth can-i`).
//!
//! No authorizer is configured yet (the gate allows every request, as upstream's
//! `AlwaysAllow` mode), so every access review is allowed and says why.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method};
use serde_json::{Value, json};

use crate::auth::User;
use crate::params::Params;
use crate::reply::Reply;
use crate::state::ApiState;
use crate::status::{ApiError, Cause};
use crate::target::Target;
use crate::{body, objects};

/// Why every access review is allowed.
pub const ALLOW_ALL_REASON: &str = "no authorizer is configured: every request is allowed";

/// Serves a request to a create-only resource (`!target.resource.persisted()`).
pub async fn serve(
    state: &ApiState,
    user: &User,
    method: &Method,
    target: &Target,
    params: &Params,
    headers: &HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    if target.name.is_some() {
        return Err(ApiError::NotFound {
            message: "the server could not find the requested resource".into(),
            kind: String::new(),
            name: String::new(),
        });
    }
    if *method != Method::POST {
        return Err(ApiError::MethodNotAllowed {
            message: format!(
                "the server does not allow this method on the requested resource ({method})"
            ),
        });
    }
    params.dry_run()?;
    let bytes = body::read(request, state.settings.max_body_bytes).await?;
    let mut review = body::parse(headers, &bytes)?;
    body::check_kind(resource, &mut review)?;
    let answered = match resource.kind {
        "SelfSubjectReview" => self_subject_review(user),
        "SelfSubjectAccessReview" => self_subject_access_review(review)?,
        other => {
            return Err(ApiError::internal(format!(
                "no handler for create-only kind {other}"
            )));
        }
    };
    Ok(Reply::created(answered)
        .render(Some(resource), headers)
        .into_response())
}

/// The caller's identity.
fn self_subject_review(user: &User) -> Value {
    let mut info = json!({"username": user.name});
    if !user.uid.is_empty() {
        info["uid"] = json!(user.uid);
    }
    info["groups"] = json!(user.groups);
    if !user.extra.is_empty() {
        let extra: serde_json::Map<String, Value> = user.extra.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        info["extra"] = Value::Object(extra);
    }
    json!({
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": objects::now()},
        "status": {"userInfo": info},
    })
}

/// The review as sent, validated, with an allowing status.
fn self_subject_access_review(mut review: Value) -> Result<Value, ApiError> {
    let spec = review.get("spec").cloned().unwrap_or(Value::Null);
    let present = |field: &str| spec.get(field).is_some_and(|v| !v.is_null());
    let (resource_attrs, non_resource_attrs) = (
        present("resourceAttributes"),
        present("nonResourceAttributes"),
    );
    if resource_attrs == non_resource_attrs {
        let cause = if resource_attrs {
            Cause::invalid(
                "spec.resourceAttributes",
                &spec["resourceAttributes"],
                "cannot be specified in combination with nonResourceAttributes",
            )
        } else {
            Cause::invalid(
                "spec.resourceAttributes",
                &json!("null"),
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        };
        return Err(ApiError::invalid(
            "SelfSubjectAccessReview",
            "",
            vec![cause],
        ));
    }
    let meta = objects::meta_mut(&mut review);
    meta.entry("creationTimestamp").or_insert(Value::Null);
    review["status"] = json!({"allowed": true, "reason": ALLOW_ALL_REASON});
    Ok(review)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whoami_is_the_authenticated_user() {
        let user = User::new("admin", vec!["system:masters".into(), "system:authenticated".into()]);
        let review = self_subject_review(&user);
        assert_eq!(
            review["status"]["userInfo"],
            json!({"username": "admin", "groups": ["system:masters", "system:authenticated"]})
        );
    }

    #[test]
    fn access_reviews_are_allowed_and_need_exactly_one_attribute_set() {
        let review =
            json!({"spec": {"resourceAttributes": {"verb": "create", "resource": "pods"}}});
        let answered = self_subject_access_review(review).unwrap();
        assert_eq!(
            answered["status"],
            json!({"allowed": true, "reason": ALLOW_ALL_REASON})
        );
        assert_eq!(answered["spec"]["resourceAttributes"]["verb"], "create");
        let neither = self_subject_access_review(json!({"spec": {}})).unwrap_err();
        assert_eq!(neither.code(), http::StatusCode::UNPROCESSABLE_ENTITY);
        let both =
            json!({"spec": {"resourceAttributes": {}, "nonResourceAttributes": {"path": "/"}}});
        assert!(self_subject_access_review(both).is_err());
    }
}
