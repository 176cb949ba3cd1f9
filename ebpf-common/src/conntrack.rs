//! Connection tracking for the per-packet path (NodePort/externalIPs from outside the
//! node, and pods without socket LB). An LRU hash, so a full table evicts the oldest.
//!
//! Key and entry are generic over the address (`u32` for IPv4, `[u8; 16]` for IPv6),
//! so the kernel's conntrack code is written once; the aliases name the two layouts.

/// A conntrack key: the tuple as seen on the wire in the tracked direction.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CtKey<A> {
    /// Network order.
    pub src_addr: A,
    pub dst_addr: A,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    /// `CT_DIR_*`
    pub direction: u8,
    pub _pad: [u8; 2],
}

/// IPv4 conntrack key (16 bytes).
pub type CtKeyV4 = CtKey<u32>;
/// IPv6 conntrack key (40 bytes).
pub type CtKeyV6 = CtKey<[u8; 16]>;

pub const CT_DIR_ORIGINAL: u8 = 0;
pub const CT_DIR_REPLY: u8 = 1;

/// `CtEntry.flags`
pub mod ct_flags {
    /// Source was rewritten: to the node address (backend on another node), or with
    /// `HAIRPIN` to the service address.
    pub const SNAT: u16 = 1 << 0;
    pub const SEEN_REPLY: u16 = 1 << 1;
    pub const CLOSING: u16 = 1 << 2;
    /// The client is its own backend (a pod reaching a service that chose it): the
    /// source was rewritten to the service address the client used (`orig_dst_addr`),
    /// so the reply comes back through the same translation.
    pub const HAIRPIN: u16 = 1 << 3;
}

/// A conntrack entry; both directions of a connection hold the same value.
///
/// `_v2` layout of the IPv4 map: 28 bytes (`_v1` had 4 bytes of trailing padding).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CtEntry<A> {
    pub backend_id: u32,
    pub rev_nat_index: u16,
    pub flags: u16,
    /// Original client address/port before SNAT (network order), for reverse SNAT.
    pub orig_src_addr: A,
    pub orig_src_port: u16,
    /// Port used after SNAT (network order), 0 when no SNAT.
    pub nat_port: u16,
    /// Original destination (service) address/port, for reverse DNAT.
    pub orig_dst_addr: A,
    pub orig_dst_port: u16,
    pub _pad: u16,
    /// `bpf_ktime_get_boot_ns() / 1e9`.
    pub last_seen_secs: u32,
}

/// IPv4 conntrack entry (28 bytes).
pub type CtEntryV4 = CtEntry<u32>;
/// IPv6 conntrack entry (52 bytes).
pub type CtEntryV6 = CtEntry<[u8; 16]>;

const _: () = {
    assert!(core::mem::size_of::<CtKeyV4>() == 16);
    assert!(core::mem::size_of::<CtKeyV6>() == 40);
    assert!(core::mem::size_of::<CtEntryV4>() == 28);
    assert!(core::mem::size_of::<CtEntryV6>() == 52);
};
