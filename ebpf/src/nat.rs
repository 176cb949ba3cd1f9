//! Address/port rewriting with incremental checksum fix-ups, and forwarding of a
//! rewritten packet, for both families.
//!
//! An address change feeds `bpf_csum_diff` (Linux 4.6) of the old and new address
//! into `bpf_l3_csum_replace` (IPv4 header) and `bpf_l4_csum_replace` with
//! `BPF_F_PSEUDO_HDR` (the TCP/UDP/ICMPv6 pseudo-header covers the addresses); a port
//! change goes to `bpf_l4_csum_replace` alone. UDP uses `BPF_F_MARK_MANGLED_0`, as its
//! checksum 0 means "none". The helpers also handle `CHECKSUM_PARTIAL` skbs from veths
//! with offload. [`Delta`] does the same arithmetic by hand for checksums the helpers
//! cannot address (those inside the packet an ICMP error quotes).
//!
//! [`forward`] sends a rewritten packet out with `bpf_fib_lookup` (Linux 4.18) and
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
    helpers::generated::{bpf_csum_diff, bpf_fib_lookup as fib_lookup, bpf_redirect_neigh},
    programs::TcContext,
};
use waggle_ebpf_common::{
    drop::{DROP_NAT_REWRITE_FAILED, DropReason},
    lb::PROTO_UDP,
};

use crate::{family::Family, packet::Flow};

/// Which end of the flow to rewrite.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum End {
    Source,
    Destination,
}

/// The one's-complement difference between two addresses (`bpf_csum_diff`), as a
/// 32-bit partial sum. `A` is 4 or 16 bytes, a multiple of 4 as the helper needs.
#[inline(always)]
pub fn addr_diff<A>(old: &A, new: &A) -> Result<u32, DropReason> {
    let size = core::mem::size_of::<A>() as u32;
    // SAFETY: both point to `size` readable bytes.
    let diff = unsafe {
        bpf_csum_diff(
            old as *const A as *mut u32,
            size,
            new as *const A as *mut u32,
            size,
            0,
        )
    };
    if diff < 0 {
        Err(DROP_NAT_REWRITE_FAILED)
    } else {
        Ok(diff as u32)
    }
}

/// Rewrites the source or destination address of `flow`'s packet, keeping the IPv4
/// header checksum and a pseudo-header L4 checksum valid, and updates `flow`.
#[inline(always)]
pub fn rewrite_addr<F: Family>(
    ctx: &TcContext,
    flow: &mut Flow<F::Addr>,
    end: End,
    addr: &F::Addr,
) -> Result<(), DropReason> {
    let fail = |_| DROP_NAT_REWRITE_FAILED;
    let pseudo = flow.pseudo_csum(F::ICMP_PSEUDO_HDR);
    let l4_flags = if flow.protocol == PROTO_UDP {
        u64::from(BPF_F_MARK_MANGLED_0)
    } else {
        0
    };
    let l3 = flow.l3;
    let (offset, old) = match end {
        End::Source => (F::SRC_OFF, &mut flow.src_addr),
        End::Destination => (F::DST_OFF, &mut flow.dst_addr),
    };
    let diff = addr_diff(old, addr)?;
    if let Some(csum) = pseudo {
        ctx.l4_csum_replace(
            csum,
            0,
            u64::from(diff),
            l4_flags | u64::from(BPF_F_PSEUDO_HDR),
        )
        .map_err(fail)?;
    }
    if let Some(csum) = F::IP_CSUM_OFF {
        ctx.l3_csum_replace(l3 + csum, 0, u64::from(diff), 0)
            .map_err(fail)?;
    }
    ctx.store(l3 + offset, addr, 0).map_err(fail)?;
    *old = *addr;
    Ok(())
}

/// Rewrites the source or destination address and port of a TCP/UDP packet, keeping
/// its checksums valid, and updates `flow` to match.
#[inline(always)]
pub fn rewrite<F: Family>(
    ctx: &TcContext,
    flow: &mut Flow<F::Addr>,
    end: End,
    addr: &F::Addr,
    port: u16,
) -> Result<(), DropReason> {
    rewrite_addr::<F>(ctx, flow, end, addr)?;
    let fail = |_| DROP_NAT_REWRITE_FAILED;
    let l4_flags = if flow.protocol == PROTO_UDP {
        u64::from(BPF_F_MARK_MANGLED_0)
    } else {
        0
    };
    let csum = flow
        .pseudo_csum(F::ICMP_PSEUDO_HDR)
        .ok_or(DROP_NAT_REWRITE_FAILED)?;
    let (offset, old) = match end {
        End::Source => (0, &mut flow.src_port),
        End::Destination => (2, &mut flow.dst_port),
    };
    ctx.l4_csum_replace(csum, u64::from(*old), u64::from(port), l4_flags | 2)
        .map_err(fail)?;
    ctx.store(flow.l4 + offset, &port, 0).map_err(fail)?;
    *old = port;
    Ok(())
}

/// A checksum change accumulated by hand (RFC 1624: `~old + new` per changed word),
/// in the byte order of the packet's memory, as `bpf_csum_diff` computes it.
#[derive(Clone, Copy, Default)]
pub struct Delta(u64);

impl Delta {
    /// Adds a partial sum from [`addr_diff`].
    #[inline(always)]
    pub fn add(&mut self, diff: u32) {
        self.0 += u64::from(diff);
    }

    /// Adds the change of one 16-bit field from `old` to `new`.
    #[inline(always)]
    pub fn add16(&mut self, old: u16, new: u16) {
        self.0 += u64::from(!old) + u64::from(new);
    }

    /// Adds every change recorded in `other`.
    #[inline(always)]
    pub fn add_all(&mut self, other: Delta) {
        self.0 += other.0;
    }

    /// The checksum `csum` after the changes.
    #[inline(always)]
    pub fn apply(self, csum: u16) -> u16 {
        let mut sum = u64::from(!csum) + self.0;
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        !(sum as u16)
    }
}

/// Sends the (rewritten) packet towards `flow.dst_addr`: a FIB lookup from the
/// receiving device, then `bpf_redirect_neigh` to the egress device, which fills in
/// the L2 header from the neighbour table. When the FIB says the destination is not
/// forwarded (a local address, or no route) the packet goes up the stack (`TC_ACT_OK`)
/// and the stack decides. `params` is working memory (per-CPU scratch: it is too large
/// for the stack next to an IPv6 flow).
#[inline(always)]
pub fn forward<F: Family>(
    ctx: &TcContext,
    flow: &Flow<F::Addr>,
    params: &mut bpf_fib_lookup,
) -> i32 {
    // Zeroed word by word: every input field the helper does not get from us must be 0.
    let words = (params as *mut bpf_fib_lookup).cast::<u64>();
    let mut i = 0;
    while i < core::mem::size_of::<bpf_fib_lookup>() / 8 {
        // SAFETY: within `params`, which is 8-byte aligned and a multiple of 8 long.
        unsafe { words.add(i).write(0) };
        i += 1;
    }
    params.family = F::AF;
    params.l4_protocol = flow.protocol;
    params.sport = flow.src_port;
    params.dport = flow.dst_port;
    params.__bindgen_anon_1.tot_len = ctx.len() as u16;
    // SAFETY: `skb` is the program's context pointer.
    params.ifindex = unsafe { (*ctx.skb.skb).ifindex };
    F::set_fib_addrs(params, &flow.src_addr, &flow.dst_addr);
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
