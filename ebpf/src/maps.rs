//! Every map shared by Waggle's service programs, declared once.
//!
//! Socket LB (`socket_lb`) and the per-packet path (`nodeport`) use these same statics,
//! so both attach points see one set of kernel maps. Names come from
//! `waggle_ebpf_common::maps` (checked below against BPF's 15-character limit), so
//! userspace pins each one by name under its pin directory (`Datapath::load_pinned`
//! passes `EbpfLoader::map_pin_path` for every name in `maps::PINNED`) and a restarted
//! daemon reuses the same maps: the state survives.
//!
//! The maps are deliberately *not* declared `pinned(..)` in the object: aya would then
//! pin them under `/sys/fs/bpf` whenever no directory is given, so every unpinned
//! loader (tests, benchmarks) would silently share one global set of maps.

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC},
    btf_maps::SkStorage,
    macros::{btf_map, map},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, PerCpuHashMap},
};
use waggle_ebpf_common::{
    conntrack::{CtEntryV4, CtEntryV6, CtKeyV4, CtKeyV6},
    drop::DROP_REASON_COUNT,
    lb::{
        AffinityKey, AffinityValue, BackendV4, BackendV6, MaglevTable, NodeConfig, RevNatV4,
        RevNatV6, ServiceKeyV4, ServiceKeyV6, ServiceValue, SockLbRecord, SockRevNatKeyV4,
        SockRevNatKeyV6, SockRevNatV4, SockRevNatV6,
    },
    maps as names,
    metrics::ServiceCounters,
};

// BPF object names hold at most 15 bytes plus the NUL; fail the build, not the load.
const _: () = {
    const fn fits(name: &str) {
        assert!(name.len() <= 15, "BPF map name longer than 15 bytes");
    }
    fits(names::SERVICES_V4);
    fits(names::SERVICES_V6);
    fits(names::SLOTS);
    fits(names::BACKENDS_V4);
    fits(names::BACKENDS_V6);
    fits(names::REV_NAT_V4);
    fits(names::REV_NAT_V6);
    fits(names::SOCK_REV_NAT_V4);
    fits(names::SOCK_REV_NAT_V6);
    fits(names::SOCK_LB);
    fits(names::AFFINITY);
    fits(names::MAGLEV);
    fits(names::CONNTRACK_V4);
    fits(names::CONNTRACK_V6);
    fits(names::DROPS);
    fits(names::SERVICE_METRICS);
    fits(names::NODE_CONFIG);
    fits(names::NODE_ADDRS_V4);
    fits(names::NODE_ADDRS_V6);
};

/// Services: one entry per frontend and scope; its backends are slots of [`SLOTS`].
#[map(name = "wg_svc4_v2")]
pub static SERVICES_V4: HashMap<ServiceKeyV4, ServiceValue> =
    HashMap::with_max_entries(names::MAX_SERVICES, 0);
#[map(name = "wg_svc6_v2")]
pub static SERVICES_V6: HashMap<ServiceKeyV6, ServiceValue> =
    HashMap::with_max_entries(names::MAX_SERVICES, 0);

/// Backend ids of every service's slots (both families), at
/// `slot_base..slot_base + count` of its services entry; 0 is no backend. Mappable,
/// so userspace writes slots with plain stores instead of a syscall per element.
#[map(name = "wg_slots_v1")]
pub static SLOTS: Array<u32> = Array::with_max_entries(names::MAX_SLOTS, BPF_F_MMAPABLE);

/// Backends by id (arrays: a lookup is an inlined index, an update a copy; a zeroed
/// slot, `protocol == 0`, is no backend). Mappable (`BPF_F_MMAPABLE`), so userspace
/// reads every slot without a syscall per element.
#[map(name = "wg_be4_v2")]
pub static BACKENDS_V4: Array<BackendV4> =
    Array::with_max_entries(names::MAX_BACKENDS, BPF_F_MMAPABLE);
#[map(name = "wg_be6_v2")]
pub static BACKENDS_V6: Array<BackendV6> =
    Array::with_max_entries(names::MAX_BACKENDS, BPF_F_MMAPABLE);

/// Reverse NAT (per-packet path) by `rev_nat_index` as u32 (mappable arrays, as above;
/// a zeroed slot is no entry).
#[map(name = "wg_rnat4_v2")]
pub static REV_NAT_V4: Array<RevNatV4> =
    Array::with_max_entries(names::MAX_REV_NAT, BPF_F_MMAPABLE);
#[map(name = "wg_rnat6_v2")]
pub static REV_NAT_V6: Array<RevNatV6> =
    Array::with_max_entries(names::MAX_REV_NAT, BPF_F_MMAPABLE);

/// Socket-LB reverse translation of connected sockets, stored with the socket (a BTF
/// map: socket storage needs the BTF of its value, so the object is linked with
/// `--btf`). Created by connect4/connect6, read by getpeername/recvmsg, freed by the
/// kernel with the socket.
#[btf_map(name = "wg_sklb_v1")]
pub static SOCK_LB: SkStorage<SockLbRecord> = SkStorage::new();

/// Socket-LB reverse translation of unconnected datagram sends, one entry per
/// (socket, backend) (LRU: entries of closed sockets age out).
#[map(name = "wg_srnat4_v1")]
pub static SOCK_REV_NAT_V4: LruHashMap<SockRevNatKeyV4, SockRevNatV4> =
    LruHashMap::with_max_entries(names::MAX_SOCK_REV_NAT, 0);
#[map(name = "wg_srnat6_v1")]
pub static SOCK_REV_NAT_V6: LruHashMap<SockRevNatKeyV6, SockRevNatV6> =
    LruHashMap::with_max_entries(names::MAX_SOCK_REV_NAT, 0);

/// Session affinity (LRU).
#[map(name = "wg_affin_v1")]
pub static AFFINITY: LruHashMap<AffinityKey, AffinityValue> =
    LruHashMap::with_max_entries(names::MAX_AFFINITY, 0);

/// Maglev tables by `rev_nat_index` as u32. Not preallocated (`BPF_F_NO_PREALLOC`):
/// a table is 64 KiB, so only services that have one cost memory.
#[map(name = "wg_maglev_v2")]
pub static MAGLEV: HashMap<u32, MaglevTable> =
    HashMap::with_max_entries(names::MAX_MAGLEV_SERVICES, BPF_F_NO_PREALLOC);

/// Connection tracking for the per-packet path (LRU).
#[map(name = "wg_ct4_v2")]
pub static CONNTRACK_V4: LruHashMap<CtKeyV4, CtEntryV4> =
    LruHashMap::with_max_entries(names::MAX_CONNTRACK, 0);
#[map(name = "wg_ct6_v1")]
pub static CONNTRACK_V6: LruHashMap<CtKeyV6, CtEntryV6> =
    LruHashMap::with_max_entries(names::MAX_CONNTRACK, 0);

/// Drop/refusal counters indexed by `DROP_*` reason.
#[map(name = "wg_drops_v1")]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DROP_REASON_COUNT, 0);

/// Per-service counters by `rev_nat_index` as u32.
#[map(name = "wg_svcm_v1")]
pub static SERVICE_METRICS: PerCpuHashMap<u32, ServiceCounters> =
    PerCpuHashMap::with_max_entries(names::MAX_REV_NAT, 0);

/// Per-node settings at index 0.
#[map(name = "wg_nodecfg_v1")]
pub static NODE_CONFIG: Array<NodeConfig> = Array::with_max_entries(1, 0);

/// Local node addresses (network order) on which NodePorts answer → 1.
#[map(name = "wg_naddr4_v1")]
pub static NODE_ADDRS_V4: HashMap<u32, u8> = HashMap::with_max_entries(names::MAX_NODE_ADDRS, 0);
#[map(name = "wg_naddr6_v1")]
pub static NODE_ADDRS_V6: HashMap<[u8; 16], u8> =
    HashMap::with_max_entries(names::MAX_NODE_ADDRS, 0);

/// Counts one drop/refusal under `reason` (a `DROP_*` code).
#[inline(always)]
pub fn count_drop(reason: u32) {
    if let Some(counter) = DROPS.get_ptr_mut(reason) {
        // SAFETY: per-CPU slot; programs do not migrate CPU while running.
        unsafe { *counter += 1 };
    }
}
