//! Header parsing for the tc programs: Ethernet, IPv4, TCP and UDP.
//!
//! Every read goes through `bpf_skb_load_bytes` (`TcContext::load`), which checks the
//! offset against the packet length in the kernel, so no direct-packet-access bounds
//! proofs are needed for the verifier and non-linear skbs work too. Addresses and ports
//! are kept exactly as they are on the wire (network byte order), the convention of
//! every map in `waggle_ebpf_common`.

use aya_ebpf::programs::TcContext;
use waggle_ebpf_common::{
    drop::{DROP_INVALID_PACKET, DropReason},
    lb::{PROTO_TCP, PROTO_UDP},
};

pub const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;

/// TCP flag bits (byte 13 of the TCP header).
pub const TCP_FIN: u8 = 0x01;
pub const TCP_RST: u8 = 0x04;

/// An IPv4 TCP or UDP packet: where its headers are and its 5-tuple.
#[derive(Clone, Copy)]
pub struct Ipv4Flow {
    /// Offset of the IPv4 header.
    pub l3: usize,
    /// Offset of the TCP/UDP header.
    pub l4: usize,
    pub protocol: u8,
    /// TCP flags (0 for UDP).
    pub tcp_flags: u8,
    pub src_addr: u32,
    pub dst_addr: u32,
    pub src_port: u16,
    pub dst_port: u16,
}

impl Ipv4Flow {
    /// Offset of the L4 checksum field.
    #[inline(always)]
    pub fn l4_csum(&self) -> usize {
        if self.protocol == PROTO_TCP { self.l4 + 16 } else { self.l4 + 6 }
    }

    #[inline(always)]
    pub fn closes(&self) -> bool {
        self.tcp_flags & (TCP_FIN | TCP_RST) != 0
    }
}

/// What the parser found.
pub enum Parsed {
    /// An IPv4 TCP/UDP packet carrying ports (first or only fragment).
    Ipv4(Ipv4Flow),
    /// Anything the per-packet service path does not translate (IPv6 and other
    /// ethertypes, other protocols, non-first fragments): passed on unchanged.
    Other,
}

/// Parses the packet at the start of an Ethernet frame.
/// Errors: a truncated or malformed IPv4 header (`DROP_INVALID_PACKET`).
#[inline(always)]
pub fn parse(ctx: &TcContext) -> Result<Parsed, DropReason> {
    let ethertype = u16::from_be(ctx.load::<u16>(12).map_err(|_| DROP_INVALID_PACKET)?);
    if ethertype != ETH_P_IP {
        return Ok(Parsed::Other);
    }
    let l3 = ETH_HLEN;
    let version_ihl: u8 = ctx.load(l3).map_err(|_| DROP_INVALID_PACKET)?;
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if version_ihl >> 4 != 4 || ihl < 20 {
        return Err(DROP_INVALID_PACKET);
    }
    let protocol: u8 = ctx.load(l3 + 9).map_err(|_| DROP_INVALID_PACKET)?;
    if protocol != PROTO_TCP && protocol != PROTO_UDP {
        return Ok(Parsed::Other);
    }
    // A non-first fragment has no L4 header: it cannot be matched to a service.
    let frag = u16::from_be(ctx.load::<u16>(l3 + 6).map_err(|_| DROP_INVALID_PACKET)?);
    if frag & 0x1fff != 0 {
        return Ok(Parsed::Other);
    }
    let l4 = l3 + ihl;
    let tcp_flags = if protocol == PROTO_TCP {
        ctx.load::<u8>(l4 + 13).map_err(|_| DROP_INVALID_PACKET)?
    } else {
        0
    };
    Ok(Parsed::Ipv4(Ipv4Flow {
        l3,
        l4,
        protocol,
        tcp_flags,
        src_addr: ctx.load(l3 + 12).map_err(|_| DROP_INVALID_PACKET)?,
        dst_addr: ctx.load(l3 + 16).map_err(|_| DROP_INVALID_PACKET)?,
        src_port: ctx.load(l4).map_err(|_| DROP_INVALID_PACKET)?,
        dst_port: ctx.load(l4 + 2).map_err(|_| DROP_INVALID_PACKET)?,
    }))
}

