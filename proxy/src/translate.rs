//! Pure translation of one Service and its EndpointSlices into frontends and backend
//! sets ("what should the kernel do for this service port"), without ids or slots.
//! [`crate::program`] turns the result into map entries.

use std::net::IpAddr;

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use waggle_ebpf_common::lb::{SCOPE_EXTERNAL, SCOPE_INTERNAL, service_flags as sf};

use crate::{
    endpoints::{self, Endpoint, Selection},
    model::{Created, Family, Names, Protocol, ServiceName, ServicePortName},
};

/// `sessionAffinityConfig.clientIP.timeoutSeconds` when unset (3 hours, as upstream).
pub const DEFAULT_AFFINITY_TIMEOUT: u32 = 10_800;

/// The node the proxy runs on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// Endpoints whose `nodeName` equals this are local.
    pub name: String,
    /// Addresses on which NodePorts answer (loopback is added by the proxy).
    pub addresses: Vec<IpAddr>,
}

/// What kind of frontend an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FrontendKind {
    ClusterIp,
    NodePort,
    ExternalIp,
    LoadBalancer,
}

impl FrontendKind {
    fn flag(self) -> u16 {
        match self {
            Self::ClusterIp => sf::CLUSTER_IP,
            Self::NodePort => sf::NODE_PORT | sf::LOOPBACK,
            Self::ExternalIp => sf::EXTERNAL_IP,
            Self::LoadBalancer => sf::LOAD_BALANCER,
        }
    }

    /// Reached by traffic from outside the cluster (the per-packet path).
    pub fn is_external(self) -> bool {
        !matches!(self, Self::ClusterIp)
    }
}

/// One master entry to program: a frontend address/port in one scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterPlan {
    pub kind: FrontendKind,
    /// Unspecified (0 / ::) for NodePort.
    pub ip: IpAddr,
    pub port: u16,
    pub scope: u8,
    pub flags: u16,
    /// Backends in slot order preference (address order); may be empty.
    pub backends: Vec<Endpoint>,
}

/// One Service port in one IP family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPlan {
    pub name: ServicePortName,
    pub family: Family,
    /// Address and port stored in the reverse-NAT entry (the ClusterIP frontend).
    pub rev_nat: (IpAddr, u16),
    pub affinity_timeout: u32,
    pub masters: Vec<MasterPlan>,
    /// Backends of the per-packet path's Maglev table (external scope), when the
    /// port has per-packet frontends.
    pub maglev: Option<Vec<Endpoint>>,
    /// Local endpoints usable by external traffic (for the health check).
    pub local_endpoints: usize,
}

/// Everything to program for one Service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServicePlan {
    pub ports: Vec<PortPlan>,
    /// `healthCheckNodePort` of an `externalTrafficPolicy: Local` service.
    pub health_check_node_port: Option<u16>,
    /// The Service's age: of two Services claiming one frontend, the older owns it.
    pub created: Created,
}

/// Translates `service` (named `name`) with its `slices` for this `node`; port names
/// are interned in `names`. ExternalName and headless services give an empty plan.
pub fn translate<'a>(
    name: &ServiceName,
    names: &mut Names,
    service: &Service,
    slices: impl IntoIterator<Item = &'a EndpointSlice> + Clone,
    node: &NodeInfo,
) -> ServicePlan {
    let Some(spec) = &service.spec else {
        return ServicePlan::default();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return ServicePlan::default();
    }
    let cluster_ips: Vec<IpAddr> = match (&spec.cluster_ips, &spec.cluster_ip) {
        (Some(ips), _) if !ips.is_empty() => ips.iter().filter_map(|ip| ip.parse().ok()).collect(),
        (_, Some(ip)) => ip.parse().into_iter().collect(),
        _ => Vec::new(),
    };
    if cluster_ips.is_empty() {
        return ServicePlan::default(); // headless ("None") or not yet allocated
    }
    let ext_local = spec.external_traffic_policy.as_deref() == Some("Local");
    let int_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let affinity = spec.session_affinity.as_deref() == Some("ClientIP");
    let affinity_timeout = spec
        .session_affinity_config
        .as_ref()
        .and_then(|c| c.client_ip.as_ref())
        .and_then(|c| c.timeout_seconds)
        .and_then(|t| u32::try_from(t).ok())
        .unwrap_or(DEFAULT_AFFINITY_TIMEOUT);
    let external_ips: Vec<IpAddr> = spec
        .external_ips
        .iter()
        .flatten()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    let lb_ips: Vec<IpAddr> = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        // ipMode "Proxy": the load balancer proxies, traffic never arrives at the VIP.
        .filter(|ing| ing.ip_mode.as_deref() != Some("Proxy"))
        .filter_map(|ing| ing.ip.as_deref()?.parse().ok())
        .collect();
    let with_node_ports = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));

    let mut plan = ServicePlan {
        ports: Vec::new(),
        health_check_node_port: if ext_local && with_node_ports {
            spec.health_check_node_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
        } else {
            None
        },
        created: service
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(Created::UNKNOWN, |t| {
                Created::from_nanos(t.0.as_nanosecond())
            }),
    };
    for sp in spec.ports.iter().flatten() {
        let Some(protocol) = Protocol::from_k8s(sp.protocol.as_deref()) else {
            continue;
        };
        let Ok(port) = u16::try_from(sp.port) else {
            continue;
        };
        let port_name = ServicePortName {
            service: name.clone(),
            port: names.intern(sp.name.as_deref().unwrap_or_default()),
            protocol,
        };
        let node_port = sp
            .node_port
            .filter(|_| with_node_ports)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0);
        for &cluster_ip in &cluster_ips {
            let family = Family::of(cluster_ip);
            let candidates = endpoints::candidates(
                slices.clone(),
                &port_name.port,
                protocol,
                family,
                &node.name,
            );
            let all = endpoints::select(&candidates, |_| true);
            let local = endpoints::select(&candidates, Endpoint::is_local);
            let mut common = 0;
            if affinity {
                common |= sf::AFFINITY;
            }

            let mut masters = Vec::new();
            let internal = if int_local { &local } else { &all };
            masters.push(master(
                FrontendKind::ClusterIp,
                cluster_ip,
                port,
                SCOPE_EXTERNAL,
                common | if int_local { sf::INT_LOCAL } else { 0 },
                internal,
            ));

            let mut external: Vec<(FrontendKind, IpAddr, u16)> = Vec::new();
            if let Some(np) = node_port {
                external.push((FrontendKind::NodePort, family.unspecified(), np));
            }
            for &ip in external_ips.iter().filter(|ip| Family::of(**ip) == family) {
                external.push((FrontendKind::ExternalIp, ip, port));
            }
            for &ip in lb_ips.iter().filter(|ip| Family::of(**ip) == family) {
                external.push((FrontendKind::LoadBalancer, ip, port));
            }
            let external_selection = if ext_local { &local } else { &all };
            for &(kind, ip, fport) in &external {
                let mut flags = common | sf::MAGLEV;
                if ext_local {
                    flags |= sf::EXT_LOCAL | sf::TWO_SCOPES;
                    masters.push(master(kind, ip, fport, SCOPE_INTERNAL, flags, &all));
                }
                masters.push(master(
                    kind,
                    ip,
                    fport,
                    SCOPE_EXTERNAL,
                    flags,
                    external_selection,
                ));
            }
            plan.ports.push(PortPlan {
                name: port_name.clone(),
                family,
                rev_nat: (cluster_ip, port),
                affinity_timeout: if affinity { affinity_timeout } else { 0 },
                masters,
                maglev: (!external.is_empty()).then(|| external_selection.endpoints.clone()),
                local_endpoints: local.endpoints.len(),
            });
        }
    }
    plan
}

fn master(
    kind: FrontendKind,
    ip: IpAddr,
    port: u16,
    scope: u8,
    flags: u16,
    selection: &Selection,
) -> MasterPlan {
    let mut flags = flags | kind.flag();
    if selection.terminating_fallback {
        flags |= sf::TERMINATING_FALLBACK;
    }
    MasterPlan {
        kind,
        ip,
        port,
        scope,
        flags,
        backends: selection.endpoints.clone(),
    }
}
