//! Create-only review kinds, answered and never stored:
//! `authentication.k8s.io/v1 SelfSubjectReview` (who the caller is, as the auth gate
//! authenticated them: `kubectl auth whoami`), and from the RBAC authorizer
//! `authorization.k8s.io/v1` `SelfSubjectAccessReview` (may the caller do X: `kubectl
//! auth can-i`), `SubjectAccessReview` (may user U do X; the gate already checked the
//! caller may create one), `LocalSubjectAccessReview` (the same, asked in and about one
//! namespace, which a namespace's admin may create) and `SelfSubjectRulesReview` (what
//! may the caller do in a namespace: `kubectl auth can-i --list`).

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method};
use serde_json::{Value, json};

use crate::auth::{Attributes, User};
use crate::authz::Authorizer;
use crate::authz::rules::Rule;
use crate::params::Params;
use crate::reply::Reply;
use crate::state::ApiState;
use crate::status::{ApiError, Cause};
use crate::target::Target;
use crate::{body, objects};

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
        "SelfSubjectAccessReview" => access_review(&state.authorizer, user, review)?,
        "SubjectAccessReview" => {
            let subject = subject_of("SubjectAccessReview", &review, Vec::new())?;
            access_review(&state.authorizer, &subject, review)?
        }
        "LocalSubjectAccessReview" => {
            body::check_namespace(resource, &mut review, target.namespace.as_deref())?;
            let subject = subject_of("LocalSubjectAccessReview", &review, local_causes(&review))?;
            access_review(&state.authorizer, &subject, review)?
        }
        "SelfSubjectRulesReview" => rules_review(&state.authorizer, user, review),
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
        let extra: serde_json::Map<String, Value> = user
            .extra
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        info["extra"] = Value::Object(extra);
    }
    json!({
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": objects::now()},
        "status": {"userInfo": info},
    })
}

/// What an access review's `spec` asks about; exactly one of `resourceAttributes` and
/// `nonResourceAttributes` must be given.
fn access_attributes(kind: &str, spec: &Value) -> Result<Attributes, ApiError> {
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
        return Err(ApiError::invalid(kind, "", vec![cause]));
    }
    let text = |attrs: &Value, field: &str| {
        attrs
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(if resource_attrs {
        let attrs = &spec["resourceAttributes"];
        Attributes {
            verb: text(attrs, "verb"),
            group: text(attrs, "group"),
            resource: text(attrs, "resource"),
            subresource: text(attrs, "subresource"),
            namespace: text(attrs, "namespace"),
            name: text(attrs, "name"),
            path: String::new(),
        }
    } else {
        let attrs = &spec["nonResourceAttributes"];
        Attributes {
            verb: text(attrs, "verb"),
            path: text(attrs, "path"),
            ..Default::default()
        }
    })
}

/// What a `LocalSubjectAccessReview` may not ask (upstream's validation): about another
/// namespace than its own, or about a non-resource URL.
fn local_causes(review: &Value) -> Vec<Cause> {
    let namespace = objects::namespace(review).unwrap_or_default();
    let spec = &review["spec"];
    let mut causes = Vec::new();
    if let Some(attrs) = spec.get("resourceAttributes").filter(|a| !a.is_null()) {
        let asked = attrs.get("namespace").cloned().unwrap_or(json!(""));
        if asked.as_str() != Some(namespace) {
            causes.push(Cause::invalid(
                "spec.resourceAttributes.namespace",
                &asked,
                "must match metadata.namespace",
            ));
        }
    }
    if let Some(attrs) = spec.get("nonResourceAttributes").filter(|a| !a.is_null()) {
        causes.push(Cause::invalid(
            "spec.nonResourceAttributes",
            attrs,
            "disallowed on this kind of request",
        ));
    }
    causes
}

/// The user a `SubjectAccessReview` (or `LocalSubjectAccessReview`, `kind`) asks
/// about; `causes` are the kind's other validation failures, reported together.
fn subject_of(kind: &str, review: &Value, mut causes: Vec<Cause>) -> Result<User, ApiError> {
    let spec = &review["spec"];
    let name = spec.get("user").and_then(Value::as_str).unwrap_or_default();
    let groups: Vec<String> = spec
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if name.is_empty() && groups.is_empty() {
        causes.insert(
            0,
            Cause::invalid(
                "spec.user",
                &json!(""),
                "at least one of user or group must be specified",
            ),
        );
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(kind, "", causes));
    }
    let mut user = User::new(name, groups);
    user.uid = spec
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(user)
}

/// The review as sent, validated, with the authorizer's answer for `user`.
fn access_review(
    authorizer: &Authorizer,
    user: &User,
    mut review: Value,
) -> Result<Value, ApiError> {
    let kind = review["kind"]
        .as_str()
        .unwrap_or("SelfSubjectAccessReview")
        .to_owned();
    let attributes = access_attributes(&kind, review.get("spec").unwrap_or(&Value::Null))?;
    let decision = authorizer.decide(user, &attributes);
    let meta = objects::meta_mut(&mut review);
    meta.entry("creationTimestamp").or_insert(Value::Null);
    review["status"] = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        review["status"]["reason"] = json!(decision.reason);
    }
    Ok(review)
}

/// The review with every rule that applies to `user` in `spec.namespace`.
fn rules_review(authorizer: &Authorizer, user: &User, mut review: Value) -> Value {
    let namespace = review
        .pointer("/spec/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // `system:masters` members get cluster-admin's rules through its default binding.
    let (rules, errors) = authorizer.index.snapshot().rules_for(user, &namespace);
    let meta = objects::meta_mut(&mut review);
    meta.entry("creationTimestamp").or_insert(Value::Null);
    review["status"] = rules_status(&rules, &errors);
    review
}

/// A `SubjectRulesReviewStatus`: rules split into resource and non-resource ones.
fn rules_status(rules: &[Rule], errors: &[String]) -> Value {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in rules {
        if !rule.resources.is_empty() || !rule.api_groups.is_empty() {
            let mut entry = json!({"verbs": rule.verbs, "apiGroups": rule.api_groups, "resources": rule.resources});
            if !rule.resource_names.is_empty() {
                entry["resourceNames"] = json!(rule.resource_names);
            }
            resource_rules.push(entry);
        }
        if !rule.non_resource_urls.is_empty() {
            non_resource_rules
                .push(json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}));
        }
    }
    let mut status = json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": !errors.is_empty()});
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whoami_is_the_authenticated_user() {
        let user = User::new(
            "admin",
            vec!["system:masters".into(), "system:authenticated".into()],
        );
        let review = self_subject_review(&user);
        assert_eq!(
            review["status"]["userInfo"],
            json!({"username": "admin", "groups": ["system:masters", "system:authenticated"]})
        );
    }

    #[test]
    fn access_reviews_need_exactly_one_attribute_set() {
        let spec = json!({"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "a", "subresource": "log"}});
        let attributes = access_attributes("SelfSubjectAccessReview", &spec).unwrap();
        assert_eq!(
            (
                attributes.verb.as_str(),
                attributes.resource.as_str(),
                attributes.namespace.as_str(),
                attributes.subresource.as_str()
            ),
            ("create", "pods", "a", "log")
        );
        let path = access_attributes(
            "X",
            &json!({"nonResourceAttributes": {"verb": "get", "path": "/healthz"}}),
        )
        .unwrap();
        assert!(!path.is_resource_request());
        let neither = access_attributes("SelfSubjectAccessReview", &json!({})).unwrap_err();
        assert_eq!(neither.code(), http::StatusCode::UNPROCESSABLE_ENTITY);
        let both = json!({"resourceAttributes": {}, "nonResourceAttributes": {"path": "/"}});
        assert!(access_attributes("SelfSubjectAccessReview", &both).is_err());
    }

    #[test]
    fn subject_access_reviews_name_a_user_or_group() {
        let sar = "SubjectAccessReview";
        let user = subject_of(
            sar,
            &json!({"spec": {"user": "jane", "groups": ["devs"]}}),
            Vec::new(),
        )
        .unwrap();
        assert_eq!(
            (user.name.as_str(), user.groups),
            ("jane", vec!["devs".to_owned()])
        );
        let err = subject_of(sar, &json!({"spec": {}}), Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.user: Invalid value: \"\": at least one of user or group must be specified"
        );
    }

    #[test]
    fn local_reviews_ask_only_about_their_own_namespace() {
        let review = |spec: Value| json!({"metadata": {"namespace": "team"}, "spec": spec});
        let own = review(
            json!({"user": "jane", "resourceAttributes": {"namespace": "team", "verb": "get", "resource": "pods"}}),
        );
        assert!(local_causes(&own).is_empty());
        let other = review(
            json!({"user": "jane", "resourceAttributes": {"namespace": "kube-system", "verb": "get", "resource": "pods"}}),
        );
        let err = subject_of("LocalSubjectAccessReview", &other, local_causes(&other)).unwrap_err();
        assert_eq!(err.code(), http::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            err.to_string(),
            "LocalSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes.namespace: Invalid value: \"kube-system\": must match metadata.namespace"
        );
        let url = review(json!({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}));
        let err = subject_of("LocalSubjectAccessReview", &url, local_causes(&url)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "spec.user: Invalid value: \"\": at least one of user or group must be specified"
            ),
            "{text}"
        );
        assert!(
            text.contains("spec.nonResourceAttributes: Invalid value"),
            "{text}"
        );
        assert!(
            text.contains("disallowed on this kind of request"),
            "{text}"
        );
    }

    #[test]
    fn rules_split_into_resource_and_non_resource_ones() {
        let rules = [
            Rule::from_json(
                &json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]}),
            ),
            Rule::from_json(&json!({"verbs": ["get"], "nonResourceURLs": ["/version"]})),
        ];
        assert_eq!(
            rules_status(&rules, &[]),
            json!({
                "resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]}],
                "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/version"]}],
                "incomplete": false,
            })
        );
    }
}
