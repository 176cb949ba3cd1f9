//! What a Service selects: its pods as backends, each with its addresses, readiness
//! and the port every service port resolves to on it (a named `targetPort` is looked
//! up in the pod's container ports, so it can differ from pod to pod).

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

/// One service port as it resolves on one pod.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    pub name: Option<String>,
    pub port: i32,
    pub protocol: String,
    pub app_protocol: Option<String>,
}

/// A selected pod.
#[derive(Clone, Debug)]
pub struct Backend {
    pub pod: ObjectReference,
    pub ips: Vec<String>,
    pub node: Option<String>,
    pub hostname: Option<String>,
    /// Receives new traffic (`publishNotReadyAddresses`, or ready and not terminating).
    pub ready: bool,
    /// Its `Ready` condition, whatever else.
    pub serving: bool,
    pub terminating: bool,
    /// The service ports that resolve on this pod, in the service's order.
    pub ports: Vec<Port>,
}

/// The selector of a Service whose endpoints the controllers manage: one with a
/// selector that is not ExternalName. Others' endpoints are their owners' business.
pub fn managed_selector(service: &Service) -> Option<Selector> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    let labels = spec.selector.as_ref().filter(|s| !s.is_empty())?;
    Some(labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

pub fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// The Service's IP families, primary first (IPv4 when it names none).
pub fn families(service: &Service) -> Vec<&'static str> {
    let spec = service.spec.as_ref();
    let named = spec.and_then(|s| s.ip_families.as_ref()).map(|f| f.iter().map(|f| family(f)).collect::<Vec<_>>());
    match named {
        Some(families) if !families.is_empty() => families,
        _ => {
            let ipv6 = spec.and_then(|s| s.cluster_ip.as_deref()).is_some_and(|ip| ip.contains(':'));
            vec![if ipv6 { "IPv6" } else { "IPv4" }]
        }
    }
}

fn family(name: &str) -> &'static str {
    if name == "IPv6" { "IPv6" } else { "IPv4" }
}

/// Whether an address belongs to an address family.
pub fn in_family(ip: &str, family: &str) -> bool {
    ip.contains(':') == (family == "IPv6")
}

fn resolve(port: &ServicePort, pod: &Pod) -> Option<i32> {
    match port.target_port.as_ref() {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse() {
                return Some(n);
            }
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let containers = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
            containers.iter().flat_map(|c| c.ports.iter().flatten()).find_map(|p| {
                let same_protocol = p.protocol.as_deref().unwrap_or("TCP") == protocol;
                (p.name.as_deref() == Some(name) && same_protocol).then_some(p.container_port)
            })
        }
    }
}

/// The pods of `pods` that `selector` selects and that have an address, as backends.
/// Finished pods are left out; terminating ones are kept and say so.
pub fn backends(service: &Service, selector: &Selector, pods: &[Pod]) -> Vec<Backend> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let mut out = Vec::new();
    for pod in pods {
        if !selector.matches(pod.labels()) || !crate::pods::is_active_or_terminating(pod) {
            continue;
        }
        let status = pod.status.clone().unwrap_or_default();
        let mut ips: Vec<String> = status.pod_ips.iter().flatten().map(|p| p.ip.clone()).collect();
        if ips.is_empty() {
            ips.extend(status.pod_ip.clone().filter(|ip| !ip.is_empty()));
        }
        if ips.is_empty() {
            continue;
        }
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let serving = crate::pods::is_ready(pod);
        let pod_spec = pod.spec.clone().unwrap_or_default();
        let hostname = pod_spec.hostname.filter(|_| pod_spec.subdomain.as_deref() == Some(service.name_any().as_str()));
        let ports = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                Some(Port {
                    name: p.name.clone(),
                    port: resolve(p, pod)?,
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    app_protocol: p.app_protocol.clone(),
                })
            })
            .collect();
        out.push(Backend {
            pod: ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.namespace(),
                name: Some(pod.name_any()),
                uid: pod.uid(),
                ..ObjectReference::default()
            },
            ips,
            node: pod_spec.node_name,
            hostname,
            ready: publish_not_ready || (serving && !terminating),
            serving,
            terminating,
            ports,
        });
    }
    out.sort_by(|a, b| a.pod.name.cmp(&b.pod.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ready: bool, port_name: &str, port: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "ports": [{"name": port_name, "containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": "10.1.0.1", "podIPs": [{"ip": "10.1.0.1"}, {"ip": "fd00::1"}],
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .unwrap()
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "web"},
                {"name": "metrics", "port": 9090, "targetPort": 9090},
            ]},
        }))
        .unwrap();
        let selector = managed_selector(&service).unwrap();
        let found = backends(&service, &selector, &[pod("a", true, "web", 8080), pod("b", false, "other", 81)]);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].ports.iter().map(|p| p.port).collect::<Vec<_>>(), [8080, 9090]);
        assert_eq!(found[1].ports.iter().map(|p| p.port).collect::<Vec<_>>(), [9090]);
        assert!(found[0].ready && !found[1].ready && !found[1].serving);
        assert_eq!(families(&service), ["IPv4"]);
    }
}
