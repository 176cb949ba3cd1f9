//! Service validation (allocation conflicts are checked by [`crate::alloc`]).

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::Value;

use super::{Errors, at, items, names};
use crate::status::Cause;

const TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];

pub fn validate(obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let spec = at(obj, "/spec");
    errors.one_of("spec.type", spec.get("type"), TYPES);
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    let ports = items(spec, "/ports");
    if ports.is_empty() && kind != "ExternalName" && !headless {
        errors.push(Cause::required("spec.ports"));
    }
    let mut port_names = HashSet::new();
    let mut port_keys = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let field = format!("spec.ports[{i}]");
        match port
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            Some(name) => {
                errors.check(&format!("{field}.name"), name, names::dns1123_label(name));
                if !port_names.insert(name.to_owned()) {
                    errors.push(Cause::duplicate(
                        format!("{field}.name"),
                        &Value::String(name.into()),
                    ));
                }
            }
            None if ports.len() > 1 => errors.push(Cause::required(format!("{field}.name"))),
            None => {}
        }
        match port.get("port") {
            Some(p) => errors.port_range(&format!("{field}.port"), p, 1, 65535),
            None => errors.push(Cause::required(format!("{field}.port"))),
        }
        errors.one_of(
            &format!("{field}.protocol"),
            port.get("protocol"),
            &["TCP", "UDP", "SCTP"],
        );
        let key = (
            port.get("port").and_then(Value::as_i64),
            port.get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP"),
        );
        if !port_keys.insert(key) {
            errors.push(Cause::duplicate(
                format!("{field}"),
                &serde_json::json!({"port": key.0, "protocol": key.1}),
            ));
        }
        match port.get("targetPort") {
            Some(Value::Number(n)) => errors.port_range(
                &format!("{field}.targetPort"),
                &Value::Number(n.clone()),
                1,
                65535,
            ),
            Some(Value::String(name)) => {
                errors.check(&format!("{field}.targetPort"), name, names::port_name(name))
            }
            _ => {}
        }
        if let Some(node_port) = port
            .get("nodePort")
            .filter(|p| p.as_i64().unwrap_or(0) != 0)
        {
            if kind == "ClusterIP" || kind == "ExternalName" {
                errors.push(Cause::forbidden(
                    format!("{field}.nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else {
                errors.port_range(&format!("{field}.nodePort"), node_port, 1, 65535);
            }
        }
    }
    if kind == "ExternalName" {
        match spec
            .get("externalName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            Some(name) => errors.check(
                "spec.externalName",
                name,
                names::dns1123_subdomain(name.trim_end_matches('.')),
            ),
            None => errors.push(Cause::required("spec.externalName")),
        }
    }
    for (i, ip) in items(spec, "/clusterIPs").iter().enumerate() {
        let text = ip.as_str().unwrap_or_default();
        if text != "None" && text.parse::<IpAddr>().is_err() {
            errors.push(Cause::invalid(
                format!("spec.clusterIPs[{i}]"),
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    if let Some(ip) = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && *s != "None")
    {
        if ip.parse::<IpAddr>().is_err() {
            errors.push(Cause::invalid(
                "spec.clusterIP",
                &Value::String(ip.into()),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    errors.one_of(
        "spec.sessionAffinity",
        spec.get("sessionAffinity"),
        &["ClientIP", "None"],
    );
    errors.one_of(
        "spec.ipFamilyPolicy",
        spec.get("ipFamilyPolicy"),
        &["SingleStack", "PreferDualStack", "RequireDualStack"],
    );
    for (i, family) in items(spec, "/ipFamilies").iter().enumerate() {
        errors.one_of(
            &format!("spec.ipFamilies[{i}]"),
            Some(family),
            &["IPv4", "IPv6"],
        );
    }
    errors.one_of(
        "spec.externalTrafficPolicy",
        spec.get("externalTrafficPolicy"),
        &["Cluster", "Local"],
    );
    errors.one_of(
        "spec.internalTrafficPolicy",
        spec.get("internalTrafficPolicy"),
        &["Cluster", "Local"],
    );
    super::meta::validate_labels(spec.get("selector"), "spec.selector", errors);
    if let Some(old) = old {
        let old_ip = at(old, "/spec/clusterIP");
        let new_ip = at(obj, "/spec/clusterIP");
        let old_kind = old
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP");
        if old_kind != "ExternalName"
            && kind != "ExternalName"
            && !old_ip.is_null()
            && new_ip != old_ip
        {
            // Upstream reports the whole new list, printed as Go prints a []string.
            let ips: Vec<String> = match obj.pointer("/spec/clusterIPs").and_then(Value::as_array) {
                Some(list) => list
                    .iter()
                    .map(|ip| format!("{:?}", ip.as_str().unwrap_or_default()))
                    .collect(),
                None => new_ip
                    .as_str()
                    .map(|ip| vec![format!("{ip:?}")])
                    .unwrap_or_default(),
            };
            errors.push(Cause {
                reason: "FieldValueInvalid",
                field: "spec.clusterIPs[0]".into(),
                message: format!(
                    "Invalid value: []string{{{}}}: may not change once set",
                    ips.join(", ")
                ),
            });
        }
    }
}
