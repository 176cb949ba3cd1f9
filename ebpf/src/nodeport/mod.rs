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
//! Both families run the same code ([`path`], generic over [`Family`]): each entry
//! point sends IPv6 frames to its `V6` instance and everything else to the `V4` one
//! (non-IP frames, neighbour discovery, ICMP other than errors and other protocols
//! pass unchanged). The instances are separate BPF functions, so their stack frames
//! are not added up against the 512-byte limit; their state lives in per-CPU scratch
//! memory ([`work`]). ICMP errors about translated connections are translated back by
//! [`icmp`] on every path that translates replies.
//! Each entry point is thin: a `try_*` function returns a verdict or a drop reason,
//! which is counted in `DROPS`.

use aya_ebpf::{
    bindings::{__sk_buff, TC_ACT_OK, TC_ACT_SHOT},
    macros::classifier,
    programs::TcContext,
};
use waggle_ebpf_common::drop::{DROP_NO_BACKEND, DropReason};

use crate::{
    family::{Family, V4, V6},
    lb::{self, Client},
    maps::count_drop,
    nat,
    packet6::is_ipv6,
};

mod icmp;
mod path;
mod work;

use work::{Scratch, Work};

/// Uplink ingress: NodePort/externalIP traffic from outside, and replies of remote
/// backends.
#[classifier]
pub fn tc_nodeport_ingress(ctx: TcContext) -> i32 {
    if is_ipv6(&ctx) {
        return nodeport_ingress::<V6>(ctx.skb.skb);
    }
    nodeport_ingress::<V4>(ctx.skb.skb)
}

/// Uplink egress: replies of local backends to external clients (reverse DNAT).
#[classifier]
pub fn tc_nodeport_egress(ctx: TcContext) -> i32 {
    if is_ipv6(&ctx) {
        return nodeport_egress::<V6>(ctx.skb.skb);
    }
    nodeport_egress::<V4>(ctx.skb.skb)
}

/// Pod host-side veth ingress (traffic leaving the pod): replies of local backends,
/// and service DNAT for pods without socket LB.
#[classifier]
pub fn tc_pod_egress(ctx: TcContext) -> i32 {
    if is_ipv6(&ctx) {
        return pod_egress::<V6>(ctx.skb.skb);
    }
    pod_egress::<V4>(ctx.skb.skb)
}

/// [`tc_nodeport_ingress`] for one family, a BPF function of its own.
#[inline(never)]
fn nodeport_ingress<F: Scratch>(skb: *mut __sk_buff) -> i32 {
    let ctx = TcContext::new(skb);
    match F::work() {
        Some(w) => verdict(try_nodeport_ingress::<F>(&ctx, w)),
        None => TC_ACT_OK,
    }
}

/// [`tc_nodeport_egress`] for one family, a BPF function of its own.
#[inline(never)]
fn nodeport_egress<F: Scratch>(skb: *mut __sk_buff) -> i32 {
    let ctx = TcContext::new(skb);
    match F::work() {
        Some(w) => verdict(try_nodeport_egress::<F>(&ctx, w)),
        None => TC_ACT_OK,
    }
}

/// [`tc_pod_egress`] for one family, a BPF function of its own.
#[inline(never)]
fn pod_egress<F: Scratch>(skb: *mut __sk_buff) -> i32 {
    let ctx = TcContext::new(skb);
    match F::work() {
        Some(w) => verdict(try_pod_egress::<F>(&ctx, w)),
        None => TC_ACT_OK,
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

#[inline(always)]
fn try_nodeport_ingress<F: Family>(
    ctx: &TcContext,
    w: &mut Work<F::Addr>,
) -> Result<i32, DropReason> {
    if !F::parse(ctx, &mut w.flow)? {
        return Ok(TC_ACT_OK);
    }
    let now = lb::now_secs();
    if let Some(action) = reverse::<F>(ctx, w, now, Deliver::Route)? {
        return Ok(action);
    }
    if !w.flow.has_ports() {
        return Ok(TC_ACT_OK);
    }
    let Some((service, node_port)) = path::external_service::<F>(&w.flow) else {
        return Ok(TC_ACT_OK);
    };
    match path::translate::<F>(ctx, w, &service, Client::External, now) {
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

#[inline(always)]
fn try_nodeport_egress<F: Family>(
    ctx: &TcContext,
    w: &mut Work<F::Addr>,
) -> Result<i32, DropReason> {
    if !F::parse(ctx, &mut w.flow)? {
        return Ok(TC_ACT_OK);
    }
    // Already routed to this device: translate in place and let it go out.
    let action = reverse::<F>(ctx, w, lb::now_secs(), Deliver::InPlace)?;
    Ok(action.unwrap_or(TC_ACT_OK))
}

#[inline(always)]
fn try_pod_egress<F: Family>(ctx: &TcContext, w: &mut Work<F::Addr>) -> Result<i32, DropReason> {
    if !F::parse(ctx, &mut w.flow)? {
        return Ok(TC_ACT_OK);
    }
    let now = lb::now_secs();
    if let Some(action) = reverse::<F>(ctx, w, now, Deliver::Route)? {
        return Ok(action);
    }
    if !w.flow.has_ports() {
        return Ok(TC_ACT_OK);
    }
    match lb::lookup_any::<F>(w.flow.dst_addr, w.flow.dst_port, w.flow.protocol) {
        Some(service) => path::translate::<F>(ctx, w, &service, Client::InNode, now),
        None => Ok(TC_ACT_OK),
    }
}

/// A reply or an ICMP error of a tracked connection, translated back and sent on;
/// `None` when the packet belongs to none.
#[inline(always)]
fn reverse<F: Family>(
    ctx: &TcContext,
    w: &mut Work<F::Addr>,
    now: u32,
    deliver: Deliver,
) -> Result<Option<i32>, DropReason> {
    if w.flow.has_ports() {
        path::reverse::<F>(ctx, w, now, deliver)
    } else {
        icmp::reverse_error::<F>(ctx, w, now, deliver)
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

impl Deliver {
    /// The verdict for a translated packet.
    #[inline(always)]
    fn send<F: Family>(self, ctx: &TcContext, w: &mut Work<F::Addr>) -> i32 {
        match self {
            Deliver::Route => nat::forward::<F>(ctx, &w.flow, &mut w.fib),
            Deliver::InPlace => TC_ACT_OK,
        }
    }
}
