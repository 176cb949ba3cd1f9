//! ICMP and ICMPv6 errors about translated connections.
//!
//! An error (destination unreachable, fragmentation needed / packet too big, time
//! exceeded, parameter problem) about a packet of a translated connection quotes the
//! packet as it was *after* translation: client (or SNAT address) → backend. The
//! client must see it about the packet it sent, so the quoted IP and TCP/UDP headers
//! are translated back: the backend becomes the service address and port the client
//! used, and a SNAT address and port the client's own. The outer header follows: its
//! destination becomes the client (when the connection was SNAT'ed) and a source that
//! is the backend itself becomes the service address, so the error also comes from
//! the address the client talked to. Errors from routers on the way keep their source.
//!
//! The connection is found by the quoted tuple's reply key (backend → client or SNAT
//! address), the key the conntrack reply entry is stored under.
//!
//! Checksums: the quoted IPv4 header checksum and the quoted TCP/UDP checksum are
//! fixed by hand ([`Delta`]; the kernel helpers only address the outer headers), and
//! so is the ICMP checksum, which covers the whole quoted packet. The outer address
//! changes go through [`nat::rewrite_addr`], which also fixes the ICMPv6 checksum's
//! pseudo-header. A quoted UDP checksum of 0 (IPv4: none) stays 0.

use aya_ebpf::programs::TcContext;
use waggle_ebpf_common::{
    conntrack::{CT_DIR_REPLY, ct_flags},
    drop::{DROP_NAT_REWRITE_FAILED, DropReason},
    lb::PROTO_UDP,
};

use super::{Deliver, work::Work};
use crate::{
    conntrack as ct,
    family::Family,
    lb,
    nat::{self, Delta, End},
};

/// Offset of the quoted packet in an ICMP/ICMPv6 error (after type, code, checksum
/// and 4 bytes of type-specific data).
const ICMP_QUOTE: usize = 8;

/// An ICMP error (`w.flow`) about a tracked connection: translate it back and send it
/// on. `None` when it quotes no TCP/UDP packet of a tracked connection.
#[inline(always)]
pub fn reverse_error<F: Family>(
    ctx: &TcContext,
    w: &mut Work<F::Addr>,
    now: u32,
    deliver: Deliver,
) -> Result<Option<i32>, DropReason> {
    if !F::parse_quoted(ctx, w.flow.l4 + ICMP_QUOTE, &mut w.quoted)? {
        return Ok(None);
    }
    let quoted = &w.quoted;
    ct::fill_key(
        &mut w.key,
        (&quoted.dst_addr, quoted.dst_port),
        (&quoted.src_addr, quoted.src_port),
        quoted.protocol,
        CT_DIR_REPLY,
    );
    let Some(entry) = ct::lookup::<F>(&w.key, now) else {
        return Ok(None);
    };
    // SAFETY: a live map value, copied out. An error does not refresh the entry.
    w.entry = unsafe { *entry };
    let snat = w.entry.flags & ct_flags::SNAT != 0;

    // The outer header.
    let from_backend = w.flow.src_addr == w.quoted.dst_addr;
    if snat {
        nat::rewrite_addr::<F>(ctx, &mut w.flow, End::Destination, &w.entry.orig_src_addr)?;
    }
    if from_backend {
        nat::rewrite_addr::<F>(ctx, &mut w.flow, End::Source, &w.entry.orig_dst_addr)?;
    }

    // The quoted packet, and the ICMP checksum over it.
    let mut icmp = Delta::default();
    let mut l4 = Delta::default();
    let mut l3 = Delta::default();
    let dst = nat::addr_diff(&w.quoted.dst_addr, &w.entry.orig_dst_addr)?;
    store(ctx, w.quoted.l3 + F::DST_OFF, &w.entry.orig_dst_addr)?;
    l3.add(dst);
    store(ctx, w.quoted.l4 + 2, &w.entry.orig_dst_port)?;
    l4.add16(w.quoted.dst_port, w.entry.orig_dst_port);
    if snat {
        let src = nat::addr_diff(&w.quoted.src_addr, &w.entry.orig_src_addr)?;
        store(ctx, w.quoted.l3 + F::SRC_OFF, &w.entry.orig_src_addr)?;
        l3.add(src);
        store(ctx, w.quoted.l4, &w.entry.orig_src_port)?;
        l4.add16(w.quoted.src_port, w.entry.orig_src_port);
    }
    // The ICMP sum sees the changed addresses and ports themselves ...
    icmp.add_all(l3);
    icmp.add_all(l4);
    // ... and each checksum field that changes with them.
    if let Some(offset) = F::IP_CSUM_OFF {
        fix_csum(ctx, w.quoted.l3 + offset, l3, false, &mut icmp)?;
    }
    // The quoted L4 checksum covers a pseudo-header with the addresses; an error may
    // quote too little of the packet to hold it (RFC 792 asks for 8 bytes only).
    l4.add_all(l3);
    let l4_csum = w.quoted.pseudo_csum(false).ok_or(DROP_NAT_REWRITE_FAILED)?;
    if ctx.load::<u16>(l4_csum).is_ok() {
        fix_csum(ctx, l4_csum, l4, w.quoted.protocol == PROTO_UDP, &mut icmp)?;
    }
    fix_csum(ctx, w.flow.l4 + 2, icmp, false, &mut Delta::default())?;

    lb::count_service(w.entry.rev_nat_index, 0, 1, u64::from(ctx.len()));
    Ok(Some(deliver.send::<F>(ctx, w)))
}

/// Stores `value` at `offset`.
#[inline(always)]
fn store<T>(ctx: &TcContext, offset: usize, value: &T) -> Result<(), DropReason> {
    ctx.store(offset, value, 0)
        .map_err(|_| DROP_NAT_REWRITE_FAILED)
}

/// Applies `delta` to the checksum at `offset` and adds the field's own change to
/// `outer` (the checksum that covers it). With `zero_means_none` (UDP) a checksum of
/// 0 stays 0 and a computed 0 is written as 0xffff.
#[inline(always)]
fn fix_csum(
    ctx: &TcContext,
    offset: usize,
    delta: Delta,
    zero_means_none: bool,
    outer: &mut Delta,
) -> Result<(), DropReason> {
    let old: u16 = ctx.load(offset).map_err(|_| DROP_NAT_REWRITE_FAILED)?;
    if zero_means_none && old == 0 {
        return Ok(());
    }
    let mut new = delta.apply(old);
    if zero_means_none && new == 0 {
        new = 0xffff;
    }
    store(ctx, offset, &new)?;
    outer.add16(old, new);
    Ok(())
}
