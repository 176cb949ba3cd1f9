//! IPv6 address/port rewriting and forwarding, the counterpart of [`crate::nat`].
//!
//! IPv6 has no header checksum, but the TCP/UDP pseudo-header covers both 128-bit
//! addresses: an address change feeds `bpf_csum_diff` (Linux 4.6) of the old and new
//! address into `bpf_l4_csum_replace` with `BPF_F_PSEUDO_HDR` (size 0 = "a diff").
//! Ports change as in IPv4.

use aya_ebpf::{
    EbpfContext,
    bindings::{
        BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR, BPF_FIB_LKUP_RET_NO_NEIGH,
        BPF_FIB_LKUP_RET_SUCCESS, TC_ACT_OK, bpf_fib_lookup,
    },
    helpers::generated::{bpf_csum_diff, bpf_fib_lookup as fib_lookup, bpf_redirect_neigh},
    programs::TcContext,
};
use waggle_ebpf_common::{
    drop::{DROP_NAT_REWRITE_FAILED, DropReason},
    lb::PROTO_UDP,
};

use crate::{
    nat::End,
    packet6::{IPV6_DST, IPV6_SRC, Ipv6Flow},
};

const AF_INET6: u8 = 10;

/// Rewrites the source or destination address and port of `flow`'s packet, keeping
/// the L4 checksum valid, and updates `flow` to match.
#[inline(always)]
pub fn rewrite_v6(
    ctx: &TcContext,
    flow: &mut Ipv6Flow,
    end: End,
    addr: &[u8; 16],
    port: u16,
) -> Result<(), DropReason> {
    let l4_flags = if flow.protocol == PROTO_UDP {
        u64::from(BPF_F_MARK_MANGLED_0)
    } else {
        0
    };
    let csum = flow.l4_csum();
    let l4 = flow.l4;
    let (addr_off, port_off, old_addr, old_port) = match end {
        End::Source => (IPV6_SRC, 0, &mut flow.src_addr, &mut flow.src_port),
        End::Destination => (IPV6_DST, 2, &mut flow.dst_addr, &mut flow.dst_port),
    };
    let fail = |_| DROP_NAT_REWRITE_FAILED;
    // SAFETY: both buffers are 16 readable bytes (a multiple of 4, as required).
    let diff = unsafe {
        bpf_csum_diff(
            old_addr.as_ptr() as *mut u32,
            16,
            addr.as_ptr() as *mut u32,
            16,
            0,
        )
    };
    if diff < 0 {
        return Err(DROP_NAT_REWRITE_FAILED);
    }
    ctx.l4_csum_replace(csum, 0, diff as u64, l4_flags | u64::from(BPF_F_PSEUDO_HDR))
        .map_err(fail)?;
    ctx.store(Ipv6Flow::L3 + addr_off, addr, 0).map_err(fail)?;
    ctx.l4_csum_replace(csum, u64::from(*old_port), u64::from(port), l4_flags | 2)
        .map_err(fail)?;
    ctx.store(l4 + port_off, &port, 0).map_err(fail)?;
    *old_addr = *addr;
    *old_port = port;
    Ok(())
}

/// Sends the (rewritten) packet towards `flow.dst_addr` by FIB lookup and
/// `bpf_redirect_neigh`, as [`crate::nat::forward_v4`] does for IPv4. `params` is
/// working memory (per-CPU scratch: it is too large for the IPv6 path's stack).
#[inline(always)]
pub fn forward_v6(ctx: &TcContext, flow: &Ipv6Flow, params: &mut bpf_fib_lookup) -> i32 {
    // Zeroed word by word: every input field the helper does not get from us must be 0.
    let words = (params as *mut bpf_fib_lookup).cast::<u64>();
    let mut i = 0;
    while i < core::mem::size_of::<bpf_fib_lookup>() / 8 {
        // SAFETY: within `params`, which is 8-byte aligned and a multiple of 8 long.
        unsafe { words.add(i).write(0) };
        i += 1;
    }
    params.family = AF_INET6;
    params.l4_protocol = flow.protocol;
    params.sport = flow.src_port;
    params.dport = flow.dst_port;
    params.__bindgen_anon_1.tot_len = ctx.len() as u16;
    // SAFETY: `skb` is the program's context pointer.
    params.ifindex = unsafe { (*ctx.skb.skb).ifindex };
    // SAFETY: 16 bytes into `[u32; 4]` fields of the same size.
    unsafe {
        params.__bindgen_anon_3.ipv6_src =
            core::mem::transmute::<[u8; 16], [u32; 4]>(flow.src_addr);
        params.__bindgen_anon_4.ipv6_dst =
            core::mem::transmute::<[u8; 16], [u32; 4]>(flow.dst_addr);
    }
    // SAFETY: `params` is a valid, writable `bpf_fib_lookup` of the size passed.
    let ret = unsafe {
        fib_lookup(
            ctx.as_ptr(),
            params,
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
