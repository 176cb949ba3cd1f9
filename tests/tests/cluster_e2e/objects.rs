//! The API objects of the scenario: Services without selectors (the server allocates the
//! ClusterIP and NodePort) with the EndpointSlices the test writes itself, and Services
//! with selectors over Pod objects, whose slices the endpointslice controller writes.

use std::net::Ipv4Addr;

use k8s_openapi::api::{
    core::v1::{Pod, Service},
    discovery::v1::EndpointSlice,
};
use serde_json::json;

/// Name of the port in the Service and its slices (they are matched by name).
pub const PORT_NAME: &str = "http";

/// A backend as a slice lists it.
#[derive(Clone, Debug)]
pub struct Backend {
    pub address: Ipv4Addr,
    pub node_name: String,
}

/// A TCP Service `name` on `port` forwarding to `target`; `node_port` makes it a NodePort
/// Service whose node port the server allocates.
pub fn service(name: &str, port: u16, target: u16, node_port: bool) -> Service {
    let kind = if node_port { "NodePort" } else { "ClusterIP" };
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": kind,
            "ports": [{"name": PORT_NAME, "protocol": "TCP", "port": port, "targetPort": target}],
        },
    }))
    .expect("a valid Service")
}

/// A TCP ClusterIP Service `name` on `port` selecting pods labelled `app: <name>`, to
/// their container port named [`PORT_NAME`].
pub fn selecting_service(name: &str, port: u16) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": PORT_NAME, "protocol": "TCP", "port": port, "targetPort": PORT_NAME}],
        },
    }))
    .expect("a valid Service")
}

/// The Pod object of a backend of `app`, bound to its node, serving on `target` (the
/// container port named [`PORT_NAME`]).
pub fn pod(name: &str, app: &str, node_name: &str, target: u16) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "nodeName": node_name,
            "containers": [{
                "name": "netprobe",
                "image": "netprobe",
                "ports": [{"name": PORT_NAME, "containerPort": target}],
            }],
        },
    }))
    .expect("a valid Pod")
}

/// The slice `name` of Service `service`: every backend ready, serving, on its node.
pub fn slice(name: &str, service: &str, target: u16, backends: &[Backend]) -> EndpointSlice {
    let endpoints: Vec<_> = backends
        .iter()
        .map(|backend| {
            json!({
                "addresses": [backend.address.to_string()],
                "nodeName": backend.node_name,
                "conditions": {"ready": true, "serving": true, "terminating": false},
            })
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": PORT_NAME, "protocol": "TCP", "port": target}],
        "endpoints": endpoints,
    }))
    .expect("a valid EndpointSlice")
}

/// The IPv4 ClusterIP the server allocated.
pub fn cluster_ip(service: &Service) -> Ipv4Addr {
    let spec = service.spec.as_ref().expect("a created Service has a spec");
    let ip = spec
        .cluster_ip
        .as_deref()
        .unwrap_or_else(|| panic!("no clusterIP allocated: {spec:?}"));
    ip.parse()
        .unwrap_or_else(|error| panic!("clusterIP {ip:?} is not IPv4: {error}"))
}

/// The node port the server allocated to the first port.
pub fn node_port(service: &Service) -> u16 {
    let spec = service.spec.as_ref().expect("a created Service has a spec");
    let port = spec
        .ports
        .as_ref()
        .and_then(|ports| ports.first())
        .and_then(|port| port.node_port)
        .unwrap_or_else(|| panic!("no nodePort allocated: {spec:?}"));
    u16::try_from(port).unwrap_or_else(|_| panic!("nodePort {port} is out of range"))
}
