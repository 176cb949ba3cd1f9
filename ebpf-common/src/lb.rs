//! Service load-balancing maps: services → backend slots → backends.
//!
//! Layout: a service frontend (address, port, protocol, scope) is one entry of the
//! services hash map, whose value holds the backend count, flags and `slot_base`.
//! Its backends are the `count` consecutive entries of the slots array starting at
//! `slot_base`, each a backend id; backends live in their own array keyed by id, so
//! a backend shared by several service ports is stored once, and replacing one
//! backend rewrites one slot. (Cilium keeps the slots in the services hash map as
//! extra keys; an array makes a slot write a copy, lets userspace write slots
//! through a shared mapping, and leaves the hash map one entry per frontend.)
/// `ServiceKey*.protocol` values (IANA protocol numbers).
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_SCTP: u8 = 132;

/// `ServiceKey*.scope`: which backends a lookup may choose from.
/// The external scope holds the node-local backends of an `externalTrafficPolicy:
/// Local` (or `internalTrafficPolicy: Local`) service; the internal scope holds all.
pub const SCOPE_EXTERNAL: u8 = 0;
pub const SCOPE_INTERNAL: u8 = 1;

/// Key of the services maps: one frontend in one scope.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ServiceKey<A> {
    /// Service address, network byte order (as in `sockaddr_in.sin_addr` /
    /// `sockaddr_in6.sin6_addr`).
    pub address: A,
    /// Service port, network byte order. NodePort entries use the node port.
    pub port: u16,
    pub protocol: u8,
    pub scope: u8,
}

/// IPv4 services key (8 bytes, no padding).
pub type ServiceKeyV4 = ServiceKey<u32>;
/// IPv6 services key (20 bytes, no padding).
pub type ServiceKeyV6 = ServiceKey<[u8; 16]>;

/// `ServiceValue.flags`
pub mod service_flags {
    /// A ClusterIP (also set for the ClusterIP of NodePort/LoadBalancer services).
    pub const CLUSTER_IP: u16 = 1 << 0;
    /// A NodePort entry; `ServiceKey.address` is 0 (any node address) or loopback.
    pub const NODE_PORT: u16 = 1 << 1;
    pub const EXTERNAL_IP: u16 = 1 << 2;
    pub const LOAD_BALANCER: u16 = 1 << 3;
    /// `externalTrafficPolicy: Local`: external scope holds only node-local backends,
    /// the client address is preserved, and a node with none drops.
    pub const EXT_LOCAL: u16 = 1 << 4;
    /// `internalTrafficPolicy: Local`.
    pub const INT_LOCAL: u16 = 1 << 5;
    /// `sessionAffinity: ClientIP`; timeout in `ServiceValue.affinity_timeout`.
    pub const AFFINITY: u16 = 1 << 6;
    /// Per-packet path picks backends from the Maglev table of `rev_nat_index`.
    pub const MAGLEV: u16 = 1 << 7;
    /// Both scopes exist for this service (an EXT_LOCAL/INT_LOCAL service).
    pub const TWO_SCOPES: u16 = 1 << 8;
    /// Only terminating endpoints are programmed (used because no ready one exists).
    pub const TERMINATING_FALLBACK: u16 = 1 << 9;
    /// Reachable at a loopback address (NodePort on 127.0.0.1 / ::1).
    pub const LOOPBACK: u16 = 1 << 10;
}

/// Value of the services maps.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ServiceValue {
    /// Index in the slots array of the first of this frontend's `count` backend slots
    /// (0, which is never allocated, when `count` is 0).
    pub slot_base: u32,
    /// Number of backend slots. 0 means "refuse at once".
    pub count: u16,
    /// Identifies the service port across maps (reverse NAT, affinity, Maglev, metrics).
    pub rev_nat_index: u16,
    pub flags: u16,
    pub _pad: u16,
    /// `sessionAffinityConfig.clientIP.timeoutSeconds`.
    pub affinity_timeout: u32,
}

/// `Backend*.flags`
pub mod backend_flags {
    /// Ready endpoint (serving and not terminating).
    pub const ACTIVE: u8 = 1 << 0;
    /// Terminating endpoint that is still serving.
    pub const TERMINATING: u8 = 1 << 1;
    /// The backend runs on this node.
    pub const LOCAL: u8 = 1 << 2;
}

/// A backend: where a service's traffic goes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Backend<A> {
    /// Network byte order.
    pub address: A,
    /// Network byte order.
    pub port: u16,
    pub protocol: u8,
    pub flags: u8,
}

/// IPv4 backend (8 bytes).
pub type BackendV4 = Backend<u32>;
/// IPv6 backend (20 bytes).
pub type BackendV6 = Backend<[u8; 16]>;

const _: () = {
    assert!(core::mem::size_of::<ServiceKeyV4>() == 8);
    assert!(core::mem::size_of::<ServiceKeyV6>() == 20);
    assert!(core::mem::size_of::<ServiceValue>() == 16);
    assert!(core::mem::size_of::<BackendV4>() == 8);
    assert!(core::mem::size_of::<BackendV6>() == 20);
};

/// Reverse NAT entry (keyed by `rev_nat_index` as u32): the service address that
/// replies must appear to come from.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct RevNatV4 {
    pub address: u32,
    pub port: u16,
    pub _pad: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct RevNatV6 {
    pub address: [u8; 16],
    pub port: u16,
    pub _pad: u16,
}

/// Key of the socket-level reverse NAT map, so getpeername()/recvmsg() of a socket
/// that socket-LB redirected report the service address.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SockRevNatKeyV4 {
    /// `bpf_get_socket_cookie()` of the client socket.
    pub cookie: u64,
    /// Backend address and port the socket was sent to (network order).
    pub address: u32,
    pub port: u16,
    pub _pad: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SockRevNatKeyV6 {
    pub cookie: u64,
    pub address: [u8; 16],
    pub port: u16,
    pub _pad: [u8; 6],
}

/// Value of the socket reverse NAT maps: the service address and port.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SockRevNatV4 {
    pub address: u32,
    pub port: u16,
    pub rev_nat_index: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SockRevNatV6 {
    pub address: [u8; 16],
    pub port: u16,
    pub rev_nat_index: u16,
}

/// `SockLbRecord.family`: which hooks wrote the connected record.
pub mod sock_lb_family {
    /// No connected record (the storage exists only for `DATAGRAMS`).
    pub const NONE: u8 = 0;
    /// Written by connect4: IPv4 addresses in word 0.
    pub const V4: u8 = 4;
    /// Written by connect6: IPv6 or IPv4-mapped addresses in all four words.
    pub const V6: u8 = 6;
}

/// `SockLbRecord.flags`
pub mod sock_lb_flags {
    /// The socket sent datagrams that sendmsg translated: their reverse records are in
    /// `wg_srnat4_v1`/`wg_srnat6_v1` (one per backend it reached), so recvmsg must look
    /// there on a miss. Without it a miss ends at the socket.
    pub const DATAGRAMS: u8 = 1 << 0;
}

/// Socket-local storage (`wg_sklb_v1`, `BPF_MAP_TYPE_SK_STORAGE`) of a socket that
/// socket LB translated: the reverse translation of its connect(), kept with the
/// socket and freed with it, so getpeername()/recvmsg() of any socket without one
/// ends at a pointer check.
///
/// A socket has one connected peer at a time, so one record suffices; unconnected
/// UDP, which may reach many backends, keeps its records in the socket reverse-NAT
/// LRU maps and sets `sock_lb_flags::DATAGRAMS` here.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SockLbRecord {
    /// Backend the socket was connected to, as the `user_ip6` words of the context
    /// (memory order); an IPv4 record (`sock_lb_family::V4`) uses word 0 only.
    pub backend: [u32; 4],
    /// The service address the application connected to, same encoding.
    pub service: [u32; 4],
    /// Network order.
    pub backend_port: u16,
    pub service_port: u16,
    pub rev_nat_index: u16,
    /// `sock_lb_family::*`
    pub family: u8,
    /// `sock_lb_flags::*`
    pub flags: u8,
}

const _: () = assert!(core::mem::size_of::<SockLbRecord>() == 40);

/// `AffinityKey.kind`
pub const AFFINITY_BY_NETNS: u8 = 0;
pub const AFFINITY_BY_CLIENT_IP: u8 = 1;

/// Session affinity key: socket LB keys by the client's network-namespace cookie,
/// the per-packet path by client IP (IPv4 in the first 4 bytes of `client`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct AffinityKey {
    /// Netns cookie (as u64 little-endian bytes) or client address.
    pub client: [u8; 16],
    pub rev_nat_index: u16,
    pub kind: u8,
    pub _pad: [u8; 5],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct AffinityValue {
    pub backend_id: u32,
    /// `bpf_ktime_get_boot_ns() / 1e9` at last use.
    pub last_used_secs: u32,
}

/// Maglev lookup-table size per service: prime, as the Maglev paper requires, and
/// large enough for its `M >= 100 N` rule up to N = 163 backends.
///
/// It is the largest prime whose `MAGLEV` map element stays within one 64 KiB kernel
/// allocation: the map does not preallocate, so each table is one `kmalloc` of
/// `64 (element header, key, allocator link) + 4 M` bytes; M <= 16368 keeps that at
/// 65 516 bytes (an order-4 block), while Cilium's 16381 would need 65 588 bytes and
/// so an order-5 block, doubling the cost per service to 128 KiB.
pub const MAGLEV_TABLE_SIZE: usize = 16363;

/// Per-service Maglev table (keyed by `rev_nat_index` as u32): backend ids.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaglevTable {
    pub backend_ids: [u32; MAGLEV_TABLE_SIZE],
}

/// Per-node settings the kernel programs read (array map, index 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NodeConfig {
    /// Primary node IPv4 address (network order): the SNAT source for NodePort
    /// traffic forwarded to a backend on another node.
    pub node_address_v4: u32,
    pub _pad: u32,
    pub node_address_v6: [u8; 16],
    /// Bit 0: socket LB enabled for host-namespace sockets.
    pub flags: u32,
    pub _pad2: u32,
}
