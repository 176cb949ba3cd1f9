//! Validation of objects before they are written, per kind, as kube-apiserver's.
//!
//! Each check appends [`Cause`]s with field paths; a non-empty list becomes a
//! `422 Invalid` whose message names every cause (see [`crate::status`]).

pub mod cluster;
pub mod crd;
pub mod cronjob;
pub mod events;
pub mod meta;
pub mod misc;
pub mod names;
pub mod pod;
pub mod quantity;
pub mod rbac;
pub mod service;
pub mod workloads;

use serde_json::Value;
use waggle_apimachinery::registry::Resource;

use crate::status::{ApiError, Cause};

/// Collected validation failures.
#[derive(Default, Debug)]
pub struct Errors(pub Vec<Cause>);

impl Errors {
    pub fn push(&mut self, cause: Cause) {
        self.0.push(cause);
    }

    /// Records `check`'s error as an invalid value of `field`.
    pub fn check(&mut self, field: &str, value: &str, check: Result<(), String>) {
        if let Err(detail) = check {
            self.push(Cause::invalid(field, &Value::String(value.into()), detail));
        }
    }

    /// Requires a non-empty string at `value`; returns it when present.
    pub fn required_str<'a>(&mut self, field: &str, value: Option<&'a Value>) -> Option<&'a str> {
        match value.and_then(Value::as_str).filter(|s| !s.is_empty()) {
            Some(s) => Some(s),
            None => {
                self.push(Cause::required(field));
                None
            }
        }
    }

    /// `value` must be one of `allowed` if present.
    pub fn one_of(&mut self, field: &str, value: Option<&Value>, allowed: &[&str]) {
        if let Some(v) = value.filter(|v| !v.is_null()) {
            if !v.as_str().is_some_and(|s| allowed.contains(&s)) {
                self.push(Cause::not_supported(field, v, allowed));
            }
        }
    }

    /// An integer at `value`, if present, must be at least `min`.
    pub fn at_least(&mut self, field: &str, value: Option<&Value>, min: i64) {
        if let Some(n) = value.and_then(Value::as_i64) {
            if n < min {
                self.push(Cause::invalid(field, &Value::from(n), format!("must be greater than or equal to {min}")));
            }
        }
    }

    /// An integer at `value` must lie in `lo..=hi`.
    pub fn port_range(&mut self, field: &str, value: &Value, lo: i64, hi: i64) {
        let n = value.as_i64().unwrap_or(0);
        if n < lo || n > hi {
            self.push(Cause::invalid(field, value, format!("must be between {lo} and {hi}, inclusive")));
        }
    }
}

/// Validates `obj` (a create when `old` is `None`, an update otherwise).
pub fn validate(resource: &Resource, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let mut errors = Errors::default();
    meta::validate(resource, obj, old, &mut errors);
    match (resource.group, resource.kind) {
        _ if resource.custom.is_some() => custom_resource(resource, obj, old, &mut errors),
        ("", "Pod") => pod::validate_pod(obj, old, &mut errors),
        ("", "Service") => service::validate(obj, old, &mut errors),
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet") => {
            workloads::validate_apps(resource.kind, obj, old, &mut errors)
        }
        ("", "ReplicationController") => workloads::validate_rc(obj, &mut errors),
        ("batch", "Job") => workloads::validate_job(obj, old, &mut errors),
        ("batch", "CronJob") => cronjob::validate(obj, old, &mut errors),
        ("events.k8s.io", "Event") => events::validate(obj, old, &mut errors),
        ("rbac.authorization.k8s.io", kind) => rbac::validate(kind, obj, old, &mut errors),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd::validate(obj, old, &mut errors),
        ("certificates.k8s.io", "CertificateSigningRequest") => crate::certificates::validate(obj, old, &mut errors),
        ("policy" | "scheduling.k8s.io" | "autoscaling" | "storage.k8s.io", _)
        | ("networking.k8s.io", "Ingress" | "IngressClass")
        | ("", "PersistentVolume" | "PersistentVolumeClaim") => cluster::validate(resource, obj, old, &mut errors),
        _ => misc::validate(resource, obj, old, &mut errors),
    }
    if errors.0.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_in(resource.group, resource.kind, crate::objects::name(obj), errors.0))
    }
}

/// A custom resource against its definition's schema, then (when that holds, as
/// upstream) against the schema's CEL rules.
fn custom_resource(resource: &Resource, obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let Some(schema) = resource.custom.and_then(|c| c.structural_schema()) else {
        return;
    };
    let mut found = waggle_apimachinery::schema::validate(schema, obj);
    if found.is_empty() {
        found = waggle_apimachinery::schema::validate_rules(schema, obj, old);
    }
    for e in found {
        errors.push(Cause {
            reason: e.reason,
            field: e.field,
            message: e.message,
        });
    }
}

/// `value` at `pointer` or `Value::Null`.
pub fn at<'a>(obj: &'a Value, pointer: &str) -> &'a Value {
    obj.pointer(pointer).unwrap_or(&Value::Null)
}

/// The array at `pointer` (empty if absent).
pub fn items<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// `field is immutable` when `field` changed on update.
pub fn immutable(errors: &mut Errors, field: &str, new: &Value, old: &Value) {
    if new != old {
        errors.push(Cause::invalid(field, new, "field is immutable"));
    }
}
