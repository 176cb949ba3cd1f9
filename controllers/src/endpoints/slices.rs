//! The EndpointSlice controller's half: the slices a Service should have (one group
//! per address family and per set of resolved ports, at most 100 endpoints a slice,
//! an empty placeholder when nothing is selected) and the writes that get there,
//! reusing existing slices before creating new ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};

use super::backends::{self, Backend, Port};
use super::{Context, RESYNC};
use crate::Error;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGER: &str = "endpointslice-controller.k8s.io";
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
const MAX_ENDPOINTS: usize = 100;

/// One slice's worth of endpoints.
#[derive(Debug, PartialEq)]
pub struct Desired {
    pub address_type: &'static str,
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

fn endpoint_port(port: &Port) -> EndpointPort {
    EndpointPort {
        name: Some(port.name.clone().unwrap_or_default()),
        port: Some(port.port),
        protocol: Some(port.protocol.clone()),
        app_protocol: port.app_protocol.clone(),
    }
}

fn endpoint(backend: &Backend, ip: &str) -> Endpoint {
    Endpoint {
        addresses: vec![ip.to_owned()],
        conditions: Some(EndpointConditions {
            ready: Some(backend.ready),
            serving: Some(backend.serving),
            terminating: Some(backend.terminating),
        }),
        hostname: backend.hostname.clone(),
        node_name: backend.node.clone(),
        target_ref: Some(backend.pod.clone()),
        ..Endpoint::default()
    }
}

/// The slices `service` should have for `backends`.
pub fn desired(service: &Service, backends: &[Backend]) -> Vec<Desired> {
    let mut out = Vec::new();
    for family in backends::families(service) {
        let mut groups: BTreeMap<&[Port], Vec<Endpoint>> = BTreeMap::new();
        for backend in backends {
            if let Some(ip) = backend.ips.iter().find(|ip| backends::in_family(ip, family)) {
                groups.entry(&backend.ports).or_default().push(endpoint(backend, ip));
            }
        }
        if groups.is_empty() {
            out.push(Desired { address_type: family, ports: Vec::new(), endpoints: Vec::new() });
        }
        for (ports, endpoints) in groups {
            let ports: Vec<EndpointPort> = ports.iter().map(endpoint_port).collect();
            for chunk in endpoints.chunks(MAX_ENDPOINTS) {
                out.push(Desired { address_type: family, ports: ports.clone(), endpoints: chunk.to_vec() });
            }
        }
    }
    out
}

/// The labels of a Service's slices: the Service's own, plus whose they are.
pub fn labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = service
        .labels()
        .iter()
        .filter(|(k, _)| ![SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(SERVICE_NAME_LABEL.into(), service.name_any());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGER.into());
    if backends::is_headless(service) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels
}

fn same_shape(slice: &EndpointSlice, want: &Desired) -> bool {
    slice.address_type == want.address_type && slice.ports.clone().unwrap_or_default() == want.ports
}

fn same(slice: &EndpointSlice, want: &Desired, labels: &BTreeMap<String, String>) -> bool {
    same_shape(slice, want) && slice.endpoints == want.endpoints && slice.labels() == labels
}

/// Brings `service`'s slices to what its pods say.
pub async fn reconcile(service: Arc<Service>, context: Arc<Context>) -> Result<Action, Error> {
    let namespace = service.namespace().unwrap_or_default();
    let api = Api::<EndpointSlice>::namespaced(context.client.clone(), &namespace);
    let mine = format!("{SERVICE_NAME_LABEL}={},{MANAGED_BY_LABEL}={MANAGER}", service.name_any());
    let mut unused = api.list(&ListParams::default().labels(&mine)).await?.items;

    let wanted = match backends::managed_selector(&service) {
        // No selector (any more): the slices are someone else's to write; ours go.
        None => Vec::new(),
        Some(selector) => {
            let pods = Api::<Pod>::namespaced(context.client.clone(), &namespace);
            let selected = pods.list(&ListParams::default().labels(&selector.to_string())).await?.items;
            desired(&service, &backends::backends(&service, &selector, &selected))
        }
    };
    tracing::debug!(service = %service.name_any(), slices = wanted.len(), "reconciling endpoint slices");
    let labels = labels(&service);
    let owner = service.controller_owner_ref(&()).expect("a stored Service has a name and uid");
    let mut updates = Vec::new();
    let mut creates = Vec::new();
    for want in wanted {
        if let Some(i) = unused.iter().position(|s| same(s, &want, &labels)) {
            unused.remove(i);
        } else if let Some(i) = unused.iter().position(|s| same_shape(s, &want)) {
            updates.push((unused.remove(i), want));
        } else {
            creates.push(want);
        }
    }
    // A slice of the right family but other ports is rewritten rather than replaced
    // (the address type is all that cannot change).
    let mut fresh = Vec::new();
    for want in creates {
        match unused.iter().position(|s| s.address_type == want.address_type) {
            Some(i) => updates.push((unused.remove(i), want)),
            None => fresh.push(want),
        }
    }
    for (mut slice, want) in updates {
        slice.endpoints = want.endpoints;
        slice.ports = Some(want.ports);
        slice.metadata.labels = Some(labels.clone());
        api.replace(&slice.name_any(), &PostParams::default(), &slice).await?;
    }
    for want in fresh {
        let slice = EndpointSlice {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", service.name_any())),
                labels: Some(labels.clone()),
                owner_references: Some(vec![owner.clone()]),
                ..ObjectMeta::default()
            },
            address_type: want.address_type.into(),
            endpoints: want.endpoints,
            ports: Some(want.ports),
        };
        match api.create(&PostParams::default(), &slice).await {
            Ok(_) => {}
            // The namespace is going away: so are the slices.
            Err(kube::Error::Api(status)) if status.code == 403 && status.reason == "Forbidden" => {}
            Err(error) => return Err(error.into()),
        }
    }
    for slice in unused {
        match api.delete(&slice.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(Action::requeue(RESYNC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use serde_json::json;

    fn backend(name: &str, ips: &[&str], ports: &[i32]) -> Backend {
        Backend {
            pod: ObjectReference { kind: Some("Pod".into()), name: Some(name.into()), ..ObjectReference::default() },
            ips: ips.iter().map(|s| s.to_string()).collect(),
            node: None,
            hostname: None,
            ready: true,
            serving: true,
            terminating: false,
            ports: ports
                .iter()
                .map(|&port| Port { name: Some("http".into()), port, protocol: "TCP".into(), app_protocol: None })
                .collect(),
        }
    }

    fn service(families: &[&str]) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"ipFamilies": families}})).unwrap()
    }

    #[test]
    fn slices_split_by_family_ports_and_size() {
        let mut many: Vec<Backend> =
            (0..150).map(|i| backend(&format!("p{i}"), &[&format!("10.0.0.{i}")], &[8080])).collect();
        many.push(backend("odd", &["10.0.1.1", "fd00::1"], &[9090]));
        let slices = desired(&service(&["IPv4", "IPv6"]), &many);
        let shape: Vec<(&str, Option<i32>, usize)> =
            slices.iter().map(|s| (s.address_type, s.ports.first().and_then(|p| p.port), s.endpoints.len())).collect();
        assert_eq!(
            shape,
            [("IPv4", Some(8080), 100), ("IPv4", Some(8080), 50), ("IPv4", Some(9090), 1), ("IPv6", Some(9090), 1)]
        );
    }

    #[test]
    fn nothing_selected_leaves_a_placeholder() {
        let slices = desired(&service(&[]), &[]);
        assert_eq!(slices, [Desired { address_type: "IPv4", ports: Vec::new(), endpoints: Vec::new() }]);
    }
}
