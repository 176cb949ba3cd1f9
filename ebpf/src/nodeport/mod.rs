//! The per-packet service path (tc/TCX): traffic that socket LB cannot see.
//!
//! Two programs, both SCHED_CLS, attached with TCX (Linux 6.6) or a clsact qdisc
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
//! IPv4 and IPv6 (TCP/UDP directly after the IPv6 header; extension headers pass
//! unchanged). The per-family logic lives in [`v4`] and [`v6`]. Each entry point is thin: a
//! `try_*` function returns a verdict or a drop reason, which is counted in `DROPS`.

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT},
    macros::classifier,
    programs::TcContext,
};
use waggle_ebpf_common::drop::{DROP_NO_BACKEND, DropReason};

use crate::{
    lb::{self, Client},
    maps::count_drop,
    packet::{self, Ipv4Flow, Ipv6Flow, Parsed},
};

mod v4;
mod v6;

/// Uplink ingress: NodePort/externalIP traffic from outside, and replies of remote
/// backends.
#[classifier]
pub fn tc_nodeport_ingress(ctx: TcContext) -> i32 {
    match packet::parse(&ctx) {
        Ok(Parsed::Ipv4(flow)) => nodeport_ingress_v4(&ctx, &flow),
        Ok(Parsed::Ipv6(flow)) => nodeport_ingress_v6(&ctx, &flow),
        Ok(Parsed::Other) => TC_ACT_OK,
        Err(reason) => verdict(Err(reason)),
    }
}

/// Uplink egress: replies of local backends to external clients (reverse DNAT).
#[classifier]
pub fn tc_nodeport_egress(ctx: TcContext) -> i32 {
    match packet::parse(&ctx) {
        Ok(Parsed::Ipv4(flow)) => nodeport_egress_v4(&ctx, &flow),
        Ok(Parsed::Ipv6(flow)) => nodeport_egress_v6(&ctx, &flow),
        Ok(Parsed::Other) => TC_ACT_OK,
        Err(reason) => verdict(Err(reason)),
    }
}

/// Pod host-side veth ingress (traffic leaving the pod): replies of local backends,
/// and service DNAT for pods without socket LB.
#[classifier]
pub fn tc_pod_egress(ctx: TcContext) -> i32 {
    match packet::parse(&ctx) {
        Ok(Parsed::Ipv4(flow)) => pod_egress_v4(&ctx, &flow),
        Ok(Parsed::Ipv6(flow)) => pod_egress_v6(&ctx, &flow),
        Ok(Parsed::Other) => TC_ACT_OK,
        Err(reason) => verdict(Err(reason)),
    }
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

/// A NodePort without backends: leave the packet to the node's stack, where no socket
/// listens on the port, so TCP is refused with a RST (UDP with ICMP port unreachable)
/// at once. The refusal is still counted.
#[inline(always)]
fn refuse_in_stack(result: Result<i32, DropReason>, node_port: bool) -> Result<i32, DropReason> {
    match result {
        Err(DROP_NO_BACKEND) if node_port => {
            count_drop(DROP_NO_BACKEND);
            Ok(TC_ACT_OK)
        }
        other => other,
    }
}

// One BPF subprogram per family and attach point (`inline(never)`): each has its own
// stack frame, so the IPv4 and IPv6 paths do not add up against the 512-byte limit.

#[inline(never)]
fn nodeport_ingress_v4(ctx: &TcContext, flow: &Ipv4Flow) -> i32 {
    let mut flow = *flow;
    let now = lb::now_secs();
    verdict((|| {
        if let Some(action) = v4::reverse(ctx, &mut flow, now, Deliver::Route)? {
            return Ok(action);
        }
        let Some((service, node_port)) = v4::external_service(&flow) else {
            return Ok(TC_ACT_OK);
        };
        refuse_in_stack(v4::translate(ctx, &mut flow, &service, Client::External, now), node_port)
    })())
}

/// Sentinel of the `*_v6` subprograms below: the packet matched no reply entry.
const NOT_A_REPLY: i32 = i32::MIN;

#[inline(never)]
fn nodeport_ingress_v6(ctx: &TcContext, flow: &Ipv6Flow) -> i32 {
    let mut flow = *flow;
    let now = lb::now_secs();
    match reverse_v6(ctx, &mut flow, now) {
        NOT_A_REPLY => external_v6(ctx, &mut flow, now),
        action => action,
    }
}

/// The reply half of the IPv6 handlers (its own subprogram, for stack space).
#[inline(never)]
fn reverse_v6(ctx: &TcContext, flow: &mut Ipv6Flow, now: u32) -> i32 {
    match v6::reverse(ctx, flow, now, Deliver::Route) {
        Ok(None) => NOT_A_REPLY,
        other => verdict(other.map(|action| action.unwrap_or(TC_ACT_OK))),
    }
}

#[inline(never)]
fn external_v6(ctx: &TcContext, flow: &mut Ipv6Flow, now: u32) -> i32 {
    let Some((service, node_port)) = v6::external_service(flow) else {
        return TC_ACT_OK;
    };
    verdict(refuse_in_stack(v6::translate(ctx, flow, &service, Client::External, now), node_port))
}

// Already routed to this device: translate in place and let it go out.
#[inline(never)]
fn nodeport_egress_v4(ctx: &TcContext, flow: &Ipv4Flow) -> i32 {
    let mut flow = *flow;
    let result = v4::reverse(ctx, &mut flow, lb::now_secs(), Deliver::InPlace);
    verdict(result.map(|action| action.unwrap_or(TC_ACT_OK)))
}

#[inline(never)]
fn nodeport_egress_v6(ctx: &TcContext, flow: &Ipv6Flow) -> i32 {
    let mut flow = *flow;
    let result = v6::reverse(ctx, &mut flow, lb::now_secs(), Deliver::InPlace);
    verdict(result.map(|action| action.unwrap_or(TC_ACT_OK)))
}

#[inline(never)]
fn pod_egress_v4(ctx: &TcContext, flow: &Ipv4Flow) -> i32 {
    let mut flow = *flow;
    let now = lb::now_secs();
    verdict((|| {
        if let Some(action) = v4::reverse(ctx, &mut flow, now, Deliver::Route)? {
            return Ok(action);
        }
        match lb::lookup_any_v4(flow.dst_addr, flow.dst_port, flow.protocol) {
            Some(service) => v4::translate(ctx, &mut flow, &service, Client::InNode, now),
            None => Ok(TC_ACT_OK),
        }
    })())
}

#[inline(never)]
fn pod_egress_v6(ctx: &TcContext, flow: &Ipv6Flow) -> i32 {
    let mut flow = *flow;
    let now = lb::now_secs();
    match reverse_v6(ctx, &mut flow, now) {
        NOT_A_REPLY => in_node_v6(ctx, &mut flow, now),
        action => action,
    }
}

#[inline(never)]
fn in_node_v6(ctx: &TcContext, flow: &mut Ipv6Flow, now: u32) -> i32 {
    match lb::lookup_any_v6(flow.dst_addr, flow.dst_port, flow.protocol) {
        Some(service) => verdict(v6::translate(ctx, flow, &service, Client::InNode, now)),
        None => TC_ACT_OK,
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

