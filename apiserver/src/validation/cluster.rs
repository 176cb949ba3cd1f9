//! Validation of the policy, autoscaling, networking and storage kinds:
//! PodDisruptionBudgets, PriorityClasses, HorizontalPodAutoscalers, Ingresses,
//! IngressClasses, StorageClasses, PersistentVolumes and PersistentVolumeClaims.

use serde_json::Value;
use waggle_apimachinery::registry::Resource;

use super::{Errors, at, immutable, items};
use crate::status::Cause;

/// The highest priority a user-defined PriorityClass may have.
const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;

pub fn validate(resource: &Resource, obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    match resource.kind {
        "PodDisruptionBudget" => pod_disruption_budget(obj, errors),
        "PriorityClass" => priority_class(obj, old, errors),
        "HorizontalPodAutoscaler" => horizontal_pod_autoscaler(obj, errors),
        "Ingress" => ingress(obj, errors),
        "IngressClass" => {
            if errors.required_str("spec.controller", obj.pointer("/spec/controller")).is_some()
                && let Some(old) = old
            {
                immutable(errors, "spec.controller", at(obj, "/spec/controller"), at(old, "/spec/controller"));
            }
        }
        "StorageClass" => storage_class(obj, old, errors),
        "PersistentVolume" => persistent_volume(obj, errors),
        "PersistentVolumeClaim" => persistent_volume_claim(obj, old, errors),
        _ => {}
    }
}

/// An int-or-string count: a non-negative integer, or a percentage of at most 100.
fn int_or_percent(field: &str, value: Option<&Value>, errors: &mut Errors) {
    match value {
        Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n < 0) => {
            errors.push(Cause::invalid(field, &Value::Number(n.clone()), "must be greater than or equal to 0"));
        }
        Some(v @ Value::String(text)) => match text.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if p > 100 => errors.push(Cause::invalid(field, v, "must not be greater than 100%")),
            Some(p) if p < 0 => errors.push(Cause::invalid(field, v, "must be greater than or equal to 0")),
            Some(_) => {}
            None => errors.push(Cause::invalid(field, v, "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")),
        },
        _ => {}
    }
}

fn pod_disruption_budget(obj: &Value, errors: &mut Errors) {
    let spec = at(obj, "/spec");
    let (min, max) = (spec.get("minAvailable"), spec.get("maxUnavailable"));
    if min.is_some_and(|v| !v.is_null()) && max.is_some_and(|v| !v.is_null()) {
        errors.push(Cause::invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"));
    }
    int_or_percent("spec.minAvailable", min, errors);
    int_or_percent("spec.maxUnavailable", max, errors);
    errors.one_of("spec.unhealthyPodEvictionPolicy", spec.get("unhealthyPodEvictionPolicy"), &["AlwaysAllow", "IfHealthyBudget"]);
    super::meta::validate_labels(spec.pointer("/selector/matchLabels"), "spec.selector.matchLabels", errors);
}

fn priority_class(obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let name = crate::objects::name(obj);
    let system = matches!(name, "system-node-critical" | "system-cluster-critical");
    if name.starts_with("system-") && !system {
        errors.push(Cause::forbidden("metadata.name", "priority class names with 'system-' prefix are reserved"));
    }
    if !system && obj.get("value").and_then(Value::as_i64).is_some_and(|v| v > HIGHEST_USER_PRIORITY) {
        errors.push(Cause::forbidden("value", format!("maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}")));
    }
    errors.one_of("preemptionPolicy", obj.get("preemptionPolicy"), &["Never", "PreemptLowerPriority"]);
    if let Some(old) = old {
        if at(obj, "/value") != at(old, "/value") {
            errors.push(Cause::forbidden("value", "may not be changed in an update."));
        }
        immutable(errors, "preemptionPolicy", at(obj, "/preemptionPolicy"), at(old, "/preemptionPolicy"));
    }
}

fn horizontal_pod_autoscaler(obj: &Value, errors: &mut Errors) {
    let spec = at(obj, "/spec");
    errors.required_str("spec.scaleTargetRef.kind", spec.pointer("/scaleTargetRef/kind"));
    errors.required_str("spec.scaleTargetRef.name", spec.pointer("/scaleTargetRef/name"));
    let min = spec.get("minReplicas").and_then(Value::as_i64);
    if let Some(n) = min.filter(|n| *n < 1) {
        errors.push(Cause::invalid("spec.minReplicas", &Value::from(n), "must be greater than or equal to 1"));
    }
    let max = spec.get("maxReplicas").and_then(Value::as_i64).unwrap_or(0);
    if max < min.unwrap_or(1) {
        errors.push(Cause::invalid("spec.maxReplicas", &Value::from(max), "must be greater than or equal to `minReplicas`"));
    }
    errors.at_least("spec.targetCPUUtilizationPercentage", spec.get("targetCPUUtilizationPercentage"), 1);
    for (i, metric) in items(spec, "/metrics").iter().enumerate() {
        errors.one_of(
            &format!("spec.metrics[{i}].type"),
            Some(at(metric, "/type")),
            &["ContainerResource", "External", "Object", "Pods", "Resource"],
        );
    }
}

fn ingress(obj: &Value, errors: &mut Errors) {
    let spec = at(obj, "/spec");
    let rules = items(spec, "/rules");
    if rules.is_empty() && spec.get("defaultBackend").is_none_or(Value::is_null) {
        errors.push(Cause::invalid("spec", spec, "either `defaultBackend` or `rules` must be specified"));
    }
    for (i, rule) in rules.iter().enumerate() {
        for (j, path) in items(rule, "/http/paths").iter().enumerate() {
            let field = format!("spec.rules[{i}].http.paths[{j}]");
            match path.get("pathType").and_then(Value::as_str) {
                None => {
                    let mut cause = Cause::required(format!("{field}.pathType"));
                    cause.message = "Required value: pathType must be specified".into();
                    errors.push(cause);
                }
                Some(kind) => {
                    errors.one_of(&format!("{field}.pathType"), path.get("pathType"), &["Exact", "ImplementationSpecific", "Prefix"]);
                    let p = path.get("path").and_then(Value::as_str).unwrap_or_default();
                    if kind != "ImplementationSpecific" && !p.starts_with('/') {
                        errors.push(Cause::invalid(format!("{field}.path"), &Value::String(p.into()), "must be an absolute path"));
                    }
                }
            }
            backend(at(path, "/backend"), &format!("{field}.backend"), errors);
        }
    }
    if let Some(b) = spec.get("defaultBackend").filter(|b| !b.is_null()) {
        backend(b, "spec.defaultBackend", errors);
    }
}

fn backend(b: &Value, field: &str, errors: &mut Errors) {
    let service = b.get("service").filter(|s| !s.is_null());
    let resource = b.get("resource").filter(|r| !r.is_null());
    match (service, resource) {
        (Some(_), Some(_)) => errors.push(Cause::invalid(field, b, "cannot set both resource and service backends")),
        (None, None) => errors.push(Cause::invalid(field, b, "resource or service backend is required")),
        (Some(service), None) => {
            errors.required_str(&format!("{field}.service.name"), service.get("name"));
            let port = at(service, "/port");
            let named = port.get("name").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
            let numbered = port.get("number").and_then(Value::as_i64).is_some_and(|n| n != 0);
            match (named, numbered) {
                (true, true) => errors.push(Cause::invalid(format!("{field}.service.port"), port, "cannot set both port name & port number")),
                (false, false) => errors.push(Cause::invalid(format!("{field}.service.port"), port, "port name or number is required")),
                (false, true) => errors.port_range(&format!("{field}.service.port.number"), at(port, "/number"), 1, 65535),
                (true, false) => {}
            }
        }
        (None, Some(_)) => {}
    }
}

fn storage_class(obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    errors.required_str("provisioner", obj.get("provisioner"));
    errors.one_of("reclaimPolicy", obj.get("reclaimPolicy"), &["Delete", "Retain"]);
    errors.one_of("volumeBindingMode", obj.get("volumeBindingMode"), &["Immediate", "WaitForFirstConsumer"]);
    if let Some(old) = old {
        for field in ["parameters", "provisioner", "reclaimPolicy", "volumeBindingMode"] {
            if obj.get(field) != old.get(field) {
                errors.push(Cause::forbidden(field, format!("updates to {field} are forbidden.")));
            }
        }
    }
}

/// The in-line volume sources a PersistentVolume may name (exactly one).
const VOLUME_SOURCES: &[&str] = &[
    "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "fc", "flexVolume", "flocker",
    "gcePersistentDisk", "glusterfs", "hostPath", "iscsi", "local", "nfs", "photonPersistentDisk", "portworxVolume",
    "quobyte", "rbd", "scaleIO", "storageos", "vsphereVolume",
];

const ACCESS_MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];

fn access_modes(field: &str, modes: &[Value], errors: &mut Errors) {
    if modes.is_empty() {
        let mut cause = Cause::required(field);
        cause.message = "Required value: at least 1 access mode is required".into();
        errors.push(cause);
    }
    for mode in modes {
        errors.one_of(field, Some(mode), ACCESS_MODES);
    }
}

fn persistent_volume(obj: &Value, errors: &mut Errors) {
    let spec = at(obj, "/spec");
    access_modes("spec.accessModes", items(spec, "/accessModes"), errors);
    if spec.pointer("/capacity/storage").is_none() {
        errors.push(Cause::required("spec.capacity"));
    }
    errors.one_of(
        "spec.persistentVolumeReclaimPolicy",
        spec.get("persistentVolumeReclaimPolicy"),
        &["Delete", "Recycle", "Retain"],
    );
    errors.one_of("spec.volumeMode", spec.get("volumeMode"), &["Block", "Filesystem"]);
    let sources = VOLUME_SOURCES.iter().filter(|s| spec.get(**s).is_some_and(|v| !v.is_null())).count();
    match sources {
        0 => {
            let mut cause = Cause::required("spec");
            cause.message = "Required value: must specify a volume type".into();
            errors.push(cause);
        }
        1 => {}
        _ => errors.push(Cause::forbidden("spec", "may not specify more than 1 volume type")),
    }
}

fn persistent_volume_claim(obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let spec = at(obj, "/spec");
    access_modes("spec.accessModes", items(spec, "/accessModes"), errors);
    if spec.pointer("/resources/requests/storage").is_none() {
        errors.push(Cause::required("spec.resources[storage]"));
    }
    errors.one_of("spec.volumeMode", spec.get("volumeMode"), &["Block", "Filesystem"]);
    if let Some(old) = old {
        // Only the requests (for expansion) and the binding may change after creation.
        let strip = |spec: &Value| {
            let mut spec = spec.clone();
            if let Some(map) = spec.as_object_mut() {
                map.remove("resources");
                map.remove("volumeAttributesClassName");
                if old.pointer("/spec/volumeName").and_then(Value::as_str).is_none_or(str::is_empty) {
                    map.remove("volumeName");
                }
            }
            spec
        };
        if strip(spec) != strip(at(old, "/spec")) {
            errors.push(Cause::forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
    }
}
