//! Address/port rewriting with incremental checksum fix-ups, and forwarding of a
//! rewritten packet.
//!
//! Rewrites use `bpf_skb_store_bytes` plus `bpf_l3_csum_replace` /
//! `bpf_l4_csum_replace` (Linux 4.1); the L4 replace carries `BPF_F_PSEUDO_HDR` for
//! address changes (the TCP/UDP pseudo-header includes the addresses) and
//! `BPF_F_MARK_MANGLED_0` for UDP, whose checksum 0 means "none". Both helpers also
//! handle `CHECKSUM_PARTIAL` skbs from veths with offload.
//!
//! [`forward_v4`] sends a rewritten packet out with `bpf_fib_lookup` (Linux 4.18) and
//! `bpf_redirect_neigh` (Linux 5.10). It is needed whenever the new source address is
//! one of the node's own (SNAT to the node, or a reply reverse-translated to the
//! NodePort address): the stack's input route check would drop such a packet as a
//! martian, while the redirect sends it straight to the egress device.

use aya_ebpf::{
    EbpfContext,
    bindings::{
        BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR, BPF_FIB_LKUP_RET_NO_NEIGH,
        BPF_FIB_LKUP_RET_SUCCESS, TC_ACT_OK, bpf_fib_lookup,
    },
    helpers::generated::{bpf_fib_lookup as fib_lookup, bpf_redirect_neigh},
    programs::TcContext,
};
use waggle_ebpf_common::{
    drop::{DROP_NAT_REWRITE_FAILED, DropReason},
    lb::PROTO_UDP,
};

use crate::packet::Ipv4Flow;

const IPV4_SRC: usize = 12;
const IPV4_DST: usize = 16;
const IPV4_CSUM: usize = 10;
const AF_INET: u8 = 2;

/// Which end of the flow to rewrite.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum End {
    Source,
    Destination,
}

/// Rewrites the source or destination address and port of `flow`'s packet, keeping
/// the IPv4 and L4 checksums valid, and updates `flow` to match.
#[inline(always)]
pub fn rewrite_v4(
    ctx: &TcContext,
    flow: &mut Ipv4Flow,
    end: End,
    addr: u32,
    port: u16,
) -> Result<(), DropReason> {
    let (addr_off, port_off, old_addr, old_port) = match end {
        End::Source => (IPV4_SRC, 0, flow.src_addr, flow.src_port),
        End::Destination => (IPV4_DST, 2, flow.dst_addr, flow.dst_port),
    };
    let l4_flags = if flow.protocol == PROTO_UDP { u64::from(BPF_F_MARK_MANGLED_0) } else { 0 };
    let csum = flow.l4_csum();
    let fail = |_| DROP_NAT_REWRITE_FAILED;
    // Unconditional: replacing a field with its own value leaves the checksums as they
    // are, and fewer branches keep the verifier's path count down.
    ctx.l4_csum_replace(
        csum,
        u64::from(old_addr),
        u64::from(addr),
        l4_flags | u64::from(BPF_F_PSEUDO_HDR) | 4,
    )
    .map_err(fail)?;
    ctx.l3_csum_replace(flow.l3 + IPV4_CSUM, u64::from(old_addr), u64::from(addr), 4)
        .map_err(fail)?;
    ctx.store(flow.l3 + addr_off, &addr, 0).map_err(fail)?;
    ctx.l4_csum_replace(csum, u64::from(old_port), u64::from(port), l4_flags | 2)
        .map_err(fail)?;
    ctx.store(flow.l4 + port_off, &port, 0).map_err(fail)?;
    match end {
        End::Source => {
            flow.src_addr = addr;
            flow.src_port = port;
        }
        End::Destination => {
            flow.dst_addr = addr;
            flow.dst_port = port;
        }
    }
    Ok(())
}

/// Sends the (rewritten) packet towards `flow.dst_addr`: a FIB lookup from the
/// receiving device, then `bpf_redirect_neigh` to the egress device, which fills in
/// the L2 header from the neighbour table. When the FIB says the destination is not
/// forwarded (a local address, or no route) the packet goes up the stack (`TC_ACT_OK`)
/// and the stack decides.
#[inline(always)]
pub fn forward_v4(ctx: &TcContext, flow: &Ipv4Flow) -> i32 {
    // SAFETY: an all-zero `bpf_fib_lookup` is a valid value (plain integers).
    let mut params: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    params.family = AF_INET;
    params.l4_protocol = flow.protocol;
    params.sport = flow.src_port;
    params.dport = flow.dst_port;
    params.__bindgen_anon_1.tot_len = ctx.len() as u16;
    // SAFETY: `skb` is the program's context pointer.
    params.ifindex = unsafe { (*ctx.skb.skb).ifindex };
    params.__bindgen_anon_3.ipv4_src = flow.src_addr;
    params.__bindgen_anon_4.ipv4_dst = flow.dst_addr;
    // SAFETY: `params` is a valid, writable `bpf_fib_lookup` of the size passed.
    let ret = unsafe {
        fib_lookup(
            ctx.as_ptr(),
            &mut params,
            core::mem::size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    };
    if ret == i64::from(BPF_FIB_LKUP_RET_SUCCESS) || ret == i64::from(BPF_FIB_LKUP_RET_NO_NEIGH) {
        // SAFETY: no neighbour parameters: the helper resolves the next hop itself.
        unsafe { bpf_redirect_neigh(params.ifindex, core::ptr::null_mut(), 0, 0) as i32 }
    } else {
        TC_ACT_OK
    }
}

