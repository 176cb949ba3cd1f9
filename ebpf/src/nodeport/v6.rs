//! The IPv6 per-packet service path: reverse translation of replies, service DNAT
//! (and SNAT to the node for remote backends), conntrack and backend choice; the
//! same logic as [`super::v4`] over the IPv6 types and maps.

use aya_ebpf::{bindings::TC_ACT_OK, programs::TcContext};
use waggle_ebpf_common::{
    conntrack::{CT_DIR_ORIGINAL, CT_DIR_REPLY, CtEntryV6, CtKeyV6, ct_flags},
    drop::{DROP_NAT_REWRITE_FAILED, DROP_NO_BACKEND, DropReason},
    lb::{AFFINITY_BY_CLIENT_IP, BackendV6, ServiceKeyV6, backend_flags, service_flags},
};

use super::Deliver;
use crate::{
    conntrack6 as ct6,
    lb::{self, AffinityClient, Client, Family, Selected, Service, V6},
    maglev,
    maps::NODE_CONFIG,
    nat::{self, End},
    packet::Ipv6Flow,
};

/// The service a packet from outside is addressed to: an externalIP/LoadBalancer IP
/// entry under the destination address, or a NodePort when the destination is one of
/// this node's addresses. The flag says which (NodePort).
#[inline(always)]
pub fn external_service(flow: &Ipv6Flow) -> Option<(Service<ServiceKeyV6>, bool)> {
    const EXTERNAL: u16 = service_flags::EXTERNAL_IP | service_flags::LOAD_BALANCER;
    if let Some(service) = lb::lookup_v6(flow.dst_addr, flow.dst_port, flow.protocol) {
        return (service.value.flags & EXTERNAL != 0).then_some((service, false));
    }
    if lb::is_node_addr_v6(&flow.dst_addr) {
        return lb::lookup_nodeport_v6(flow.dst_port, flow.protocol).map(|s| (s, true));
    }
    None
}

/// The node's SNAT address (`NODE_CONFIG[0].node_address_v6`).
#[inline(always)]
fn snat_address() -> Result<[u8; 16], DropReason> {
    match NODE_CONFIG.get(0) {
        Some(config) if config.node_address_v6 != [0; 16] => Ok(config.node_address_v6),
        _ => Err(DROP_NAT_REWRITE_FAILED),
    }
}

/// A reply of a tracked connection: translate it back (reverse SNAT, reverse DNAT)
/// and send it to the client. `None` when the packet matches no reply entry.
#[inline(always)]
pub fn reverse(
    ctx: &TcContext,
    flow: &mut Ipv6Flow,
    now: u32,
    deliver: Deliver,
) -> Result<Option<i32>, DropReason> {
    let Some(entry_ptr) = ct6::lookup(&ct6::key(flow, CT_DIR_REPLY), now) else {
        return Ok(None);
    };
    // SAFETY: a live map value; copied before the entry is touched.
    let before = unsafe { *entry_ptr };
    let flags = ct6::touch(entry_ptr, flow, ct_flags::SEEN_REPLY, now);
    if flags != before.flags || before.last_seen_secs != now {
        ct6::sync_peer(&ct6::original_key(&before, flow.protocol), flags, now);
    }
    if before.flags & ct_flags::SNAT != 0 {
        nat::rewrite_v6(ctx, flow, End::Destination, before.orig_src_addr, before.orig_src_port)?;
    }
    nat::rewrite_v6(ctx, flow, End::Source, before.orig_dst_addr, before.orig_dst_port)?;
    lb::count_service(before.rev_nat_index, 0, 1, u64::from(ctx.len()));
    Ok(Some(match deliver {
        Deliver::Route => nat::forward_v6(ctx, flow),
        Deliver::InPlace => TC_ACT_OK,
    }))
}

/// A packet to `service`: reuse its connection's backend or pick one, rewrite, and
/// pass the packet on.
#[inline(always)]
pub fn translate(
    ctx: &TcContext,
    flow: &mut Ipv6Flow,
    service: &Service<ServiceKeyV6>,
    client: Client,
    now: u32,
) -> Result<i32, DropReason> {
    let original = ct6::key(flow, CT_DIR_ORIGINAL);
    let tracked = ct6::lookup(&original, now).and_then(|ptr| {
        // SAFETY: a live map value, copied out.
        let entry = unsafe { *ptr };
        // A backend removed since: the connection is lost; choose again below.
        let backend = V6::backend(entry.backend_id)?;
        let flags = ct6::touch(ptr, flow, 0, now);
        if flags != entry.flags || entry.last_seen_secs != now {
            ct6::sync_peer(&reply_key_of(&entry, &backend, flow), flags, now);
        }
        Some((entry, backend))
    });
    let (entry, backend, new) = match tracked {
        Some((entry, backend)) => (entry, backend, 0),
        None => {
            let (entry, backend) = track_new(flow, service, client, now)?;
            (entry, backend, 1)
        }
    };

    let snat = entry.flags & ct_flags::SNAT != 0;
    if snat {
        nat::rewrite_v6(ctx, flow, End::Source, snat_address()?, entry.nat_port)?;
    }
    nat::rewrite_v6(ctx, flow, End::Destination, backend.address, backend.port)?;
    lb::count_service(entry.rev_nat_index, new, 1, u64::from(ctx.len()));
    if snat {
        // The source is now a node address: the stack would drop it as a martian on
        // input, so send it out directly.
        Ok(nat::forward_v6(ctx, flow))
    } else {
        Ok(TC_ACT_OK)
    }
}

/// The reply-direction key of a tracked connection.
#[inline(always)]
fn reply_key_of(
    entry: &CtEntryV6,
    backend: &BackendV6,
    flow: &Ipv6Flow,
) -> CtKeyV6 {
    if entry.flags & ct_flags::SNAT != 0 {
        let snat = snat_address().unwrap_or([0; 16]);
        ct6::reply_key(backend.address, backend.port, snat, entry.nat_port, flow.protocol)
    } else {
        ct6::reply_key(backend.address, backend.port, flow.src_addr, flow.src_port, flow.protocol)
    }
}

/// A new connection: pick a backend, decide on SNAT, and store both conntrack entries.
#[inline(always)]
fn track_new(
    flow: &Ipv6Flow,
    service: &Service<ServiceKeyV6>,
    client: Client,
    now: u32,
) -> Result<(CtEntryV6, BackendV6), DropReason> {
    let selected = choose(flow, service, client)?;
    let backend = selected.backend;
    let ext_local = service.value.flags & service_flags::EXT_LOCAL != 0;
    let local = backend.flags & backend_flags::LOCAL != 0;
    let snat = client == Client::External && !local && !ext_local;

    let mut entry = CtEntryV6 {
        backend_id: selected.backend_id,
        rev_nat_index: service.value.rev_nat_index,
        flags: if snat { ct_flags::SNAT } else { 0 },
        orig_src_addr: flow.src_addr,
        orig_src_port: flow.src_port,
        nat_port: 0,
        orig_dst_addr: flow.dst_addr,
        orig_dst_port: flow.dst_port,
        _pad: 0,
        last_seen_secs: now,
    };
    if flow.closes() {
        entry.flags |= ct_flags::CLOSING;
    }
    if snat {
        let snat_addr = snat_address()?;
        ct6::claim_snat(
            &mut entry,
            backend.address,
            backend.port,
            snat_addr,
            flow.src_port,
            flow.protocol,
            now,
        )?;
    } else {
        let reply = ct6::reply_key(
            backend.address,
            backend.port,
            flow.src_addr,
            flow.src_port,
            flow.protocol,
        );
        ct6::store(&reply, &entry)?;
    }
    ct6::store(&ct6::key(flow, CT_DIR_ORIGINAL), &entry)?;
    Ok((entry, backend))
}

/// Backend selection: Maglev for `MAGLEV` services (unless affinity or a Local traffic
/// policy narrows the choice to a scope, which [`lb::select_v6`] handles), otherwise
/// random with client-IP affinity.
#[inline(always)]
fn choose(
    flow: &Ipv6Flow,
    service: &Service<ServiceKeyV6>,
    client: Client,
) -> Result<Selected<BackendV6>, DropReason> {
    let flags = service.value.flags;
    let scoped = match client {
        Client::External => flags & service_flags::EXT_LOCAL != 0,
        Client::InNode => flags & service_flags::TWO_SCOPES != 0,
    };
    if flags & service_flags::MAGLEV != 0 && flags & service_flags::AFFINITY == 0 && !scoped {
        if service.value.count == 0 {
            return Err(DROP_NO_BACKEND);
        }
        return maglev::select_v6(service.value.rev_nat_index, flow);
    }
    let affinity = AffinityClient { client: flow.src_addr, kind: AFFINITY_BY_CLIENT_IP };
    lb::select_v6(service, client, Some(affinity))
}
