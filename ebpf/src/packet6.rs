//! IPv6 header parsing for the tc programs: Ethernet, IPv6 (with up to
//! [`MAX_EXT_HEADERS`] extension headers), TCP, UDP and ICMPv6 errors, into the
//! [`Flow`] of [`crate::packet`].
//!
//! As there, every read goes through `bpf_skb_load_bytes`, and addresses and ports
//! stay in network byte order. IPv6 has no header checksum; the TCP/UDP/ICMPv6
//! checksum's pseudo-header covers both addresses (see [`crate::nat`]).

use aya_ebpf::programs::TcContext;
use waggle_ebpf_common::{
    drop::{DROP_INVALID_PACKET, DropReason},
    lb::{PROTO_TCP, PROTO_UDP},
};

use crate::packet::{ETH_HLEN, Flow, load_ip, load_ports};

const ETH_P_IPV6: u16 = 0x86dd;
const IPV6_HLEN: usize = 40;
const PROTO_ICMPV6: u8 = 58;
/// Offsets of the source and destination address in the IPv6 header.
const ADDRS: (usize, usize) = (8, 24);
/// ICMPv6 error types: destination unreachable, packet too big, time exceeded,
/// parameter problem.
const ICMPV6_ERRORS: [u8; 4] = [1, 2, 3, 4];

/// Extension headers skipped before the L4 header (hop-by-hop, routing, fragment,
/// destination options); a packet with more passes untranslated.
const MAX_EXT_HEADERS: usize = 4;
const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_DEST: u8 = 60;

/// Whether the frame carries IPv6 (its ethertype; a frame too short to have one is not).
#[inline(always)]
pub fn is_ipv6(ctx: &TcContext) -> bool {
    matches!(ctx.load::<u16>(12), Ok(ethertype) if u16::from_be(ethertype) == ETH_P_IPV6)
}

/// Parses an IPv6 packet at the start of an Ethernet frame into `flow`: `false` for
/// anything the service path leaves alone (other ethertypes, ICMPv6 other than
/// errors and so neighbour discovery, other protocols, non-first fragments, too many
/// extension headers).
/// Errors: a truncated or malformed IPv6 header (`DROP_INVALID_PACKET`).
#[inline(always)]
pub fn parse(ctx: &TcContext, flow: &mut Flow<[u8; 16]>) -> Result<bool, DropReason> {
    if !is_ipv6(ctx) {
        return Ok(false);
    }
    let l3 = ETH_HLEN;
    let version: u8 = ctx.load(l3).map_err(|_| DROP_INVALID_PACKET)?;
    if version >> 4 != 6 {
        return Err(DROP_INVALID_PACKET);
    }
    let Some((next, l4)) = skip_ext_headers(ctx, l3)? else {
        return Ok(false);
    };
    load_ip(ctx, flow, (l3, l4), next, ADDRS)?;
    if next == PROTO_ICMPV6 {
        let kind: u8 = ctx.load(l4).map_err(|_| DROP_INVALID_PACKET)?;
        flow.src_port = 0;
        flow.dst_port = 0;
        flow.tcp_flags = 0;
        return Ok(ICMPV6_ERRORS.contains(&kind));
    }
    if next != PROTO_TCP && next != PROTO_UDP {
        return Ok(false);
    }
    load_ports(ctx, flow)?;
    Ok(true)
}

/// Parses the IPv6 header an ICMPv6 error quotes, at `offset` (TCP or UDP directly
/// after it, else `false`).
#[inline(always)]
pub fn parse_quoted(
    ctx: &TcContext,
    offset: usize,
    flow: &mut Flow<[u8; 16]>,
) -> Result<bool, DropReason> {
    let invalid = |_| DROP_INVALID_PACKET;
    let next: u8 = ctx.load(offset + 6).map_err(invalid)?;
    if next != PROTO_TCP && next != PROTO_UDP {
        return Ok(false);
    }
    load_ip(ctx, flow, (offset, offset + IPV6_HLEN), next, ADDRS)?;
    load_ports(ctx, flow)?;
    Ok(true)
}

/// Follows the extension headers after the IPv6 header at `l3`: the upper-layer
/// protocol and its offset, or `None` for a non-first fragment or too many headers.
#[inline(always)]
fn skip_ext_headers(ctx: &TcContext, l3: usize) -> Result<Option<(u8, usize)>, DropReason> {
    let invalid = |_| DROP_INVALID_PACKET;
    let mut next: u8 = ctx.load(l3 + 6).map_err(invalid)?;
    let mut offset = l3 + IPV6_HLEN;
    let mut skipped = 0;
    while skipped < MAX_EXT_HEADERS {
        match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                let header: [u8; 2] = ctx.load(offset).map_err(invalid)?;
                next = header[0];
                offset += (usize::from(header[1]) + 1) * 8;
            }
            NEXTHDR_FRAGMENT => {
                // A non-first fragment has no L4 header: it cannot be matched.
                let frag = u16::from_be(ctx.load::<u16>(offset + 2).map_err(invalid)?);
                if frag & 0xfff8 != 0 {
                    return Ok(None);
                }
                next = ctx.load(offset).map_err(invalid)?;
                offset += 8;
            }
            _ => return Ok(Some((next, offset))),
        }
        skipped += 1;
    }
    // Still an extension header after the last one we follow: not translated.
    if matches!(
        next,
        NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST | NEXTHDR_FRAGMENT
    ) {
        Ok(None)
    } else {
        Ok(Some((next, offset)))
    }
}
