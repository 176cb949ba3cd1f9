//! Crafted Ethernet + IPv4/IPv6 packets for BPF_PROG_TEST_RUN, and checks of what a
//! program wrote: addresses, ports, and every checksum (the IPv4 header checksum, the
//! TCP checksum over its pseudo-header, the ICMP/ICMPv6 checksum, and those of the
//! packet an ICMP error quotes).

use std::net::IpAddr;

use anyhow::{Result, bail, ensure};
use waggle_ebpf_common::lb::PROTO_TCP;

/// Offset of the IP header in a frame.
pub const L3: usize = 14;
const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;

/// An Ethernet frame carrying an IP packet `src → dst` with `payload` as protocol
/// `next` (IPv4 with DF and a valid header checksum).
pub fn ip_packet(src: IpAddr, dst: IpAddr, next: u8, payload: &[u8]) -> Result<Vec<u8>> {
    let mut p = vec![0u8; L3];
    p[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
            ip[6] = 0x40;
            ip[8] = 64;
            ip[9] = next;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let sum = checksum(&[&ip]);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            p.extend_from_slice(&ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
            let mut ip = [0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
            ip[6] = next;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&d.octets());
            p.extend_from_slice(&ip);
        }
        _ => bail!("mixed families: {src} → {dst}"),
    }
    p.extend_from_slice(payload);
    Ok(p)
}

/// An Ethernet + IP + TCP packet with valid checksums.
pub fn tcp_packet(src: (IpAddr, u16), dst: (IpAddr, u16), flags: u8) -> Result<Vec<u8>> {
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&src.1.to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.1.to_be_bytes());
    tcp[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    let mut p = ip_packet(src.0, dst.0, PROTO_TCP, &tcp)?;
    let l4 = L3 + header_len(&p[L3..]);
    let sum = l4_checksum(&p[L3..], l4 - L3, 16, PROTO_TCP);
    p[l4 + 16..l4 + 18].copy_from_slice(&sum.to_be_bytes());
    Ok(p)
}

/// An ICMP "port unreachable" (ICMPv6 for IPv6 addresses) from `src` to `dst`,
/// quoting `quoted` (an IP packet without its Ethernet header), with a valid checksum.
pub fn icmp_unreachable(src: IpAddr, dst: IpAddr, quoted: &[u8]) -> Result<Vec<u8>> {
    let (next, kind, code) = if src.is_ipv4() {
        (PROTO_ICMP, 3, 3)
    } else {
        (PROTO_ICMPV6, 1, 4)
    };
    let mut icmp = vec![kind, code, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(quoted);
    let mut p = ip_packet(src, dst, next, &icmp)?;
    let l4 = L3 + header_len(&p[L3..]);
    let sum = icmp_checksum(&p[L3..], l4 - L3);
    p[l4 + 2..l4 + 4].copy_from_slice(&sum.to_be_bytes());
    Ok(p)
}

/// Internet checksum over the concatenation of `parts`.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for chunk in part.chunks(2) {
            sum += u32::from(u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn is_v4(ip: &[u8]) -> bool {
    ip[0] >> 4 == 4
}

/// Length of the IP header at the start of `ip` (no IPv6 extension headers).
fn header_len(ip: &[u8]) -> usize {
    if is_v4(ip) {
        usize::from(ip[0] & 0x0f) * 4
    } else {
        40
    }
}

fn addr(ip: &[u8], source: bool) -> IpAddr {
    let (v4, v6) = if source { (12, 8) } else { (16, 24) };
    if is_v4(ip) {
        let o: [u8; 4] = ip[v4..v4 + 4].try_into().expect("4 bytes");
        IpAddr::from(o)
    } else {
        let o: [u8; 16] = ip[v6..v6 + 16].try_into().expect("16 bytes");
        IpAddr::from(o)
    }
}

/// The pseudo-header of the IP packet `ip` for an upper-layer length `len`.
fn pseudo_header(ip: &[u8], next: u8, len: usize) -> Vec<u8> {
    let mut pseudo = Vec::new();
    if is_v4(ip) {
        pseudo.extend_from_slice(&ip[12..20]);
        pseudo.extend_from_slice(&[0, next]);
        pseudo.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        pseudo.extend_from_slice(&ip[8..40]);
        pseudo.extend_from_slice(&(len as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, next]);
    }
    pseudo
}

/// The checksum of the L4 segment at `l4` of IP packet `ip` (checksum field at
/// `field`, taken as 0), over the pseudo-header of `ip`'s protocol.
fn l4_checksum(ip: &[u8], l4: usize, field: usize, next: u8) -> u16 {
    let mut segment = ip[l4..].to_vec();
    segment[field] = 0;
    segment[field + 1] = 0;
    checksum(&[&pseudo_header(ip, next, segment.len()), &segment])
}

/// The ICMP (plain) or ICMPv6 (pseudo-header) checksum of the message at `l4`.
fn icmp_checksum(ip: &[u8], l4: usize) -> u16 {
    if is_v4(ip) {
        let mut message = ip[l4..].to_vec();
        message[2] = 0;
        message[3] = 0;
        checksum(&[&message])
    } else {
        l4_checksum(ip, l4, 2, PROTO_ICMPV6)
    }
}

/// What a rewritten TCP packet carries.
#[derive(Debug, PartialEq)]
pub struct Seen {
    pub src: (IpAddr, u16),
    pub dst: (IpAddr, u16),
}

/// Parses a TCP frame a program wrote, checking its checksums.
pub fn inspect(frame: &[u8]) -> Result<Seen> {
    inspect_ip(&frame[L3..])
}

/// [`inspect`] for an IP packet (no Ethernet header; also a quoted one), whose TCP
/// header follows `skip` bytes of extension headers.
pub fn inspect_ip_after(ip: &[u8], skip: usize) -> Result<Seen> {
    let l4 = header_len(ip) + skip;
    if is_v4(ip) {
        ensure!(checksum(&[&ip[..l4]]) == 0, "IPv4 header checksum is wrong");
    }
    let stored = u16::from_be_bytes([ip[l4 + 16], ip[l4 + 17]]);
    ensure!(
        stored == l4_checksum(ip, l4, 16, PROTO_TCP),
        "TCP checksum is wrong"
    );
    let port = |at: usize| u16::from_be_bytes([ip[at], ip[at + 1]]);
    Ok(Seen {
        src: (addr(ip, true), port(l4)),
        dst: (addr(ip, false), port(l4 + 2)),
    })
}

/// [`inspect_ip_after`] without extension headers.
pub fn inspect_ip(ip: &[u8]) -> Result<Seen> {
    inspect_ip_after(ip, 0)
}

/// Parses an ICMP error frame a program wrote, checking the outer IPv4 header
/// checksum, the ICMP checksum and the quoted packet's: outer source, destination and
/// the quoted TCP packet.
pub fn inspect_icmp(frame: &[u8]) -> Result<(IpAddr, IpAddr, Seen)> {
    let ip = &frame[L3..];
    let l4 = header_len(ip);
    if is_v4(ip) {
        ensure!(
            checksum(&[&ip[..l4]]) == 0,
            "outer IPv4 header checksum is wrong"
        );
    }
    let stored = u16::from_be_bytes([ip[l4 + 2], ip[l4 + 3]]);
    ensure!(stored == icmp_checksum(ip, l4), "ICMP checksum is wrong");
    let quoted = inspect_ip(&ip[l4 + 8..])?;
    Ok((addr(ip, true), addr(ip, false), quoted))
}
