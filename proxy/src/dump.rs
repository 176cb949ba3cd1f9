//! The text dump of the LB maps: deterministic and readable, in the spirit of
//! `cilium bpf lb list`. Golden tests compare it, `waggle bpf lb list` prints it.
//!
//! ```text
//! SERVICES
//! 10.96.0.10:80/TCP ext rev_nat=1 count=2 [ClusterIP]
//!   1 => #1 10.0.0.1:8080/TCP
//! ```

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use waggle_ebpf_common::lb::{
    BackendV4, BackendV6, SCOPE_EXTERNAL, ServiceKeyV4, ServiceKeyV6, ServiceValue,
    backend_flags as bf, service_flags as sf,
};

use crate::{
    model::{Protocol, port_from_map, v4_from_map},
    state::MapState,
};

/// A readable rendering of a map key (used by the dump and the write log).
pub trait DumpKey {
    fn dump_key(&self) -> String;
}

impl DumpKey for ServiceKeyV4 {
    fn dump_key(&self) -> String {
        format!("{} {}", Frontend::v4(self).render(), scope_name(self.scope))
    }
}

impl DumpKey for ServiceKeyV6 {
    fn dump_key(&self) -> String {
        format!("{} {}", Frontend::v6(self).render(), scope_name(self.scope))
    }
}

impl DumpKey for u32 {
    fn dump_key(&self) -> String {
        format!("#{self}")
    }
}

impl DumpKey for [u8; 16] {
    fn dump_key(&self) -> String {
        Ipv6Addr::from(*self).to_string()
    }
}

/// A frontend as sorted and printed: address, port, protocol, scope.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Frontend {
    ip: IpAddr,
    port: u16,
    protocol: u8,
    scope: u8,
}

impl Frontend {
    fn v4(k: &ServiceKeyV4) -> Self {
        Self {
            ip: IpAddr::V4(v4_from_map(k.address)),
            port: port_from_map(k.port),
            protocol: k.protocol,
            scope: k.scope,
        }
    }

    fn v6(k: &ServiceKeyV6) -> Self {
        Self {
            ip: IpAddr::V6(Ipv6Addr::from(k.address)),
            port: port_from_map(k.port),
            protocol: k.protocol,
            scope: k.scope,
        }
    }

    fn render(&self) -> String {
        format!(
            "{}/{}",
            socket(self.ip, self.port),
            proto_name(self.protocol)
        )
    }
}

fn socket(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

fn proto_name(protocol: u8) -> String {
    Protocol::from_number(protocol).map_or_else(|| format!("proto{protocol}"), |p| p.to_string())
}

fn scope_name(scope: u8) -> &'static str {
    if scope == SCOPE_EXTERNAL {
        "ext"
    } else {
        "int"
    }
}

/// Names of the set `service_flags`.
pub fn service_flag_names(flags: u16) -> Vec<&'static str> {
    const NAMES: [(u16, &str); 11] = [
        (sf::CLUSTER_IP, "ClusterIP"),
        (sf::NODE_PORT, "NodePort"),
        (sf::EXTERNAL_IP, "ExternalIP"),
        (sf::LOAD_BALANCER, "LoadBalancer"),
        (sf::EXT_LOCAL, "ExtLocal"),
        (sf::INT_LOCAL, "IntLocal"),
        (sf::AFFINITY, "Affinity"),
        (sf::MAGLEV, "Maglev"),
        (sf::TWO_SCOPES, "TwoScopes"),
        (sf::TERMINATING_FALLBACK, "TerminatingFallback"),
        (sf::LOOPBACK, "Loopback"),
    ];
    let mut names: Vec<&str> = NAMES
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    if flags & !NAMES.iter().fold(0, |acc, (f, _)| acc | f) != 0 {
        names.push("unknown");
    }
    names
}

/// Names of the set `backend_flags`.
pub fn backend_flag_names(flags: u8) -> Vec<&'static str> {
    let mut names = Vec::new();
    if flags & bf::ACTIVE != 0 {
        names.push("active");
    }
    if flags & bf::TERMINATING != 0 {
        names.push("terminating");
    }
    if flags & bf::LOCAL != 0 {
        names.push("local");
    }
    names
}

/// Renders the whole state.
pub fn dump(state: &MapState) -> String {
    let mut backends: BTreeMap<u32, String> = BTreeMap::new();
    for (id, b) in state.backends_v4.iter() {
        backends.insert(*id, backend_v4(b));
    }
    for (id, b) in state.backends_v6.iter() {
        backends.insert(*id, backend_v6(b));
    }

    let mut services: BTreeMap<Frontend, ServiceValue> = BTreeMap::new();
    for (k, v) in state.services_v4.iter() {
        services.insert(Frontend::v4(k), *v);
    }
    for (k, v) in state.services_v6.iter() {
        services.insert(Frontend::v6(k), *v);
    }

    let mut out = String::new();
    out.push_str("SERVICES\n");
    // Slots some frontend's count covers; any other non-empty slot is a leak.
    let mut covered = std::collections::BTreeSet::new();
    for (fe, m) in &services {
        let _ = write!(out, "{} {}", fe.render(), scope_name(fe.scope));
        let _ = write!(out, " rev_nat={} count={}", m.rev_nat_index, m.count);
        if m.flags & sf::AFFINITY != 0 {
            let _ = write!(out, " affinity_timeout={}", m.affinity_timeout);
        }
        let _ = writeln!(out, " [{}]", service_flag_names(m.flags).join(","));
        for (i, id) in state.slot_ids(m).enumerate() {
            let (slot, index) = (i + 1, m.slot_base.saturating_add(i as u32));
            covered.insert(index);
            match id {
                Some(id) => {
                    let backend = backends
                        .get(&id)
                        .map_or("(missing backend)", String::as_str);
                    let _ = writeln!(out, "  {slot} => #{id} {backend}");
                }
                None => {
                    let _ = writeln!(out, "  {slot} => (empty slot {index})");
                }
            }
        }
    }
    let stray: Vec<(&u32, &u32)> = state
        .slots
        .sorted()
        .into_iter()
        .filter(|(index, id)| **id != 0 && !covered.contains(*index))
        .collect();
    if !stray.is_empty() {
        out.push_str("STRAY SLOTS\n");
        for (index, id) in stray {
            let _ = writeln!(out, "{index} => #{id}");
        }
    }

    out.push_str("BACKENDS\n");
    for (id, b) in &backends {
        let _ = writeln!(out, "#{id} {b}");
    }

    out.push_str("REV_NAT\n");
    let mut rev: Vec<(u32, String)> = Vec::new();
    for (id, r) in state.rev_nat_v4.iter() {
        rev.push((
            *id,
            socket(IpAddr::V4(v4_from_map(r.address)), port_from_map(r.port)),
        ));
    }
    for (id, r) in state.rev_nat_v6.iter() {
        rev.push((
            *id,
            socket(IpAddr::V6(Ipv6Addr::from(r.address)), port_from_map(r.port)),
        ));
    }
    rev.sort();
    for (id, r) in rev {
        let _ = writeln!(out, "{id} => {r}");
    }

    out.push_str("MAGLEV\n");
    for (id, table) in state.maglev.sorted() {
        let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
        for b in table.backend_ids {
            *counts.entry(b).or_default() += 1;
        }
        let parts: Vec<String> = counts.iter().map(|(b, n)| format!("#{b}x{n}")).collect();
        let _ = writeln!(out, "{id} => {}", parts.join(" "));
    }

    out.push_str("NODE_ADDRS\n");
    let mut addrs: Vec<IpAddr> = state
        .node_addrs_v4
        .iter()
        .map(|(a, _)| IpAddr::V4(v4_from_map(*a)))
        .chain(
            state
                .node_addrs_v6
                .iter()
                .map(|(a, _)| IpAddr::V6(Ipv6Addr::from(*a))),
        )
        .collect();
    addrs.sort();
    for a in addrs {
        let _ = writeln!(out, "{a}");
    }
    out
}

fn backend_v4(b: &BackendV4) -> String {
    let ip = IpAddr::V4(Ipv4Addr::from(b.address.to_ne_bytes()));
    format!(
        "{}/{} [{}]",
        socket(ip, port_from_map(b.port)),
        proto_name(b.protocol),
        backend_flag_names(b.flags).join(",")
    )
}

fn backend_v6(b: &BackendV6) -> String {
    let ip = IpAddr::V6(Ipv6Addr::from(b.address));
    format!(
        "{}/{} [{}]",
        socket(ip, port_from_map(b.port)),
        proto_name(b.protocol),
        backend_flag_names(b.flags).join(",")
    )
}
