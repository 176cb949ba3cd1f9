//! Pod and pod template validation.

use std::collections::HashSet;

use serde_json::Value;

use super::{Errors, at, items, names, quantity};
use crate::status::Cause;

const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];

pub fn validate_pod(obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let spec = at(obj, "/spec");
    validate_spec(spec, "spec", errors);
    if let Some(old) = old {
        validate_spec_update(spec, at(old, "/spec"), errors);
    }
}

/// Validates a `PodSpec` at `path` (`spec` or `spec.template.spec`).
pub fn validate_spec(spec: &Value, path: &str, errors: &mut Errors) {
    let containers = items(spec, "/containers");
    if containers.is_empty() {
        errors.push(Cause::required(format!("{path}.containers")));
    }
    let mut names_seen = HashSet::new();
    for (list, field) in [("/initContainers", "initContainers"), ("/containers", "containers")] {
        for (i, container) in items(spec, list).iter().enumerate() {
            validate_container(container, &format!("{path}.{field}[{i}]"), &mut names_seen, errors);
        }
    }
    errors.one_of(&format!("{path}.restartPolicy"), spec.get("restartPolicy"), &["Always", "OnFailure", "Never"]);
    errors.one_of(
        &format!("{path}.dnsPolicy"),
        spec.get("dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    );
    errors.at_least(&format!("{path}.terminationGracePeriodSeconds"), spec.get("terminationGracePeriodSeconds"), 0);
    if let Some(deadline) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64) {
        if deadline < 1 {
            errors.push(Cause::invalid(format!("{path}.activeDeadlineSeconds"), &Value::from(deadline), "must be between 1 and 2147483647, inclusive"));
        }
    }
    if let Some(node) = spec.get("nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
        errors.check(&format!("{path}.nodeName"), node, names::dns1123_subdomain(node));
    }
    if let Some(sa) = spec.get("serviceAccountName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
        errors.check(&format!("{path}.serviceAccountName"), sa, names::dns1123_subdomain(sa));
    }
    super::meta::validate_labels(spec.get("nodeSelector"), &format!("{path}.nodeSelector"), errors);
    let mut volumes = HashSet::new();
    for (i, volume) in items(spec, "/volumes").iter().enumerate() {
        let field = format!("{path}.volumes[{i}].name");
        if let Some(name) = errors.required_str(&field, volume.get("name")) {
            errors.check(&field, name, names::dns1123_label(name));
            if !volumes.insert(name.to_owned()) {
                errors.push(Cause::duplicate(field, &Value::String(name.into())));
            }
        }
    }
}

fn validate_container(c: &Value, path: &str, seen: &mut HashSet<String>, errors: &mut Errors) {
    let name_field = format!("{path}.name");
    if let Some(name) = errors.required_str(&name_field, c.get("name")) {
        errors.check(&name_field, name, names::dns1123_label(name));
        if !seen.insert(name.to_owned()) {
            errors.push(Cause::duplicate(name_field, &Value::String(name.into())));
        }
    }
    errors.required_str(&format!("{path}.image"), c.get("image"));
    errors.one_of(&format!("{path}.imagePullPolicy"), c.get("imagePullPolicy"), &["Always", "IfNotPresent", "Never"]);
    errors.one_of(
        &format!("{path}.terminationMessagePolicy"),
        c.get("terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
    );
    let mut port_names = HashSet::new();
    for (i, port) in items(c, "/ports").iter().enumerate() {
        let field = format!("{path}.ports[{i}]");
        match port.get("containerPort") {
            Some(p) => errors.port_range(&format!("{field}.containerPort"), p, 1, 65535),
            None => errors.push(Cause::required(format!("{field}.containerPort"))),
        }
        if let Some(host) = port.get("hostPort").filter(|p| p.as_i64() != Some(0)) {
            errors.port_range(&format!("{field}.hostPort"), host, 1, 65535);
        }
        errors.one_of(&format!("{field}.protocol"), port.get("protocol"), PROTOCOLS);
        if let Some(name) = port.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            errors.check(&format!("{field}.name"), name, names::port_name(name));
            if !port_names.insert(name.to_owned()) {
                errors.push(Cause::duplicate(format!("{field}.name"), &Value::String(name.into())));
            }
        }
    }
    for (i, env) in items(c, "/env").iter().enumerate() {
        errors.required_str(&format!("{path}.env[{i}].name"), env.get("name"));
    }
    for section in ["limits", "requests"] {
        let Some(map) = c.pointer(&format!("/resources/{section}")).and_then(Value::as_object) else { continue };
        for (resource, value) in map {
            let field = format!("{path}.resources.{section}[{resource}]");
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => String::new(),
            };
            match quantity::parse(&text) {
                None => errors.push(Cause::invalid(field, value, quantity::QUANTITY_MSG)),
                Some(q) if q < 0.0 => errors.push(Cause::invalid(field, value, "must be greater than or equal to 0")),
                Some(_) => {}
            }
        }
    }
}

/// Pod updates may change only images, the active deadline and added tolerations.
fn validate_spec_update(new: &Value, old: &Value, errors: &mut Errors) {
    let neutral = |spec: &Value| {
        let mut spec = spec.clone();
        for list in ["containers", "initContainers"] {
            if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
                for c in cs {
                    if let Some(c) = c.as_object_mut() {
                        c.remove("image");
                    }
                }
            }
        }
        if let Some(s) = spec.as_object_mut() {
            s.remove("activeDeadlineSeconds");
            s.remove("tolerations");
            s.remove("terminationGracePeriodSeconds");
        }
        spec
    };
    if neutral(new) != neutral(old) {
        errors.push(Cause::forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ));
    }
}
