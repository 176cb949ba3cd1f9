//! Connection tracking for the per-packet path (NodePort/externalIPs from outside the
//! node, and pods without socket LB). An LRU hash, so a full table evicts the oldest.

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CtKeyV4 {
    /// Network order; the tuple as seen on the wire in the tracked direction.
    pub src_addr: u32,
    pub dst_addr: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    /// `CT_DIR_*`
    pub direction: u8,
    pub _pad: [u8; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CtKeyV6 {
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub direction: u8,
    pub _pad: [u8; 2],
}

pub const CT_DIR_ORIGINAL: u8 = 0;
pub const CT_DIR_REPLY: u8 = 1;

/// `CtEntry.flags`
pub mod ct_flags {
    /// Source was rewritten to the node address (backend on another node).
    pub const SNAT: u16 = 1 << 0;
    pub const SEEN_REPLY: u16 = 1 << 1;
    pub const CLOSING: u16 = 1 << 2;
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CtEntryV4 {
    pub backend_id: u32,
    pub rev_nat_index: u16,
    pub flags: u16,
    /// Original client address/port before SNAT (network order), for reverse SNAT.
    pub orig_src_addr: u32,
    pub orig_src_port: u16,
    /// Port used after SNAT (network order), 0 when no SNAT.
    pub nat_port: u16,
    /// Original destination (service) address/port, for reverse DNAT.
    pub orig_dst_addr: u32,
    pub orig_dst_port: u16,
    pub _pad: u16,
    /// `bpf_ktime_get_boot_ns() / 1e9`.
    pub last_seen_secs: u32,
    pub _pad2: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CtEntryV6 {
    pub backend_id: u32,
    pub rev_nat_index: u16,
    pub flags: u16,
    pub orig_src_addr: [u8; 16],
    pub orig_src_port: u16,
    pub nat_port: u16,
    pub orig_dst_addr: [u8; 16],
    pub orig_dst_port: u16,
    pub _pad: u16,
    pub last_seen_secs: u32,
}
