//! The per-packet service path (tc/TCX): traffic that socket LB cannot see.
//!
//! Three programs, all SCHED_CLS, attached with TCX (Linux 6.6) or a clsact qdisc
//! (Linux 4.5) by `waggle_datapath::nodeport`:
//!
//! - [`tc_nodeport_ingress`], on the node's uplink (tc ingress): a packet from outside
//!   to a node address and a NodePort, or to an externalIP/LoadBalancer IP, gets a
//!   backend (conntrack, then Maglev or random/affinity selection in [`crate::lb`]) and
//!   is DNAT'ed to it; when the backend is on another node (and the service is not
//!   `externalTrafficPolicy: Local`) its source is also SNAT'ed to the node address, so
//!   the reply comes back through this node. Replies from remote backends, matching a
//!   conntrack reply entry, are translated back and sent to the client.
//! - [`tc_nodeport_egress`], on the uplink's tc egress: replies of *local* backends
//!   leaving the node, translated back to the NodePort/externalIP the client used (so
//!   NodePort to a local backend works with the two uplink programs alone).
//! - [`tc_pod_egress`], on each pod's host-side veth (tc ingress there = packets
//!   leaving the pod): translates replies of local backends back to the service
//!   address the client used, and is the per-packet fallback for pods without socket
//!   LB (DNAT of ClusterIP/externalIP/NodePort destinations, no SNAT).
//!
//! Both families: each entry point sends IPv6 frames to [`v6`] and everything else to
//! the IPv4 logic in [`v4`] (non-IP frames, ICMP/ICMPv6 and so neighbour discovery,
//! and other protocols pass unchanged). The two paths are separate BPF functions, so
//! their stack frames are not added up against the 512-byte limit.
//! Each entry point is thin: a `try_*` function returns a verdict or a drop reason,
//! which is counted in `DROPS`.

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT, __sk_buff},
    macros::classifier,
    programs::TcContext,
};
use waggle_ebpf_common::drop::{DROP_NO_BACKEND, DropReason};

use crate::{
    lb::{self, Client},
    maps::count_drop,
    packet::{self, Parsed},
};

mod v4;
mod v6;

/// Uplink ingress: NodePort/externalIP traffic from outside, and replies of remote
/// backends.
#[classifier]
pub fn tc_nodeport_ingress(ctx: TcContext) -> i32 {
    if crate::packet6::is_ipv6(&ctx) {
        return v6::nodeport_ingress(ctx.skb.skb);
    }
    ipv4_nodeport_ingress(ctx.skb.skb)
}

/// The IPv4 (and non-IP) path of [`tc_nodeport_ingress`], a BPF function of its own so that its
/// stack frame is not added to the IPv6 path's.
#[inline(never)]
fn ipv4_nodeport_ingress(skb: *mut __sk_buff) -> i32 {
    verdict(try_nodeport_ingress(&TcContext::new(skb)))
}

/// Uplink egress: replies of local backends to external clients (reverse DNAT).
#[classifier]
pub fn tc_nodeport_egress(ctx: TcContext) -> i32 {
    if crate::packet6::is_ipv6(&ctx) {
        return v6::nodeport_egress(ctx.skb.skb);
    }
    ipv4_nodeport_egress(ctx.skb.skb)
}

/// The IPv4 (and non-IP) path of [`tc_nodeport_egress`], a BPF function of its own so that its
/// stack frame is not added to the IPv6 path's.
#[inline(never)]
fn ipv4_nodeport_egress(skb: *mut __sk_buff) -> i32 {
    verdict(try_nodeport_egress(&TcContext::new(skb)))
}

/// Pod host-side veth ingress (traffic leaving the pod): replies of local backends,
/// and service DNAT for pods without socket LB.
#[classifier]
pub fn tc_pod_egress(ctx: TcContext) -> i32 {
    if crate::packet6::is_ipv6(&ctx) {
        return v6::pod_egress(ctx.skb.skb);
    }
    ipv4_pod_egress(ctx.skb.skb)
}

/// The IPv4 (and non-IP) path of [`tc_pod_egress`], a BPF function of its own so that its
/// stack frame is not added to the IPv6 path's.
#[inline(never)]
fn ipv4_pod_egress(skb: *mut __sk_buff) -> i32 {
    verdict(try_pod_egress(&TcContext::new(skb)))
}

/// The verdict of a handler: a drop reason is counted and the packet dropped.
#[inline(always)]
fn verdict(result: Result<i32, DropReason>) -> i32 {
    match result {
        Ok(action) => action,
        Err(reason) => {
            count_drop(reason);
            TC_ACT_SHOT
        }
    }
}

fn try_nodeport_ingress(ctx: &TcContext) -> Result<i32, DropReason> {
    let Parsed::Ipv4(mut flow) = packet::parse(ctx)? else {
        return Ok(TC_ACT_OK);
    };
    let now = lb::now_secs();
    if let Some(action) = v4::reverse(ctx, &mut flow, now, Deliver::Route)? {
        return Ok(action);
    }
    let Some((service, node_port)) = v4::external_service(&flow) else {
        return Ok(TC_ACT_OK);
    };
    match v4::translate(ctx, &mut flow, &service, Client::External, now) {
        // A NodePort without backends: leave the packet to the node's stack, where no
        // socket listens on the port, so TCP is refused with a RST (UDP with ICMP
        // port unreachable) at once. The refusal is still counted.
        Err(DROP_NO_BACKEND) if node_port => {
            count_drop(DROP_NO_BACKEND);
            Ok(TC_ACT_OK)
        }
        other => other,
    }
}

fn try_nodeport_egress(ctx: &TcContext) -> Result<i32, DropReason> {
    let Parsed::Ipv4(mut flow) = packet::parse(ctx)? else {
        return Ok(TC_ACT_OK);
    };
    // Already routed to this device: translate in place and let it go out.
    let action = v4::reverse(ctx, &mut flow, lb::now_secs(), Deliver::InPlace)?;
    Ok(action.unwrap_or(TC_ACT_OK))
}

fn try_pod_egress(ctx: &TcContext) -> Result<i32, DropReason> {
    let Parsed::Ipv4(mut flow) = packet::parse(ctx)? else {
        return Ok(TC_ACT_OK);
    };
    let now = lb::now_secs();
    if let Some(action) = v4::reverse(ctx, &mut flow, now, Deliver::Route)? {
        return Ok(action);
    }
    match lb::lookup_any_v4(flow.dst_addr, flow.dst_port, flow.protocol) {
        Some(service) => v4::translate(ctx, &mut flow, &service, Client::InNode, now),
        None => Ok(TC_ACT_OK),
    }
}

/// How a reverse-translated reply continues.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Deliver {
    /// Received on this device: route it to the client (FIB lookup and redirect).
    Route,
    /// Already on its way out of this device (tc egress): pass it on.
    InPlace,
}

