//! Header parsing for the tc programs: the parsed [`Flow`] both families share, and
//! the IPv4 parser (Ethernet, IPv4, TCP, UDP, and ICMP errors).
//!
//! Every read goes through `bpf_skb_load_bytes` (`TcContext::load`), which checks the
//! offset against the packet length in the kernel, so no direct-packet-access bounds
//! proofs are needed for the verifier and non-linear skbs work too. Addresses and ports
//! are kept exactly as they are on the wire (network byte order), the convention of
//! every map in `waggle_ebpf_common`. The IPv6 parser is in [`crate::packet6`].

use aya_ebpf::programs::TcContext;
use waggle_ebpf_common::{
    drop::{DROP_INVALID_PACKET, DropReason},
    lb::{PROTO_TCP, PROTO_UDP},
};

pub const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const PROTO_ICMP: u8 = 1;
/// ICMP error types that quote a packet: destination unreachable (with
/// fragmentation needed), time exceeded, parameter problem.
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_PARAMETER_PROB: u8 = 12;

/// TCP flag bits (byte 13 of the TCP header).
pub const TCP_FIN: u8 = 0x01;
pub const TCP_RST: u8 = 0x04;

/// An IP packet the service path handles: a TCP or UDP packet (first or only
/// fragment), or an ICMP error (`protocol` is then the family's ICMP number, the
/// ports are 0 and the quoted packet is parsed separately). `A` is the address type.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Flow<A> {
    pub src_addr: A,
    pub dst_addr: A,
    /// Offset of the IP header.
    pub l3: usize,
    /// Offset of the TCP/UDP/ICMP header.
    pub l4: usize,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    /// TCP flags (0 otherwise).
    pub tcp_flags: u8,
}

impl<A> Flow<A> {
    /// Offset of the L4 checksum when it covers the addresses (a pseudo-header): TCP,
    /// UDP and ICMPv6 (`icmp_pseudo_hdr`); `None` for ICMP, whose checksum does not.
    #[inline(always)]
    pub fn pseudo_csum(&self, icmp_pseudo_hdr: bool) -> Option<usize> {
        match self.protocol {
            PROTO_TCP => Some(self.l4 + 16),
            PROTO_UDP => Some(self.l4 + 6),
            _ if icmp_pseudo_hdr => Some(self.l4 + 2),
            _ => None,
        }
    }

    #[inline(always)]
    pub fn closes(&self) -> bool {
        self.tcp_flags & (TCP_FIN | TCP_RST) != 0
    }

    /// Whether this is a TCP or UDP packet (not an ICMP error).
    #[inline(always)]
    pub fn has_ports(&self) -> bool {
        self.protocol == PROTO_TCP || self.protocol == PROTO_UDP
    }
}

/// Records the IP layer in `flow`: the header offsets `(l3, l4)`, the upper-layer
/// protocol and the addresses, read at `l3` plus the offsets `addr_offsets` (source,
/// destination).
#[inline(always)]
pub fn load_ip<A>(
    ctx: &TcContext,
    flow: &mut Flow<A>,
    (l3, l4): (usize, usize),
    protocol: u8,
    (src, dst): (usize, usize),
) -> Result<(), DropReason> {
    flow.l3 = l3;
    flow.l4 = l4;
    flow.protocol = protocol;
    flow.src_addr = ctx.load(l3 + src).map_err(|_| DROP_INVALID_PACKET)?;
    flow.dst_addr = ctx.load(l3 + dst).map_err(|_| DROP_INVALID_PACKET)?;
    Ok(())
}

/// Reads the ports (and TCP flags) of a TCP/UDP header at `l4` into `flow`.
#[inline(always)]
pub fn load_ports<A>(ctx: &TcContext, flow: &mut Flow<A>) -> Result<(), DropReason> {
    let invalid = |_| DROP_INVALID_PACKET;
    flow.tcp_flags = if flow.protocol == PROTO_TCP {
        ctx.load::<u8>(flow.l4 + 13).map_err(invalid)?
    } else {
        0
    };
    flow.src_port = ctx.load(flow.l4).map_err(invalid)?;
    flow.dst_port = ctx.load(flow.l4 + 2).map_err(invalid)?;
    Ok(())
}

/// Parses an IPv4 packet at the start of an Ethernet frame into `flow`: `false` for
/// anything the service path leaves alone (other ethertypes, other protocols, ICMP
/// other than errors, non-first fragments).
/// Errors: a truncated or malformed IPv4 header (`DROP_INVALID_PACKET`).
#[inline(always)]
pub fn parse(ctx: &TcContext, flow: &mut Flow<u32>) -> Result<bool, DropReason> {
    let ethertype = u16::from_be(ctx.load::<u16>(12).map_err(|_| DROP_INVALID_PACKET)?);
    if ethertype != ETH_P_IP {
        return Ok(false);
    }
    if !parse_ipv4(ctx, ETH_HLEN, flow)? {
        return Ok(false);
    }
    if flow.protocol == PROTO_ICMP {
        let kind: u8 = ctx.load(flow.l4).map_err(|_| DROP_INVALID_PACKET)?;
        flow.src_port = 0;
        flow.dst_port = 0;
        flow.tcp_flags = 0;
        return Ok(matches!(
            kind,
            ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETER_PROB
        ));
    }
    load_ports(ctx, flow)?;
    Ok(true)
}

/// Parses the IPv4 header an ICMP error quotes, at `offset`, with its ports: `false`
/// unless it is TCP or UDP.
#[inline(always)]
pub fn parse_quoted(
    ctx: &TcContext,
    offset: usize,
    flow: &mut Flow<u32>,
) -> Result<bool, DropReason> {
    if !parse_ipv4(ctx, offset, flow)? || flow.protocol == PROTO_ICMP {
        return Ok(false);
    }
    load_ports(ctx, flow)?;
    Ok(true)
}

/// The IPv4 header at `l3`: addresses, protocol (TCP, UDP or ICMP, else `false`) and
/// the L4 offset; `false` for a non-first fragment, which has no L4 header.
#[inline(always)]
fn parse_ipv4(ctx: &TcContext, l3: usize, flow: &mut Flow<u32>) -> Result<bool, DropReason> {
    let invalid = |_| DROP_INVALID_PACKET;
    let version_ihl: u8 = ctx.load(l3).map_err(invalid)?;
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if version_ihl >> 4 != 4 || ihl < 20 {
        return Err(DROP_INVALID_PACKET);
    }
    let protocol: u8 = ctx.load(l3 + 9).map_err(invalid)?;
    if protocol != PROTO_TCP && protocol != PROTO_UDP && protocol != PROTO_ICMP {
        return Ok(false);
    }
    let frag = u16::from_be(ctx.load::<u16>(l3 + 6).map_err(invalid)?);
    if frag & 0x1fff != 0 {
        return Ok(false);
    }
    load_ip(ctx, flow, (l3, l3 + ihl), protocol, (12, 16))?;
    Ok(true)
}
