//! Workload validation: Deployments, ReplicaSets, DaemonSets, StatefulSets, Jobs and
//! ReplicationControllers (selectors, replicas, templates).

use serde_json::Value;

use super::{Errors, at, immutable, pod};
use crate::selectors::label::Selector;
use crate::status::Cause;

/// Checks `spec.selector` (an object selector) against `spec.template.metadata.labels`.
fn validate_selector(spec: &Value, errors: &mut Errors) {
    let Some(selector) = spec.get("selector").filter(|s| !s.is_null()) else {
        errors.push(Cause::required("spec.selector"));
        return;
    };
    let parsed = match Selector::from_object(selector) {
        Ok(parsed) => parsed,
        Err(e) => {
            errors.push(Cause::invalid("spec.selector", selector, e));
            return;
        }
    };
    if parsed.is_empty() {
        errors.push(Cause::invalid("spec.selector", selector, "empty selector is invalid for deployment"));
        return;
    }
    super::meta::validate_labels(selector.get("matchLabels"), "spec.selector.matchLabels", errors);
    let labels = spec.pointer("/template/metadata/labels");
    if !parsed.matches(labels) {
        errors.push(Cause::invalid(
            "spec.template.metadata.labels",
            labels.unwrap_or(&Value::Null),
            "`selector` does not match template `labels`",
        ));
    }
}

fn validate_template(spec: &Value, restart_allowed: &[&str], errors: &mut Errors) {
    let Some(template) = spec.get("template").filter(|t| !t.is_null()) else {
        errors.push(Cause::required("spec.template"));
        return;
    };
    super::meta::validate_labels(template.pointer("/metadata/labels"), "spec.template.metadata.labels", errors);
    let pod_spec = at(template, "/spec");
    pod::validate_spec(pod_spec, "spec.template.spec", errors);
    let restart = pod_spec.get("restartPolicy");
    if restart.and_then(Value::as_str).is_some_and(|r| !restart_allowed.contains(&r)) {
        errors.push(Cause::not_supported("spec.template.spec.restartPolicy", restart.unwrap_or(&Value::Null), restart_allowed));
    }
}

pub fn validate_apps(kind: &str, obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let spec = at(obj, "/spec");
    errors.at_least("spec.replicas", spec.get("replicas"), 0);
    errors.at_least("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"), 0);
    errors.at_least("spec.minReadySeconds", spec.get("minReadySeconds"), 0);
    validate_selector(spec, errors);
    validate_template(spec, &["Always"], errors);
    match kind {
        "Deployment" => {
            errors.one_of("spec.strategy.type", spec.pointer("/strategy/type"), &["Recreate", "RollingUpdate"]);
            if let Some(p) = spec.get("progressDeadlineSeconds").and_then(Value::as_i64) {
                let min = spec.get("minReadySeconds").and_then(Value::as_i64).unwrap_or(0);
                if p <= min {
                    errors.push(Cause::invalid("spec.progressDeadlineSeconds", &Value::from(p), "must be greater than minReadySeconds"));
                }
            }
        }
        "DaemonSet" => errors.one_of("spec.updateStrategy.type", spec.pointer("/updateStrategy/type"), &["RollingUpdate", "OnDelete"]),
        "StatefulSet" => {
            errors.one_of("spec.podManagementPolicy", spec.get("podManagementPolicy"), &["OrderedReady", "Parallel"]);
            errors.one_of("spec.updateStrategy.type", spec.pointer("/updateStrategy/type"), &["RollingUpdate", "OnDelete"]);
        }
        _ => {}
    }
    if let Some(old) = old {
        immutable(errors, "spec.selector", at(obj, "/spec/selector"), at(old, "/spec/selector"));
        if kind == "StatefulSet" {
            for field in ["serviceName", "podManagementPolicy", "volumeClaimTemplates"] {
                let ptr = format!("/spec/{field}");
                if at(obj, &ptr) != at(old, &ptr) {
                    errors.push(Cause::forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
                    break;
                }
            }
        }
    }
}

/// ReplicationControllers have a map selector defaulted from the template labels.
pub fn validate_rc(obj: &Value, errors: &mut Errors) {
    let spec = at(obj, "/spec");
    errors.at_least("spec.replicas", spec.get("replicas"), 0);
    let selector = spec.get("selector").cloned().unwrap_or(Value::Null);
    if selector.as_object().is_none_or(|m| m.is_empty()) {
        errors.push(Cause::required("spec.selector"));
    } else {
        super::meta::validate_labels(Some(&selector), "spec.selector", errors);
        let parsed = Selector::from_object(&serde_json::json!({"matchLabels": selector}));
        if parsed.is_ok_and(|s| !s.matches(spec.pointer("/template/metadata/labels"))) {
            errors.push(Cause::invalid(
                "spec.template.metadata.labels",
                spec.pointer("/template/metadata/labels").unwrap_or(&Value::Null),
                "`selector` does not match template `labels`",
            ));
        }
    }
    validate_template(spec, &["Always"], errors);
}

pub fn validate_job(obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let spec = at(obj, "/spec");
    validate_selector(spec, errors);
    validate_job_spec(spec, errors);
    if let Some(old) = old {
        immutable(errors, "spec.selector", at(obj, "/spec/selector"), at(old, "/spec/selector"));
        immutable(errors, "spec.template", at(obj, "/spec/template"), at(old, "/spec/template"));
        immutable(errors, "spec.completions", at(obj, "/spec/completions"), at(old, "/spec/completions"));
    }
}

/// A Job's spec without its selector (which a CronJob's job template leaves unset).
pub fn validate_job_spec(spec: &Value, errors: &mut Errors) {
    for field in ["parallelism", "completions", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"] {
        errors.at_least(&format!("spec.{field}"), spec.get(field), 0);
    }
    errors.one_of("spec.completionMode", spec.get("completionMode"), &["NonIndexed", "Indexed"]);
    validate_template(spec, &["OnFailure", "Never"], errors);
}
