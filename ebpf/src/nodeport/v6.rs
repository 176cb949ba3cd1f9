//! The IPv6 per-packet service path: the same semantics as [`super::v4`] (reverse
//! translation of replies, DNAT, SNAT to `NodeConfig.node_address_v6` for remote
//! backends, conntrack in `wg_ct6_v1`, Maglev or random/affinity choice).
//!
//! 128-bit addresses make the flow, conntrack key and entry, backend and FIB
//! parameters too large for the 512-byte BPF stack next to the lookups, so they live in
//! a per-CPU scratch value ([`Work6`], map `wg_np6_work`); a tc program runs to the end
//! on its CPU without another tc program interleaving, so one slot per CPU suffices.
//! Each entry point is its own BPF function (`#[inline(never)]`), so its frame is not
//! added to the IPv4 path's.

use aya_ebpf::{
    bindings::{__sk_buff, TC_ACT_OK, bpf_fib_lookup},
    macros::map,
    maps::PerCpuArray,
    programs::TcContext,
};
use waggle_ebpf_common::{
    conntrack::{CT_DIR_ORIGINAL, CT_DIR_REPLY, CtEntryV6, CtKeyV6, ct_flags},
    drop::{DROP_NAT_REWRITE_FAILED, DROP_NO_BACKEND, DropReason},
    lb::{AFFINITY_BY_CLIENT_IP, BackendV6, ServiceKeyV6, backend_flags, service_flags},
};

use super::{Deliver, verdict};
use crate::{
    conntrack6 as ct,
    lb::{self, AffinityClient, Client, Family, Selected, Service, V6},
    maglev,
    maps::{NODE_CONFIG, count_drop},
    nat::End,
    nat6,
    packet6::{self, Ipv6Flow},
};

/// Per-CPU working memory of one IPv6 packet.
#[repr(C)]
pub struct Work6 {
    /// The parsed packet, kept in step with every rewrite.
    flow: Ipv6Flow,
    /// The conntrack key being looked up or stored.
    key: CtKeyV6,
    /// The connection's entry (a copy).
    entry: CtEntryV6,
    /// The connection's backend.
    backend: BackendV6,
    /// The node's SNAT address.
    snat: [u8; 16],
    fib: bpf_fib_lookup,
}

#[map(name = "wg_np6_work")]
static WORK6: PerCpuArray<Work6> = PerCpuArray::with_max_entries(1, 0);

/// The scratch slot of this CPU (index 0 of a one-entry array always exists).
#[inline(always)]
fn work() -> Option<&'static mut Work6> {
    // SAFETY: this CPU's slot; nothing else uses it while this program runs.
    WORK6.get_ptr_mut(0).map(|ptr| unsafe { &mut *ptr })
}

/// `tc_nodeport_ingress` for IPv6 packets.
#[inline(never)]
pub fn nodeport_ingress(skb: *mut __sk_buff) -> i32 {
    let ctx = TcContext::new(skb);
    match work() {
        Some(w) => verdict(try_nodeport_ingress(&ctx, w)),
        None => TC_ACT_OK,
    }
}

/// `tc_nodeport_egress` for IPv6 packets.
#[inline(never)]
pub fn nodeport_egress(skb: *mut __sk_buff) -> i32 {
    let ctx = TcContext::new(skb);
    match work() {
        Some(w) => verdict(try_nodeport_egress(&ctx, w)),
        None => TC_ACT_OK,
    }
}

/// `tc_pod_egress` for IPv6 packets.
#[inline(never)]
pub fn pod_egress(skb: *mut __sk_buff) -> i32 {
    let ctx = TcContext::new(skb);
    match work() {
        Some(w) => verdict(try_pod_egress(&ctx, w)),
        None => TC_ACT_OK,
    }
}

#[inline(always)]
fn try_nodeport_ingress(ctx: &TcContext, w: &mut Work6) -> Result<i32, DropReason> {
    if !packet6::parse(ctx, &mut w.flow)? {
        return Ok(TC_ACT_OK);
    }
    let now = lb::now_secs();
    if let Some(action) = reverse(ctx, w, now, Deliver::Route)? {
        return Ok(action);
    }
    let Some((service, node_port)) = external_service(&w.flow) else {
        return Ok(TC_ACT_OK);
    };
    match translate(ctx, w, &service, Client::External, now) {
        // As for IPv4: the stack refuses (TCP RST, ICMPv6 port unreachable) at once.
        Err(DROP_NO_BACKEND) if node_port => {
            count_drop(DROP_NO_BACKEND);
            Ok(TC_ACT_OK)
        }
        other => other,
    }
}

#[inline(always)]
fn try_nodeport_egress(ctx: &TcContext, w: &mut Work6) -> Result<i32, DropReason> {
    if !packet6::parse(ctx, &mut w.flow)? {
        return Ok(TC_ACT_OK);
    }
    let action = reverse(ctx, w, lb::now_secs(), Deliver::InPlace)?;
    Ok(action.unwrap_or(TC_ACT_OK))
}

#[inline(always)]
fn try_pod_egress(ctx: &TcContext, w: &mut Work6) -> Result<i32, DropReason> {
    if !packet6::parse(ctx, &mut w.flow)? {
        return Ok(TC_ACT_OK);
    }
    let now = lb::now_secs();
    if let Some(action) = reverse(ctx, w, now, Deliver::Route)? {
        return Ok(action);
    }
    match lb::lookup_any_v6(w.flow.dst_addr, w.flow.dst_port, w.flow.protocol) {
        Some(service) => translate(ctx, w, &service, Client::InNode, now),
        None => Ok(TC_ACT_OK),
    }
}

/// The service a packet from outside is addressed to (see [`super::v4::external_service`]).
#[inline(always)]
fn external_service(flow: &Ipv6Flow) -> Option<(Service<ServiceKeyV6>, bool)> {
    const EXTERNAL: u16 = service_flags::EXTERNAL_IP | service_flags::LOAD_BALANCER;
    if let Some(service) = lb::lookup_v6(flow.dst_addr, flow.dst_port, flow.protocol) {
        return (service.value.flags & EXTERNAL != 0).then_some((service, false));
    }
    if lb::is_node_addr_v6(&flow.dst_addr) {
        return lb::lookup_nodeport_v6(flow.dst_port, flow.protocol).map(|s| (s, true));
    }
    None
}

/// Writes the node's IPv6 SNAT address (`NODE_CONFIG[0].node_address_v6`) to `out`.
#[inline(always)]
fn snat_address(out: &mut [u8; 16]) -> Result<(), DropReason> {
    match NODE_CONFIG.get(0) {
        Some(config) if config.node_address_v6 != [0; 16] => {
            *out = config.node_address_v6;
            Ok(())
        }
        _ => Err(DROP_NAT_REWRITE_FAILED),
    }
}

/// A reply of a tracked connection: translate it back and send it to the client.
/// `None` when the packet matches no reply entry.
#[inline(always)]
fn reverse(
    ctx: &TcContext,
    w: &mut Work6,
    now: u32,
    deliver: Deliver,
) -> Result<Option<i32>, DropReason> {
    ct::fill_key(&mut w.key, &w.flow, CT_DIR_REPLY);
    let Some(entry_ptr) = ct::lookup_v6(&w.key, now) else {
        return Ok(None);
    };
    // SAFETY: a live map value; copied before the entry is touched.
    w.entry = unsafe { *entry_ptr };
    let flags = ct::touch(entry_ptr, &w.flow, ct_flags::SEEN_REPLY, now);
    if flags != w.entry.flags || w.entry.last_seen_secs != now {
        ct::fill_original_key(&mut w.key, &w.entry, w.flow.protocol);
        ct::sync_peer(&w.key, flags, now);
    }
    let entry = &w.entry;
    if entry.flags & ct_flags::SNAT != 0 {
        nat6::rewrite_v6(
            ctx,
            &mut w.flow,
            End::Destination,
            &entry.orig_src_addr,
            entry.orig_src_port,
        )?;
    }
    nat6::rewrite_v6(
        ctx,
        &mut w.flow,
        End::Source,
        &entry.orig_dst_addr,
        entry.orig_dst_port,
    )?;
    lb::count_service(entry.rev_nat_index, 0, 1, u64::from(ctx.len()));
    Ok(Some(match deliver {
        Deliver::Route => nat6::forward_v6(ctx, &w.flow, &mut w.fib),
        Deliver::InPlace => TC_ACT_OK,
    }))
}

/// A packet to `service`: reuse its connection's backend or pick one, rewrite, and
/// pass the packet on.
#[inline(always)]
fn translate(
    ctx: &TcContext,
    w: &mut Work6,
    service: &Service<ServiceKeyV6>,
    client: Client,
    now: u32,
) -> Result<i32, DropReason> {
    ct::fill_key(&mut w.key, &w.flow, CT_DIR_ORIGINAL);
    let mut new = 1;
    if let Some(ptr) = ct::lookup_v6(&w.key, now) {
        // SAFETY: a live map value, copied out.
        w.entry = unsafe { *ptr };
        // A backend removed since: the connection is lost; choose again below.
        if let Some(backend) = V6::backend(w.entry.backend_id) {
            w.backend = backend;
            let flags = ct::touch(ptr, &w.flow, 0, now);
            if flags != w.entry.flags || w.entry.last_seen_secs != now {
                fill_reply_key(w)?;
                ct::sync_peer(&w.key, flags, now);
            }
            new = 0;
        }
    }
    if new == 1 {
        track_new(w, service, client, now)?;
    }

    let snat = w.entry.flags & ct_flags::SNAT != 0;
    if snat {
        snat_address(&mut w.snat)?;
        nat6::rewrite_v6(ctx, &mut w.flow, End::Source, &w.snat, w.entry.nat_port)?;
    }
    nat6::rewrite_v6(
        ctx,
        &mut w.flow,
        End::Destination,
        &w.backend.address,
        w.backend.port,
    )?;
    lb::count_service(w.entry.rev_nat_index, new, 1, u64::from(ctx.len()));
    if snat {
        // The source is now a node address: send it out directly (no martian check).
        Ok(nat6::forward_v6(ctx, &w.flow, &mut w.fib))
    } else {
        Ok(TC_ACT_OK)
    }
}

/// Writes the reply-direction key of the tracked connection (`w.entry`, `w.backend`,
/// before any rewrite of `w.flow`) into `w.key`.
#[inline(always)]
fn fill_reply_key(w: &mut Work6) -> Result<(), DropReason> {
    let protocol = w.flow.protocol;
    if w.entry.flags & ct_flags::SNAT != 0 {
        snat_address(&mut w.snat)?;
        ct::fill_reply_key(
            &mut w.key,
            &w.backend.address,
            w.backend.port,
            &w.snat,
            w.entry.nat_port,
            protocol,
        );
    } else {
        let (addr, port) = (&w.flow.src_addr, w.flow.src_port);
        ct::fill_reply_key(
            &mut w.key,
            &w.backend.address,
            w.backend.port,
            addr,
            port,
            protocol,
        );
    }
    Ok(())
}

/// A new connection: pick a backend, decide on SNAT, and store both conntrack entries
/// (`w.entry`, `w.backend` are set).
#[inline(always)]
fn track_new(
    w: &mut Work6,
    service: &Service<ServiceKeyV6>,
    client: Client,
    now: u32,
) -> Result<(), DropReason> {
    let selected = choose(&w.flow, service, client)?;
    w.backend = selected.backend;
    let ext_local = service.value.flags & service_flags::EXT_LOCAL != 0;
    let local = w.backend.flags & backend_flags::LOCAL != 0;
    let snat = client == Client::External && !local && !ext_local;

    let entry = &mut w.entry;
    entry.backend_id = selected.backend_id;
    entry.rev_nat_index = service.value.rev_nat_index;
    entry.flags = if snat { ct_flags::SNAT } else { 0 };
    entry.orig_src_addr = w.flow.src_addr;
    entry.orig_src_port = w.flow.src_port;
    entry.nat_port = 0;
    entry.orig_dst_addr = w.flow.dst_addr;
    entry.orig_dst_port = w.flow.dst_port;
    entry._pad = 0;
    entry.last_seen_secs = now;
    if w.flow.closes() {
        entry.flags |= ct_flags::CLOSING;
    }
    let protocol = w.flow.protocol;
    if snat {
        // The reply key, starting with the client's own port.
        snat_address(&mut w.snat)?;
        ct::fill_reply_key(
            &mut w.key,
            &w.backend.address,
            w.backend.port,
            &w.snat,
            w.flow.src_port,
            protocol,
        );
        ct::claim_snat_v6(&mut w.entry, &mut w.key, now)?;
    } else {
        let (addr, port) = (&w.flow.src_addr, w.flow.src_port);
        ct::fill_reply_key(
            &mut w.key,
            &w.backend.address,
            w.backend.port,
            addr,
            port,
            protocol,
        );
        ct::store_v6(&w.key, &w.entry)?;
    }
    ct::fill_key(&mut w.key, &w.flow, CT_DIR_ORIGINAL);
    ct::store_v6(&w.key, &w.entry)
}

/// Backend selection, as [`super::v4`] does it: Maglev for `MAGLEV` services without
/// affinity or a scope, otherwise random with client-IP affinity.
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
    let affinity = AffinityClient {
        client: flow.src_addr,
        kind: AFFINITY_BY_CLIENT_IP,
    };
    lb::select_v6(service, client, Some(affinity))
}
