//! Validation of the simpler kinds: ConfigMaps, Secrets, Namespaces, Nodes, Endpoints,
//! EndpointSlices, NetworkPolicies, Leases, Events, ServiceAccounts.

use std::net::IpAddr;

use base64::Engine;
use serde_json::Value;
use waggle_apimachinery::registry::Resource;

use super::{Errors, at, items, names};
use crate::status::Cause;

/// ConfigMaps and Secrets may hold at most 1 MiB of data.
const DATA_MAX: usize = 1024 * 1024;

pub fn validate(resource: &Resource, obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    match (resource.group, resource.kind) {
        ("", "ConfigMap") => validate_data(obj, &["data", "binaryData"], false, errors),
        ("", "Secret") => {
            validate_data(obj, &["data"], true, errors);
            if let Some(old) = old {
                super::immutable(errors, "type", at(obj, "/type"), at(old, "/type"));
            }
            if obj.get("type").and_then(Value::as_str) == Some("kubernetes.io/service-account-token")
                && obj.pointer("/metadata/annotations/kubernetes.io~1service-account.name").is_none()
            {
                errors.push(Cause::required("metadata.annotations[kubernetes.io/service-account.name]"));
            }
        }
        ("", "Namespace") => {
            for (i, f) in items(obj, "/spec/finalizers").iter().enumerate() {
                let f = f.as_str().unwrap_or_default();
                errors.check(&format!("spec.finalizers[{i}]"), f, names::qualified_name(f));
            }
        }
        ("", "Node") => {
            if let Some(cidr) = obj.pointer("/spec/podCIDR").and_then(Value::as_str).filter(|c| !c.is_empty()) {
                if crate::alloc::cidr::Cidr::parse(cidr).is_err() {
                    errors.push(Cause::invalid("spec.podCIDR", &Value::String(cidr.into()), "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"));
                }
            }
        }
        ("", "Endpoints") => {
            for (i, subset) in items(obj, "/subsets").iter().enumerate() {
                for (j, address) in items(subset, "/addresses").iter().enumerate() {
                    check_ip(&format!("subsets[{i}].addresses[{j}].ip"), address.get("ip"), errors);
                }
                for (j, port) in items(subset, "/ports").iter().enumerate() {
                    errors.port_range(&format!("subsets[{i}].ports[{j}].port"), at(port, "/port"), 1, 65535);
                    errors.one_of(&format!("subsets[{i}].ports[{j}].protocol"), port.get("protocol"), &["TCP", "UDP", "SCTP"]);
                }
            }
        }
        ("discovery.k8s.io", "EndpointSlice") => validate_endpoint_slice(obj, old, errors),
        ("networking.k8s.io", "NetworkPolicy") => {
            for (i, t) in items(obj, "/spec/policyTypes").iter().enumerate() {
                errors.one_of(&format!("spec.policyTypes[{i}]"), Some(t), &["Ingress", "Egress"]);
            }
            super::meta::validate_labels(obj.pointer("/spec/podSelector/matchLabels"), "spec.podSelector.matchLabels", errors);
        }
        ("coordination.k8s.io", "Lease") => {
            errors.at_least("spec.leaseDurationSeconds", obj.pointer("/spec/leaseDurationSeconds"), 1);
            errors.at_least("spec.leaseTransitions", obj.pointer("/spec/leaseTransitions"), 0);
        }
        ("", "Event") => {
            let event_ns = obj.pointer("/involvedObject/namespace").and_then(Value::as_str).unwrap_or_default();
            let ns = crate::objects::namespace(obj).unwrap_or_default();
            if !event_ns.is_empty() && event_ns != ns {
                errors.push(Cause::invalid("involvedObject.namespace", &Value::String(event_ns.into()), "does not match event.namespace"));
            }
        }
        _ => {}
    }
}

fn validate_data(obj: &Value, fields: &[&str], base64: bool, errors: &mut Errors) {
    let mut total = 0;
    for field in fields {
        let Some(map) = obj.get(*field).and_then(Value::as_object) else { continue };
        let binary = base64 || *field == "binaryData";
        for (key, value) in map {
            errors.check(&format!("{field}[{key}]"), key, names::config_key(key));
            let text = value.as_str().unwrap_or_default();
            if binary {
                match base64::engine::general_purpose::STANDARD.decode(text) {
                    Ok(bytes) => total += bytes.len(),
                    Err(_) => errors.push(Cause::invalid(format!("{field}[{key}]"), value, "illegal base64 data")),
                }
            } else {
                total += text.len();
            }
        }
    }
    if total > DATA_MAX {
        errors.push(Cause::too_long("data", DATA_MAX));
    }
}

fn check_ip(field: &str, value: Option<&Value>, errors: &mut Errors) {
    match value.and_then(Value::as_str) {
        Some(ip) if ip.parse::<IpAddr>().is_ok() => {}
        Some(ip) => errors.push(Cause::invalid(field, &Value::String(ip.into()), "must be a valid IP address")),
        None => errors.push(Cause::required(field)),
    }
}

fn validate_endpoint_slice(obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let address_type = obj.get("addressType");
    match address_type {
        None => errors.push(Cause::required("addressType")),
        Some(t) => errors.one_of("addressType", Some(t), &["IPv4", "IPv6", "FQDN"]),
    }
    for (i, endpoint) in items(obj, "/endpoints").iter().enumerate() {
        let addresses = items(endpoint, "/addresses");
        if addresses.is_empty() {
            errors.push(Cause::required(format!("endpoints[{i}].addresses")));
        }
        if address_type.and_then(Value::as_str) != Some("FQDN") {
            for (j, a) in addresses.iter().enumerate() {
                check_ip(&format!("endpoints[{i}].addresses[{j}]"), Some(a), errors);
            }
        }
    }
    for (i, port) in items(obj, "/ports").iter().enumerate() {
        if let Some(p) = port.get("port").filter(|p| !p.is_null()) {
            errors.port_range(&format!("ports[{i}].port"), p, 1, 65535);
        }
        errors.one_of(&format!("ports[{i}].protocol"), port.get("protocol"), &["TCP", "UDP", "SCTP"]);
    }
    if let Some(old) = old {
        super::immutable(errors, "addressType", at(obj, "/addressType"), at(old, "/addressType"));
    }
}
