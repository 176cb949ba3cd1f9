//! What differs between IPv4 and IPv6, behind one trait, so that service lookup,
//! backend choice, conntrack, NAT and the per-packet path are written once.
//!
//! [`Family`] names a family's address type, its maps (`wg_*4_*` or `wg_*6_*`), where
//! its header keeps the addresses and checksums, its parser ([`crate::packet`],
//! [`crate::packet6`]) and how a `bpf_fib_lookup` holds its addresses. [`V4`] and
//! [`V6`] are the two implementations; everything else is generic over them.

use aya_ebpf::{
    bindings::bpf_fib_lookup,
    maps::{Array, HashMap, LruHashMap},
    programs::TcContext,
};
use waggle_ebpf_common::{
    conntrack::{CtEntry, CtKey},
    drop::DropReason,
    lb::{Backend, NodeConfig, ServiceKey, ServiceValue},
};

use crate::{
    maps::{
        BACKENDS_V4, BACKENDS_V6, CONNTRACK_V4, CONNTRACK_V6, NODE_ADDRS_V4, NODE_ADDRS_V6,
        SERVICES_V4, SERVICES_V6,
    },
    packet::{self, Flow},
    packet6,
};

/// One address family: its address type, maps and header layout.
pub trait Family: Sized + 'static {
    /// An address in network byte order, as the maps store it.
    type Addr: Copy + PartialEq;
    /// The all-zero address (NodePort entries are stored under it).
    const ANY: Self::Addr;
    /// `AF_INET` or `AF_INET6`, for `bpf_fib_lookup`.
    const AF: u8;
    /// Offsets of the source and destination address in the IP header.
    const SRC_OFF: usize;
    const DST_OFF: usize;
    /// Offset of the IP header checksum (IPv6 has none).
    const IP_CSUM_OFF: Option<usize>;
    /// Whether the ICMP checksum covers a pseudo-header with the addresses (ICMPv6).
    const ICMP_PSEUDO_HDR: bool;

    fn services() -> &'static HashMap<ServiceKey<Self::Addr>, ServiceValue>;
    /// Backends by id; a slot with `protocol == 0` is empty.
    fn backends() -> &'static Array<Backend<Self::Addr>>;
    fn conntrack() -> &'static LruHashMap<CtKey<Self::Addr>, CtEntry<Self::Addr>>;
    fn node_addrs() -> &'static HashMap<Self::Addr, u8>;
    /// The node's SNAT address from the node configuration, if set.
    fn node_address(config: &NodeConfig) -> Option<Self::Addr>;
    /// The address as an affinity key's 16 client bytes (IPv4 in the first four).
    fn affinity_bytes(address: &Self::Addr) -> [u8; 16];
    /// The address folded into 32 bits (the Maglev hash input).
    fn fold(address: &Self::Addr) -> u32;
    /// Parses the frame's IP header and what follows into `flow`; `false` for what
    /// the service path leaves alone. Errors: a malformed header.
    fn parse(ctx: &TcContext, flow: &mut Flow<Self::Addr>) -> Result<bool, DropReason>;
    /// Parses the IP header at `offset` that an ICMP error quotes (TCP/UDP only).
    fn parse_quoted(
        ctx: &TcContext,
        offset: usize,
        flow: &mut Flow<Self::Addr>,
    ) -> Result<bool, DropReason>;
    /// Writes source and destination into a FIB lookup's address fields.
    fn set_fib_addrs(params: &mut bpf_fib_lookup, src: &Self::Addr, dst: &Self::Addr);
}

/// IPv4: `wg_svc4_v1`, `wg_be4_v2`, `wg_ct4_v2`, `wg_naddr4_v1`.
pub struct V4;
/// IPv6: `wg_svc6_v1`, `wg_be6_v2`, `wg_ct6_v1`, `wg_naddr6_v1`.
pub struct V6;

impl Family for V4 {
    type Addr = u32;
    const ANY: u32 = 0;
    const AF: u8 = 2;
    const SRC_OFF: usize = 12;
    const DST_OFF: usize = 16;
    const IP_CSUM_OFF: Option<usize> = Some(10);
    const ICMP_PSEUDO_HDR: bool = false;

    #[inline(always)]
    fn services() -> &'static HashMap<ServiceKey<u32>, ServiceValue> {
        &SERVICES_V4
    }
    #[inline(always)]
    fn backends() -> &'static Array<Backend<u32>> {
        &BACKENDS_V4
    }
    #[inline(always)]
    fn conntrack() -> &'static LruHashMap<CtKey<u32>, CtEntry<u32>> {
        &CONNTRACK_V4
    }
    #[inline(always)]
    fn node_addrs() -> &'static HashMap<u32, u8> {
        &NODE_ADDRS_V4
    }
    #[inline(always)]
    fn node_address(config: &NodeConfig) -> Option<u32> {
        (config.node_address_v4 != 0).then_some(config.node_address_v4)
    }
    #[inline(always)]
    fn affinity_bytes(address: &u32) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[..4].copy_from_slice(&address.to_ne_bytes());
        bytes
    }
    #[inline(always)]
    fn fold(address: &u32) -> u32 {
        *address
    }
    #[inline(always)]
    fn parse(ctx: &TcContext, flow: &mut Flow<u32>) -> Result<bool, DropReason> {
        packet::parse(ctx, flow)
    }
    #[inline(always)]
    fn parse_quoted(
        ctx: &TcContext,
        offset: usize,
        flow: &mut Flow<u32>,
    ) -> Result<bool, DropReason> {
        packet::parse_quoted(ctx, offset, flow)
    }
    #[inline(always)]
    fn set_fib_addrs(params: &mut bpf_fib_lookup, src: &u32, dst: &u32) {
        params.__bindgen_anon_3.ipv4_src = *src;
        params.__bindgen_anon_4.ipv4_dst = *dst;
    }
}

impl Family for V6 {
    type Addr = [u8; 16];
    const ANY: [u8; 16] = [0; 16];
    const AF: u8 = 10;
    const SRC_OFF: usize = 8;
    const DST_OFF: usize = 24;
    const IP_CSUM_OFF: Option<usize> = None;
    const ICMP_PSEUDO_HDR: bool = true;

    #[inline(always)]
    fn services() -> &'static HashMap<ServiceKey<[u8; 16]>, ServiceValue> {
        &SERVICES_V6
    }
    #[inline(always)]
    fn backends() -> &'static Array<Backend<[u8; 16]>> {
        &BACKENDS_V6
    }
    #[inline(always)]
    fn conntrack() -> &'static LruHashMap<CtKey<[u8; 16]>, CtEntry<[u8; 16]>> {
        &CONNTRACK_V6
    }
    #[inline(always)]
    fn node_addrs() -> &'static HashMap<[u8; 16], u8> {
        &NODE_ADDRS_V6
    }
    #[inline(always)]
    fn node_address(config: &NodeConfig) -> Option<[u8; 16]> {
        (config.node_address_v6 != [0; 16]).then_some(config.node_address_v6)
    }
    #[inline(always)]
    fn affinity_bytes(address: &[u8; 16]) -> [u8; 16] {
        *address
    }
    #[inline(always)]
    fn fold(address: &[u8; 16]) -> u32 {
        let a = address;
        let word = |i: usize| u32::from_ne_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
        word(0) ^ word(4).rotate_left(8) ^ word(8).rotate_left(16) ^ word(12).rotate_left(24)
    }
    #[inline(always)]
    fn parse(ctx: &TcContext, flow: &mut Flow<[u8; 16]>) -> Result<bool, DropReason> {
        packet6::parse(ctx, flow)
    }
    #[inline(always)]
    fn parse_quoted(
        ctx: &TcContext,
        offset: usize,
        flow: &mut Flow<[u8; 16]>,
    ) -> Result<bool, DropReason> {
        packet6::parse_quoted(ctx, offset, flow)
    }
    #[inline(always)]
    fn set_fib_addrs(params: &mut bpf_fib_lookup, src: &[u8; 16], dst: &[u8; 16]) {
        // SAFETY: 16 bytes into `[u32; 4]` fields of the same size.
        unsafe {
            params.__bindgen_anon_3.ipv6_src = core::mem::transmute::<[u8; 16], [u32; 4]>(*src);
            params.__bindgen_anon_4.ipv6_dst = core::mem::transmute::<[u8; 16], [u32; 4]>(*dst);
        }
    }
}
