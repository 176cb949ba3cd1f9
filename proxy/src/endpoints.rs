//! Which endpoints of a Service port become backends.
//!
//! Follows upstream kube-proxy's rules: an endpoint is usable when `ready` (absent
//! means ready); when no ready endpoint exists, endpoints that are `serving` and
//! `terminating` are used instead (the terminating fallback). Endpoints listed in more
//! than one EndpointSlice are used once. The backend port comes from the slice port
//! whose name and protocol match the Service port, which resolves named targetPorts.

use std::net::IpAddr;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use waggle_ebpf_common::lb::backend_flags;

use crate::model::{BackendAddr, Family, Protocol};

/// One endpoint of a Service port, with its kernel backend flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: BackendAddr,
    /// `backend_flags::*`
    pub flags: u8,
}

impl Endpoint {
    pub fn is_ready(&self) -> bool {
        self.flags & backend_flags::ACTIVE != 0
    }
    pub fn is_local(&self) -> bool {
        self.flags & backend_flags::LOCAL != 0
    }
}

/// Backends chosen for one scope, and whether they are the terminating fallback.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub endpoints: Vec<Endpoint>,
    pub terminating_fallback: bool,
}

/// Every candidate endpoint (ready, or serving and terminating) of the Service port
/// `port_name`/`protocol` in `family`, deduplicated, in address order.
pub fn candidates<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    port_name: &str,
    protocol: Protocol,
    family: Family,
    node_name: &str,
) -> Vec<Endpoint> {
    // Collected in slice order, then sorted by address (stable, so the first copy of
    // an address stays first) and merged.
    let mut found: Vec<Endpoint> = Vec::new();
    for slice in slices {
        let slice_family = match slice.address_type.as_str() {
            "IPv4" => Family::V4,
            "IPv6" => Family::V6,
            _ => continue, // FQDN slices have no addresses a proxy can use
        };
        if slice_family != family {
            continue;
        }
        let Some(port) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == port_name
                && Protocol::from_k8s(p.protocol.as_deref()) == Some(protocol)
        }) else {
            continue;
        };
        let Some(port) = port
            .port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(ready);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let mut flags = if ready {
                backend_flags::ACTIVE
            } else if serving && terminating {
                backend_flags::TERMINATING
            } else {
                continue;
            };
            if terminating {
                flags |= backend_flags::TERMINATING;
            }
            if endpoint.node_name.as_deref() == Some(node_name) {
                flags |= backend_flags::LOCAL;
            }
            // The API allows up to 100 addresses but consumers use only the first.
            let Some(ip) = endpoint
                .addresses
                .first()
                .and_then(|a| a.parse::<IpAddr>().ok())
            else {
                continue;
            };
            if Family::of(ip) != family {
                continue;
            }
            found.push(Endpoint {
                addr: BackendAddr { ip, port, protocol },
                flags,
            });
        }
    }
    found.sort_by_key(|e| e.addr);
    found.dedup_by(|later, first| {
        if later.addr != first.addr {
            return false;
        }
        // Seen in several slices (e.g. during a slice migration): a ready copy wins
        // over a terminating one.
        if !first.is_ready() && later.is_ready() {
            *first = *later;
        }
        true
    });
    found
}

/// Ready endpoints among `candidates` passing `filter`, or the terminating ones when
/// none is ready.
pub fn select(candidates: &[Endpoint], filter: impl Fn(&Endpoint) -> bool) -> Selection {
    let any_ready = candidates.iter().any(|e| filter(e) && e.is_ready());
    let endpoints: Vec<Endpoint> = candidates
        .iter()
        .copied()
        .filter(|e| filter(e) && (e.is_ready() || !any_ready))
        .collect();
    Selection {
        terminating_fallback: !any_ready && !endpoints.is_empty(),
        endpoints,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(yaml: &str) -> EndpointSlice {
        serde_yaml::from_str(yaml).unwrap()
    }

    const SLICE: &str = r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
  - addresses: [10.0.0.1]
    nodeName: n1
  - addresses: [10.0.0.2]
    conditions: {ready: false, serving: true, terminating: true}
    nodeName: n2
  - addresses: [10.0.0.3]
    conditions: {ready: false, serving: false, terminating: true}
"#;

    #[test]
    fn candidates_keep_ready_and_serving_terminating() {
        let s = slice(SLICE);
        let c = candidates([&s], "http", Protocol::Tcp, Family::V4, "n1");
        let ips: Vec<String> = c.iter().map(|e| e.addr.to_string()).collect();
        assert_eq!(ips, ["10.0.0.1:8080/TCP", "10.0.0.2:8080/TCP"]);
        assert_eq!(c[0].flags, backend_flags::ACTIVE | backend_flags::LOCAL);
        assert_eq!(c[1].flags, backend_flags::TERMINATING);
        let sel = select(&c, |_| true);
        assert_eq!(sel.endpoints.len(), 1);
        assert!(!sel.terminating_fallback);
        let sel = select(&c, |e| !e.is_local());
        assert_eq!(sel.endpoints[0].addr.port, 8080);
        assert!(sel.terminating_fallback);
    }

    #[test]
    fn unmatched_port_name_or_family_gives_nothing() {
        let s = slice(SLICE);
        assert!(candidates([&s], "grpc", Protocol::Tcp, Family::V4, "n1").is_empty());
        assert!(candidates([&s], "http", Protocol::Udp, Family::V4, "n1").is_empty());
        assert!(candidates([&s], "http", Protocol::Tcp, Family::V6, "n1").is_empty());
    }

    #[test]
    fn duplicates_across_slices_count_once_and_ready_wins() {
        let a = slice(SLICE);
        let mut b = slice(SLICE);
        b.metadata.name = Some("s2".into());
        b.endpoints[1].conditions = None; // 10.0.0.2 ready in the second slice
        let c = candidates([&a, &b], "http", Protocol::Tcp, Family::V4, "n1");
        assert_eq!(c.len(), 2);
        assert!(c.iter().all(Endpoint::is_ready));
    }
}
