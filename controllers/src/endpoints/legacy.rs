//! The Endpoints controller's half: the v1 Endpoints object named after a Service
//! (what `kubectl describe service` prints as `Endpoints:`), one subset per set of
//! resolved ports, ready addresses apart from not-ready ones, primary family only.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service};
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::backends::{self, Backend, Port};
use super::slices::HEADLESS_LABEL;
use super::{Context, RESYNC};
use crate::Error;

/// Tells the EndpointSlice mirroring controller these are the controller's own.
const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";

/// The subsets `service` should publish for `backends`.
pub fn subsets(service: &Service, backends: &[Backend]) -> Vec<EndpointSubset> {
    let publish_not_ready = service.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false);
    let has_ports = service.spec.as_ref().and_then(|s| s.ports.as_ref()).is_some_and(|p| !p.is_empty());
    let family = backends::families(service)[0];
    let mut groups: BTreeMap<&[Port], (Vec<EndpointAddress>, Vec<EndpointAddress>)> = BTreeMap::new();
    for backend in backends {
        if (backend.terminating && !publish_not_ready) || (has_ports && backend.ports.is_empty()) {
            continue;
        }
        let Some(ip) = backend.ips.iter().find(|ip| backends::in_family(ip, family)) else { continue };
        let address = EndpointAddress {
            ip: ip.clone(),
            hostname: backend.hostname.clone(),
            node_name: backend.node.clone(),
            target_ref: Some(backend.pod.clone()),
        };
        let (ready, not_ready) = groups.entry(&backend.ports).or_default();
        if backend.ready { ready.push(address) } else { not_ready.push(address) }
    }
    groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            let ports: Vec<EndpointPort> = ports
                .iter()
                .map(|p| EndpointPort {
                    name: p.name.clone(),
                    port: p.port,
                    protocol: Some(p.protocol.clone()),
                    app_protocol: p.app_protocol.clone(),
                })
                .collect();
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

fn labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.labels().clone();
    labels.insert(SKIP_MIRROR_LABEL.into(), "true".into());
    if backends::is_headless(service) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

/// Brings the Endpoints of `service` to what its pods say. A Service without a
/// selector keeps whatever Endpoints its owner writes.
pub async fn reconcile(service: Arc<Service>, context: Arc<Context>) -> Result<Action, Error> {
    let Some(selector) = backends::managed_selector(&service) else { return Ok(Action::await_change()) };
    let namespace = service.namespace().unwrap_or_default();
    let pods = Api::<Pod>::namespaced(context.client.clone(), &namespace);
    let selected = pods.list(&ListParams::default().labels(&selector.to_string())).await?.items;
    let subsets = subsets(&service, &backends::backends(&service, &selector, &selected));
    let labels = labels(&service);
    let api = Api::<Endpoints>::namespaced(context.client.clone(), &namespace);
    let name = service.name_any();
    let result = match api.get_opt(&name).await? {
        Some(current) if current.subsets.clone().unwrap_or_default() == subsets && current.labels() == &labels => {
            return Ok(Action::requeue(RESYNC));
        }
        Some(mut current) => {
            current.subsets = Some(subsets);
            current.metadata.labels = Some(labels);
            api.replace(&name, &PostParams::default(), &current).await.map(|_| ())
        }
        None => {
            let endpoints = Endpoints {
                metadata: ObjectMeta { name: Some(name), labels: Some(labels), ..ObjectMeta::default() },
                subsets: Some(subsets),
            };
            api.create(&PostParams::default(), &endpoints).await.map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(Action::requeue(RESYNC)),
        // The namespace is going away.
        Err(kube::Error::Api(status)) if status.code == 403 && status.reason == "Forbidden" => {
            Ok(Action::await_change())
        }
        Err(error) => Err(error.into()),
    }
}

/// A Service is gone: so are its Endpoints.
pub async fn service_deleted(service: &Service, context: &Context) -> Result<(), Error> {
    let api = Api::<Endpoints>::namespaced(context.client.clone(), &service.namespace().unwrap_or_default());
    match api.delete(&service.name_any(), &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Whether an Endpoints object lists the pod with `uid`.
pub fn references(endpoints: &Endpoints, uid: &str) -> bool {
    endpoints.subsets.iter().flatten().any(|subset| {
        let addresses = subset.addresses.iter().flatten().chain(subset.not_ready_addresses.iter().flatten());
        addresses.filter_map(|a| a.target_ref.as_ref()).any(|r| r.uid.as_deref() == Some(uid))
    })
}
