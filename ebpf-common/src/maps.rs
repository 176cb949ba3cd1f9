//! Map names and sizes, shared so userspace can find pinned maps by name.
//!
//! Names carry a layout version; BPF object names are limited to 15 characters.
//!
//! The index-keyed array maps ([`SLOTS`], [`BACKENDS_V4`], [`BACKENDS_V6`],
//! [`REV_NAT_V4`], [`REV_NAT_V6`]) have every entry at all times: an entry whose value
//! is all zero bytes holds nothing. Userspace deletes by writing zeroes and skips
//! zeroed entries when it reads; the programs treat a backend with `protocol == 0` (a
//! programmed backend always has TCP, UDP or SCTP) or a slot holding id 0 as missing.
//! Index 0 is never allocated, so entry 0 stays zero.

/// Directory under the BPF filesystem where a proxy instance pins its maps.
pub const PIN_ROOT: &str = "/sys/fs/bpf/waggle";

/// Services by frontend. `_v2`: one entry per frontend, backends in [`SLOTS`] (`_v1`
/// also held one entry per backend slot, under a `backend_slot` key field).
pub const SERVICES_V4: &str = "wg_svc4_v2";
pub const SERVICES_V6: &str = "wg_svc6_v2";
/// Backend slots of every service (both families): an array of [`MAX_SLOTS`] backend
/// ids; a service's slots are `slot_base..slot_base + count` of its services entry.
/// Index 0 is never allocated; a zero id is no backend.
pub const SLOTS: &str = "wg_slots_v1";
/// Backends by backend id. `_v2`: arrays of [`MAX_BACKENDS`] entries (`_v1` were hash
/// maps); a zeroed entry is no backend (see the module docs).
pub const BACKENDS_V4: &str = "wg_be4_v2";
pub const BACKENDS_V6: &str = "wg_be6_v2";
/// Reverse NAT by `rev_nat_index`. `_v2`: arrays of [`MAX_REV_NAT`] entries (`_v1`
/// were hash maps); a zeroed entry is none.
pub const REV_NAT_V4: &str = "wg_rnat4_v2";
pub const REV_NAT_V6: &str = "wg_rnat6_v2";
/// Socket-LB reverse translation of connected sockets: socket-local storage
/// (`BPF_MAP_TYPE_SK_STORAGE`, value [`crate::lb::SockLbRecord`]), freed with the socket.
pub const SOCK_LB: &str = "wg_sklb_v1";
/// Socket-LB reverse translation of unconnected datagram sends: (socket cookie,
/// backend) → original service address, one entry per backend a socket reached.
pub const SOCK_REV_NAT_V4: &str = "wg_srnat4_v1";
pub const SOCK_REV_NAT_V6: &str = "wg_srnat6_v1";
pub const AFFINITY: &str = "wg_affin_v1";
/// `_v2`: 16363-slot tables (`_v1` had 1021) in a map that does not preallocate.
pub const MAGLEV: &str = "wg_maglev_v2";
/// `_v2`: 28-byte entries (`_v1` had 32, with trailing padding).
pub const CONNTRACK_V4: &str = "wg_ct4_v2";
pub const CONNTRACK_V6: &str = "wg_ct6_v1";
pub const DROPS: &str = "wg_drops_v1";
pub const SERVICE_METRICS: &str = "wg_svcm_v1";
/// Per-node configuration (node addresses for NodePort, flags): [`crate::lb::NodeConfig`].
pub const NODE_CONFIG: &str = "wg_nodecfg_v1";
/// Local node addresses on which NodePorts answer (IPv4, network order) → 1.
pub const NODE_ADDRS_V4: &str = "wg_naddr4_v1";
pub const NODE_ADDRS_V6: &str = "wg_naddr6_v1";

/// Every map a proxy pins under its pin directory (by these names), so that a restarted
/// or upgraded daemon reuses them and their state survives.
pub const PINNED: [&str; 19] = [
    SERVICES_V4,
    SERVICES_V6,
    SLOTS,
    BACKENDS_V4,
    BACKENDS_V6,
    REV_NAT_V4,
    REV_NAT_V6,
    SOCK_REV_NAT_V4,
    SOCK_REV_NAT_V6,
    SOCK_LB,
    AFFINITY,
    MAGLEV,
    CONNTRACK_V4,
    CONNTRACK_V6,
    DROPS,
    SERVICE_METRICS,
    NODE_CONFIG,
    NODE_ADDRS_V4,
    NODE_ADDRS_V6,
];

/// Subdirectory of a pin directory holding the pinned bpf_links of the socket-LB
/// programs (one per hook, named after the program), which keep them attached while
/// the daemon restarts.
pub const LINKS_DIR: &str = "links";

/// Pinned map names of layouts that were replaced by a newer version. A daemon that
/// loads with pinning removes these, so an upgraded node does not keep paying for
/// maps no program uses any more.
pub const RETIRED: &[&str] = &[
    "wg_svc4_v1",
    "wg_svc6_v1",
    "wg_maglev_v1",
    "wg_ct4_v1",
    "wg_be4_v1",
    "wg_be6_v1",
    "wg_rnat4_v1",
    "wg_rnat6_v1",
];

/// Frontends (entries of each services map).
pub const MAX_SERVICES: u32 = 65_536;
/// Entries of the slots array (4 MiB): room for every frontend's backends with the
/// allocator's power-of-two rounding, e.g. 65,536 frontends of up to 16 backends.
pub const MAX_SLOTS: u32 = 1 << 20;
/// Entries of the backend arrays: backend ids are `1..MAX_BACKENDS`.
pub const MAX_BACKENDS: u32 = 65_536;
/// Entries of the reverse-NAT arrays (and entries of the per-service maps keyed by
/// `rev_nat_index`): indexes are `1..MAX_REV_NAT`.
pub const MAX_REV_NAT: u32 = 65_536;
pub const MAX_AFFINITY: u32 = 65_536;
pub const MAX_CONNTRACK: u32 = 262_144;
pub const MAX_SOCK_REV_NAT: u32 = 262_144;
pub const MAX_NODE_ADDRS: u32 = 256;
/// Services that have a Maglev table (only those reachable by the per-packet path).
pub const MAX_MAGLEV_SERVICES: u32 = 4_096;
