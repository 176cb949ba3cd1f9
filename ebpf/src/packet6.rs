//! IPv6 header parsing for the tc programs: Ethernet, IPv6 (with up to
//! [`MAX_EXT_HEADERS`] extension headers), TCP and UDP.
//!
//! As in [`crate::packet`], every read goes through `bpf_skb_load_bytes`, and addresses
//! and ports stay in network byte order. IPv6 has no header checksum; the TCP/UDP
//! checksum's pseudo-header covers both addresses (see [`crate::nat6`]).

use aya_ebpf::programs::TcContext;
use waggle_ebpf_common::{
    drop::{DROP_INVALID_PACKET, DropReason},
    lb::{PROTO_TCP, PROTO_UDP},
};

use crate::packet::{ETH_HLEN, TCP_FIN, TCP_RST};

const ETH_P_IPV6: u16 = 0x86dd;
const IPV6_HLEN: usize = 40;
/// Offsets of the addresses in the IPv6 header.
pub const IPV6_SRC: usize = 8;
pub const IPV6_DST: usize = 24;

/// Extension headers skipped before the L4 header (hop-by-hop, routing, fragment,
/// destination options); a packet with more passes untranslated.
const MAX_EXT_HEADERS: usize = 4;
const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_DEST: u8 = 60;

/// An IPv6 TCP or UDP packet: where its L4 header is and its 5-tuple.
#[derive(Clone, Copy)]
pub struct Ipv6Flow {
    /// Offset of the TCP/UDP header.
    pub l4: usize,
    pub protocol: u8,
    /// TCP flags (0 for UDP).
    pub tcp_flags: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
}

impl Ipv6Flow {
    /// Offset of the IPv6 header.
    pub const L3: usize = ETH_HLEN;

    /// Offset of the L4 checksum field.
    #[inline(always)]
    pub fn l4_csum(&self) -> usize {
        if self.protocol == PROTO_TCP {
            self.l4 + 16
        } else {
            self.l4 + 6
        }
    }

    #[inline(always)]
    pub fn closes(&self) -> bool {
        self.tcp_flags & (TCP_FIN | TCP_RST) != 0
    }
}

/// Whether the frame carries IPv6 (its ethertype; a frame too short to have one is not).
#[inline(always)]
pub fn is_ipv6(ctx: &TcContext) -> bool {
    matches!(ctx.load::<u16>(12), Ok(ethertype) if u16::from_be(ethertype) == ETH_P_IPV6)
}

/// Parses an IPv6 packet at the start of an Ethernet frame into `flow`: `false` for
/// anything the service path leaves alone (other ethertypes, ICMPv6 and so neighbour
/// discovery, other protocols, non-first fragments, too many extension headers).
/// Errors: a truncated or malformed IPv6 header (`DROP_INVALID_PACKET`).
#[inline(always)]
pub fn parse(ctx: &TcContext, flow: &mut Ipv6Flow) -> Result<bool, DropReason> {
    let invalid = |_| DROP_INVALID_PACKET;
    if !is_ipv6(ctx) {
        return Ok(false);
    }
    let l3 = Ipv6Flow::L3;
    let version: u8 = ctx.load(l3).map_err(invalid)?;
    if version >> 4 != 6 {
        return Err(DROP_INVALID_PACKET);
    }
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
                    return Ok(false);
                }
                next = ctx.load(offset).map_err(invalid)?;
                offset += 8;
            }
            _ => break,
        }
        skipped += 1;
    }
    if next != PROTO_TCP && next != PROTO_UDP {
        return Ok(false);
    }
    flow.l4 = offset;
    flow.protocol = next;
    flow.tcp_flags = if next == PROTO_TCP {
        ctx.load::<u8>(offset + 13).map_err(invalid)?
    } else {
        0
    };
    flow.src_port = ctx.load(offset).map_err(invalid)?;
    flow.dst_port = ctx.load(offset + 2).map_err(invalid)?;
    flow.src_addr = ctx.load(l3 + IPV6_SRC).map_err(invalid)?;
    flow.dst_addr = ctx.load(l3 + IPV6_DST).map_err(invalid)?;
    Ok(true)
}
