//! The per-packet service path for both families: reverse translation of replies,
//! service DNAT (and SNAT for remote backends and hairpin connections), conntrack and
//! backend choice. All state lives in the per-CPU [`Work`] slot.

use aya_ebpf::{bindings::TC_ACT_OK, programs::TcContext};
use waggle_ebpf_common::{
    conntrack::{CT_DIR_ORIGINAL, CT_DIR_REPLY, ct_flags},
    drop::{DROP_NAT_REWRITE_FAILED, DROP_NO_BACKEND, DropReason},
    lb::{AFFINITY_BY_CLIENT_IP, backend_flags, service_flags},
};

use super::{Deliver, work::Work};
use crate::{
    conntrack as ct,
    family::Family,
    lb::{self, AffinityClient, Client, Selected, Service},
    maglev,
    maps::NODE_CONFIG,
    nat::{self, End},
    packet::Flow,
};

/// The service a packet from outside is addressed to: an externalIP/LoadBalancer IP
/// entry under the destination address, or a NodePort when the destination is one of
/// this node's addresses. The flag says which (NodePort).
#[inline(always)]
pub fn external_service<F: Family>(flow: &Flow<F::Addr>) -> Option<(Service<F::Addr>, bool)> {
    const EXTERNAL: u16 = service_flags::EXTERNAL_IP | service_flags::LOAD_BALANCER;
    if let Some(service) = lb::lookup::<F>(flow.dst_addr, flow.dst_port, flow.protocol) {
        return (service.value.flags & EXTERNAL != 0).then_some((service, false));
    }
    if lb::is_node_addr::<F>(&flow.dst_addr) {
        return lb::lookup_nodeport::<F>(flow.dst_port, flow.protocol).map(|s| (s, true));
    }
    None
}

/// Writes the source address of a SNAT'ed connection to `w.snat`: the service address
/// the client used for a hairpin connection, else the node's address
/// (`NODE_CONFIG[0]`). Errors: no node address configured (`DROP_NAT_REWRITE_FAILED`).
#[inline(always)]
pub fn snat_address<F: Family>(w: &mut Work<F::Addr>) -> Result<(), DropReason> {
    if w.entry.flags & ct_flags::HAIRPIN != 0 {
        w.snat = w.entry.orig_dst_addr;
        return Ok(());
    }
    let config = NODE_CONFIG.get(0).ok_or(DROP_NAT_REWRITE_FAILED)?;
    w.snat = F::node_address(config).ok_or(DROP_NAT_REWRITE_FAILED)?;
    Ok(())
}

/// A reply of a tracked connection: translate it back (reverse SNAT, reverse DNAT)
/// and send it on. `None` when the packet matches no reply entry.
#[inline(always)]
pub fn reverse<F: Family>(
    ctx: &TcContext,
    w: &mut Work<F::Addr>,
    now: u32,
    deliver: Deliver,
) -> Result<Option<i32>, DropReason> {
    ct::fill_flow_key(&mut w.key, &w.flow, CT_DIR_REPLY);
    let Some(entry_ptr) = ct::lookup::<F>(&w.key, now) else {
        return Ok(None);
    };
    // SAFETY: a live map value; copied before the entry is touched.
    w.entry = unsafe { *entry_ptr };
    let flags = ct::touch(entry_ptr, &w.flow, ct_flags::SEEN_REPLY, now);
    if flags != w.entry.flags || w.entry.last_seen_secs != now {
        ct::fill_original_key(&mut w.key, &w.entry, w.flow.protocol);
        ct::sync_peer::<F>(&w.key, flags, now);
    }
    let entry = &w.entry;
    if entry.flags & ct_flags::SNAT != 0 {
        nat::rewrite::<F>(
            ctx,
            &mut w.flow,
            End::Destination,
            &entry.orig_src_addr,
            entry.orig_src_port,
        )?;
    }
    nat::rewrite::<F>(
        ctx,
        &mut w.flow,
        End::Source,
        &entry.orig_dst_addr,
        entry.orig_dst_port,
    )?;
    lb::count_service(entry.rev_nat_index, 0, 1, u64::from(ctx.len()));
    Ok(Some(deliver.send::<F>(ctx, w)))
}

/// A packet to `service`: reuse its connection's backend or pick one, rewrite, and
/// pass the packet on.
#[inline(always)]
pub fn translate<F: Family>(
    ctx: &TcContext,
    w: &mut Work<F::Addr>,
    service: &Service<F::Addr>,
    client: Client,
    now: u32,
) -> Result<i32, DropReason> {
    ct::fill_flow_key(&mut w.key, &w.flow, CT_DIR_ORIGINAL);
    let mut new = 1;
    if let Some(ptr) = ct::lookup::<F>(&w.key, now) {
        // SAFETY: a live map value, copied out.
        w.entry = unsafe { *ptr };
        // A backend removed since: the connection is lost; choose again below.
        if let Some(backend) = lb::backend::<F>(w.entry.backend_id) {
            w.backend = backend;
            let flags = ct::touch(ptr, &w.flow, 0, now);
            if flags != w.entry.flags || w.entry.last_seen_secs != now {
                fill_reply_key::<F>(w)?;
                ct::sync_peer::<F>(&w.key, flags, now);
            }
            new = 0;
        }
    }
    if new == 1 {
        track_new::<F>(w, service, client, now)?;
    }

    let snat = w.entry.flags & ct_flags::SNAT != 0;
    if snat {
        snat_address::<F>(w)?;
        nat::rewrite::<F>(ctx, &mut w.flow, End::Source, &w.snat, w.entry.nat_port)?;
    }
    nat::rewrite::<F>(
        ctx,
        &mut w.flow,
        End::Destination,
        &w.backend.address,
        w.backend.port,
    )?;
    lb::count_service(w.entry.rev_nat_index, new, 1, u64::from(ctx.len()));
    if snat {
        // The source is now a node or service address: the stack would drop it as a
        // martian on input, so send it out directly.
        Ok(nat::forward::<F>(ctx, &w.flow, &mut w.fib))
    } else {
        Ok(TC_ACT_OK)
    }
}

/// Writes the reply-direction key of the tracked connection (`w.entry`, `w.backend`,
/// before any rewrite of `w.flow`) into `w.key`.
#[inline(always)]
fn fill_reply_key<F: Family>(w: &mut Work<F::Addr>) -> Result<(), DropReason> {
    let (to, to_port) = if w.entry.flags & ct_flags::SNAT != 0 {
        snat_address::<F>(w)?;
        (&w.snat, w.entry.nat_port)
    } else {
        (&w.flow.src_addr, w.flow.src_port)
    };
    ct::fill_key(
        &mut w.key,
        (&w.backend.address, w.backend.port),
        (to, to_port),
        w.flow.protocol,
        CT_DIR_REPLY,
    );
    Ok(())
}

/// A new connection: pick a backend, decide on SNAT, and store both conntrack entries
/// (`w.entry`, `w.backend` are set).
///
/// SNAT happens for external clients of remote backends (to the node address, unless
/// `externalTrafficPolicy: Local`), and for *hairpin* connections, whose client is the
/// chosen backend itself: a packet from the pod to its own address would be dropped
/// as a martian by the pod, so its source becomes the service address it used, and
/// the reply, sent to that address, comes back through this translation.
#[inline(always)]
fn track_new<F: Family>(
    w: &mut Work<F::Addr>,
    service: &Service<F::Addr>,
    client: Client,
    now: u32,
) -> Result<(), DropReason> {
    let selected = choose::<F>(&w.flow, service, client)?;
    w.backend = selected.backend;
    let ext_local = service.value.flags & service_flags::EXT_LOCAL != 0;
    let local = w.backend.flags & backend_flags::LOCAL != 0;
    let hairpin = w.backend.address == w.flow.src_addr;
    let snat = hairpin || (client == Client::External && !local && !ext_local);

    let entry = &mut w.entry;
    entry.backend_id = selected.backend_id;
    entry.rev_nat_index = service.value.rev_nat_index;
    entry.flags = match (snat, hairpin) {
        (_, true) => ct_flags::SNAT | ct_flags::HAIRPIN,
        (true, false) => ct_flags::SNAT,
        (false, false) => 0,
    };
    entry.orig_src_addr = w.flow.src_addr;
    entry.orig_src_port = w.flow.src_port;
    // The first SNAT port tried is the client's own (see `ct::claim_snat`).
    entry.nat_port = if snat { w.flow.src_port } else { 0 };
    entry.orig_dst_addr = w.flow.dst_addr;
    entry.orig_dst_port = w.flow.dst_port;
    entry._pad = 0;
    entry.last_seen_secs = now;
    if w.flow.closes() {
        entry.flags |= ct_flags::CLOSING;
    }
    fill_reply_key::<F>(w)?;
    if snat {
        ct::claim_snat::<F>(&mut w.entry, &mut w.key, now)?;
    } else {
        ct::store::<F>(&w.key, &w.entry)?;
    }
    ct::fill_flow_key(&mut w.key, &w.flow, CT_DIR_ORIGINAL);
    ct::store::<F>(&w.key, &w.entry)
}

/// Backend selection: Maglev for `MAGLEV` services (unless affinity or a Local traffic
/// policy narrows the choice to a scope, which [`lb::select`] handles), otherwise
/// random with client-IP affinity.
#[inline(always)]
fn choose<F: Family>(
    flow: &Flow<F::Addr>,
    service: &Service<F::Addr>,
    client: Client,
) -> Result<Selected<F::Addr>, DropReason> {
    let flags = service.value.flags;
    let scoped = match client {
        Client::External => flags & service_flags::EXT_LOCAL != 0,
        Client::InNode => flags & service_flags::TWO_SCOPES != 0,
    };
    if flags & service_flags::MAGLEV != 0 && flags & service_flags::AFFINITY == 0 && !scoped {
        if service.value.count == 0 {
            return Err(DROP_NO_BACKEND);
        }
        return maglev::select::<F>(service.value.rev_nat_index, flow);
    }
    let affinity = AffinityClient {
        client: F::affinity_bytes(&flow.src_addr),
        kind: AFFINITY_BY_CLIENT_IP,
    };
    lb::select::<F>(service, client, Some(affinity))
}
