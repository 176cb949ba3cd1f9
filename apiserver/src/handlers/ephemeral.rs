//! `pods/ephemeralcontainers`: GET returns the pod; PUT and PATCH take a pod and apply
//! only its `spec.ephemeralContainers`, which may grow but whose existing entries may
//! not change or go away (upstream's ephemeral containers strategy and validation).

use http::HeaderMap;
use serde_json::{Value, json};

use super::patch::{self, PatchKind};
use super::write::{Mode, Update, precondition_of};
use crate::body;
use crate::params::Params;
use crate::reply::Reply;
use crate::state::ApiState;
use crate::status::{ApiError, Cause};
use crate::target::Target;

/// Container fields an ephemeral container may not set.
const FORBIDDEN_FIELDS: &[&str] = &[
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resizePolicy",
];

fn ephemeral_list(pod: &Value) -> Vec<Value> {
    pod.pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn container_name(c: &Value) -> &str {
    c.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// Causes against `new` ephemeral containers replacing `old` ones in `pod`.
fn validate(pod: &Value, old: &[Value], new: &[Value]) -> Vec<Cause> {
    let mut causes = Vec::new();
    let base = "spec.ephemeralContainers";
    for previous in old {
        let name = container_name(previous);
        match new.iter().position(|c| container_name(c) == name) {
            None => causes.push(Cause::forbidden(
                base,
                format!("existing ephemeral containers \"{name}\" may not be removed"),
            )),
            Some(i) if !same_container(previous, &new[i]) => {
                causes.push(Cause::forbidden(
                    format!("{base}[{i}]"),
                    format!("existing ephemeral containers \"{name}\" may not be changed"),
                ));
            }
            Some(_) => {}
        }
    }
    let mut seen: Vec<&str> = ["initContainers", "containers"]
        .iter()
        .flat_map(|list| {
            pod.pointer(&format!("/spec/{list}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .map(container_name)
        .collect();
    for (i, c) in new.iter().enumerate() {
        let field = format!("{base}[{i}]");
        let name = container_name(c);
        if name.is_empty() {
            causes.push(Cause::required(format!("{field}.name")));
        } else if seen.contains(&name) {
            causes.push(Cause::duplicate(format!("{field}.name"), &json!(name)));
        } else {
            seen.push(name);
        }
        if c.get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(Cause::required(format!("{field}.image")));
        }
        for forbidden in FORBIDDEN_FIELDS {
            if c.get(*forbidden).is_some_and(|v| !v.is_null()) {
                causes.push(Cause::forbidden(
                    format!("{field}.{forbidden}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        if c.get("resources")
            .and_then(Value::as_object)
            .is_some_and(|r| !r.is_empty())
        {
            causes.push(Cause::forbidden(
                format!("{field}.resources"),
                "cannot be set for an Ephemeral Container",
            ));
        }
    }
    causes
}

/// Equal but for the defaults the server filled in when it was added.
fn same_container(old: &Value, new: &Value) -> bool {
    let mut defaulted_spec = json!({"containers": [new]});
    crate::defaults::pod_spec(&mut defaulted_spec);
    old == new || *old == defaulted_spec["containers"][0]
}

/// Writes `containers` as the pod's ephemeral containers, validated against the stored pod.
async fn write(
    state: &ApiState,
    target: &Target,
    params: &Params,
    precondition: Option<waggle_store::Revision>,
    mut containers: impl FnMut(&Value) -> Result<Vec<Value>, ApiError>,
) -> Result<Reply, ApiError> {
    let name = target.item_name();
    let update = Update {
        state,
        resource: target.resource,
        namespace: target.namespace.as_deref(),
        name,
        precondition,
        mode: Mode::Raw,
        dry_run: params.dry_run()?,
    };
    let written = update
        .run(|current| {
            let new = containers(current)?;
            let causes = validate(current, &ephemeral_list(current), &new);
            if !causes.is_empty() {
                return Err(ApiError::invalid("Pod", name, causes));
            }
            let mut pod = current.clone();
            pod["spec"]["ephemeralContainers"] = Value::Array(new);
            Ok(pod)
        })
        .await?;
    Ok(Reply::ok(written))
}

/// PUT: the body is the whole pod; only its ephemeral containers are taken.
pub async fn update(
    state: &ApiState,
    target: &Target,
    params: &Params,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Reply, ApiError> {
    let mut pod = body::parse(headers, bytes)?;
    body::check_kind(target.resource, &mut pod)?;
    body::check_namespace(target.resource, &mut pod, target.namespace.as_deref())?;
    body::check_name(&mut pod, target.item_name())?;
    let containers = ephemeral_list(&pod);
    write(state, target, params, precondition_of(&pod)?, |_| {
        Ok(containers.clone())
    })
    .await
}

/// PATCH: the patch applies to the whole pod; only its ephemeral containers are taken.
pub async fn patch(
    state: &ApiState,
    target: &Target,
    params: &Params,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Reply, ApiError> {
    let kind = PatchKind::from_headers(headers)?;
    if kind == PatchKind::Apply {
        return Err(ApiError::UnsupportedMediaType {
            message: "server-side apply is not supported on pods/ephemeralcontainers".into(),
        });
    }
    let document = patch::parse_patch(kind, bytes)?;
    write(state, target, params, None, |current| {
        Ok(ephemeral_list(&patch::apply_patch(
            kind, &document, current,
        )?))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"spec": {"containers": [{"name": "app", "image": "nginx"}]}})
    }

    #[test]
    fn adding_is_allowed_changing_and_removing_are_not() {
        let debugger = json!({"name": "debugger", "image": "busybox"});
        assert!(validate(&pod(), &[], std::slice::from_ref(&debugger)).is_empty());
        let changed = json!({"name": "debugger", "image": "alpine"});
        let causes = validate(&pod(), std::slice::from_ref(&debugger), &[changed]);
        assert_eq!(
            causes[0].message,
            "Forbidden: existing ephemeral containers \"debugger\" may not be changed"
        );
        let causes = validate(&pod(), &[debugger], &[]);
        assert_eq!(
            (causes[0].field.as_str(), causes[0].message.as_str()),
            (
                "spec.ephemeralContainers",
                "Forbidden: existing ephemeral containers \"debugger\" may not be removed"
            )
        );
    }

    #[test]
    fn names_images_and_container_only_fields() {
        let causes = validate(
            &pod(),
            &[],
            &[json!({"name": "app", "ports": [{"containerPort": 80}]})],
        );
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.ephemeralContainers[0].name",
                "spec.ephemeralContainers[0].image",
                "spec.ephemeralContainers[0].ports"
            ]
        );
    }

    #[test]
    fn stored_defaults_do_not_count_as_changes() {
        let sent = json!({"name": "d", "image": "busybox:1.36"});
        let mut spec = json!({"containers": [sent.clone()]});
        crate::defaults::pod_spec(&mut spec);
        assert!(same_container(&spec["containers"][0], &sent));
    }
}
