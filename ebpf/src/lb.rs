//! Service lookup and backend selection, shared by every attach point.
//!
//! Socket LB (`socket_lb`) and the per-packet path (`nodeport`) both resolve a
//! destination to a service with [`lookup`] (or [`lookup_nodeport`], [`lookup_any`])
//! and pick a backend with [`select`], generic over the address [`Family`]. The map
//! layout is documented in `waggle_ebpf_common::lb`: a frontend's entry (scope
//! external) holds count, flags, `slot_base`, `rev_nat_index` and the affinity timeout;
//! entries `slot_base..slot_base + count` of the slots array hold backend ids; a
//! `TWO_SCOPES` service has a second entry with its own slots under `SCOPE_INTERNAL`,
//! used by in-node clients.
//!
//! Every failure is a `DropReason` (`waggle_ebpf_common::drop`) that the caller counts
//! with [`crate::maps::count_drop`] and turns into its verdict.

// Map keys and values are passed by reference on purpose: the BPF stack is 512 bytes
// and a by-value argument is one more copy of a key on it.
#![allow(clippy::needless_borrows_for_generic_args)]

use aya_ebpf::helpers::{bpf_get_prandom_u32, bpf_ktime_get_boot_ns};
use waggle_ebpf_common::{
    drop::{
        DROP_BACKEND_NOT_FOUND, DROP_EXT_LOCAL_NO_LOCAL_BACKEND, DROP_INT_LOCAL_NO_LOCAL_BACKEND,
        DROP_NO_BACKEND, DropReason,
    },
    lb::{
        AffinityKey, AffinityValue, Backend, SCOPE_EXTERNAL, SCOPE_INTERNAL, ServiceKey,
        ServiceValue, service_flags,
    },
    metrics::ServiceCounters,
};

pub use crate::family::{Family, V4, V6};
use crate::maps::{AFFINITY, SERVICE_METRICS, SLOTS};

/// Where the client of a lookup sits; decides the scope of a `TWO_SCOPES` service.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// A socket on this node (socket LB, or pod traffic seen by tc): uses
    /// `SCOPE_INTERNAL` when the service has two scopes.
    InNode,
    /// Traffic from outside the node (NodePort, externalIPs, LoadBalancer):
    /// always uses `SCOPE_EXTERNAL`.
    External,
}

/// Who a session-affinity entry belongs to.
#[derive(Clone, Copy)]
pub struct AffinityClient {
    /// Netns cookie as little-endian bytes (`AFFINITY_BY_NETNS`) or the client address
    /// (`AFFINITY_BY_CLIENT_IP`; IPv4 in the first 4 bytes, network order).
    pub client: [u8; 16],
    /// `AFFINITY_BY_NETNS` or `AFFINITY_BY_CLIENT_IP`.
    pub kind: u8,
}

/// A service found by a lookup: its frontend key (scope external) and value.
#[derive(Clone, Copy)]
pub struct Service<A> {
    pub key: ServiceKey<A>,
    pub value: ServiceValue,
}

/// The backend chosen for one connection.
#[derive(Clone, Copy)]
pub struct Selected<A> {
    pub backend_id: u32,
    pub backend: Backend<A>,
}

/// The service entry under `key`, copied out.
#[inline(always)]
pub fn service_entry<F: Family>(key: &ServiceKey<F::Addr>) -> Option<ServiceValue> {
    // SAFETY: the value is copied out at once; entries are plain data.
    unsafe { F::services().get(key).copied() }
}

/// The backend with id `id`, copied out; `None` for an id beyond the array or an
/// empty (zeroed) slot.
#[inline(always)]
pub fn backend<F: Family>(id: u32) -> Option<Backend<F::Addr>> {
    F::backends().get(id).copied().filter(|b| b.protocol != 0)
}

/// The backend id in slot `index` of the slots array; `None` beyond the array or for
/// an empty slot.
#[inline(always)]
fn slot(index: u32) -> Option<u32> {
    SLOTS.get(index).copied().filter(|id| *id != 0)
}

/// The service at `address:port` (network order) for `protocol` (`PROTO_*`):
/// ClusterIPs, externalIPs and LoadBalancer IPs, which are stored under their address.
#[inline(always)]
pub fn lookup<F: Family>(address: F::Addr, port: u16, protocol: u8) -> Option<Service<F::Addr>> {
    let key = ServiceKey {
        address,
        port,
        protocol,
        scope: SCOPE_EXTERNAL,
    };
    service_entry::<F>(&key).map(|value| Service { key, value })
}

/// The NodePort service on `port` (entries stored with address 0 and `NODE_PORT`).
/// The caller decides that the destination is a node address (see [`is_node_addr`]).
#[inline(always)]
pub fn lookup_nodeport<F: Family>(port: u16, protocol: u8) -> Option<Service<F::Addr>> {
    lookup::<F>(F::ANY, port, protocol).filter(|s| s.value.flags & service_flags::NODE_PORT != 0)
}

/// Whether `address` (network order) is one of this node's addresses (`wg_naddr4_v1`
/// or `wg_naddr6_v1`, which include loopback when the proxy serves NodePorts there).
#[inline(always)]
pub fn is_node_addr<F: Family>(address: &F::Addr) -> bool {
    // SAFETY: presence test only.
    unsafe { F::node_addrs().get(address).is_some() }
}

/// Service lookup the way an in-node socket sees it: the exact address first, then the
/// NodePort entry when the address is a node address.
#[inline(always)]
pub fn lookup_any<F: Family>(
    address: F::Addr,
    port: u16,
    protocol: u8,
) -> Option<Service<F::Addr>> {
    match lookup::<F>(address, port, protocol) {
        Some(service) => Some(service),
        None if is_node_addr::<F>(&address) => lookup_nodeport::<F>(port, protocol),
        None => None,
    }
}

/// Picks a backend: the affinity entry's backend when the service has `AFFINITY`, the
/// entry is younger than the timeout and the backend still exists in the backends map
/// (the proxy deletes a backend no service uses any more; scanning the slots instead
/// would need a loop the verifier cannot bound cheaply); otherwise a random
/// slot of the client's scope (and, with affinity, records the choice).
///
/// Ages are whole seconds ([`now_secs`]), so an affinity entry is reused for between
/// `affinity_timeout - 1` and `affinity_timeout` seconds after its last use.
///
/// Errors: the scope has no slots (`DROP_NO_BACKEND`, or the `*_LOCAL_NO_LOCAL_BACKEND`
/// reason when a traffic policy is Local), or a slot/backend entry is missing
/// (`DROP_BACKEND_NOT_FOUND`, a transient state while the proxy rewrites a service).
#[inline(always)]
pub fn select<F: Family>(
    service: &Service<F::Addr>,
    client: Client,
    affinity: Option<AffinityClient>,
) -> Result<Selected<F::Addr>, DropReason> {
    let flags = service.value.flags;
    let (slot_base, count) = if client == Client::InNode && flags & service_flags::TWO_SCOPES != 0 {
        let internal = ServiceKey {
            scope: SCOPE_INTERNAL,
            ..service.key
        };
        service_entry::<F>(&internal).map_or((0, 0), |v| (v.slot_base, v.count))
    } else {
        (service.value.slot_base, service.value.count)
    };
    if count == 0 {
        return Err(no_backend_reason(flags, client));
    }

    let affinity = match affinity {
        Some(a) if flags & service_flags::AFFINITY != 0 => Some(AffinityKey {
            client: a.client,
            rev_nat_index: service.value.rev_nat_index,
            kind: a.kind,
            _pad: [0; 5],
        }),
        _ => None,
    };
    // The clock is read only for a service with affinity: most services have none.
    let now = if affinity.is_some() { now_secs() } else { 0 };
    if let Some(key) = &affinity {
        // SAFETY: copied out at once.
        if let Some(entry) = unsafe { AFFINITY.get(key).copied() } {
            let age = now.wrapping_sub(entry.last_used_secs);
            if age < service.value.affinity_timeout
                && let Some(backend) = backend::<F>(entry.backend_id)
            {
                remember(key, entry.backend_id, now);
                return Ok(Selected {
                    backend_id: entry.backend_id,
                    backend,
                });
            }
        }
    }

    // SAFETY: the helper has no preconditions.
    let offset = unsafe { bpf_get_prandom_u32() } % u32::from(count);
    let backend_id = slot(slot_base.wrapping_add(offset)).ok_or(DROP_BACKEND_NOT_FOUND)?;
    let backend = backend::<F>(backend_id).ok_or(DROP_BACKEND_NOT_FOUND)?;
    if let Some(key) = &affinity {
        remember(key, backend_id, now);
    }
    Ok(Selected {
        backend_id,
        backend,
    })
}

/// The drop reason for a scope without backends.
#[inline(always)]
fn no_backend_reason(flags: u16, client: Client) -> DropReason {
    match client {
        Client::External if flags & service_flags::EXT_LOCAL != 0 => {
            DROP_EXT_LOCAL_NO_LOCAL_BACKEND
        }
        Client::InNode if flags & service_flags::INT_LOCAL != 0 => DROP_INT_LOCAL_NO_LOCAL_BACKEND,
        _ => DROP_NO_BACKEND,
    }
}

#[inline(always)]
fn remember(key: &AffinityKey, backend_id: u32, now: u32) {
    let value = AffinityValue {
        backend_id,
        last_used_secs: now,
    };
    // A full LRU map evicts its oldest entry, so this only fails on a kernel error;
    // losing one affinity record then costs stickiness, never the connection.
    let _ = AFFINITY.insert(key, &value, 0);
}

/// Seconds since boot (`bpf_ktime_get_boot_ns`, Linux 5.8), the clock of affinity
/// and conntrack timestamps.
#[inline(always)]
pub fn now_secs() -> u32 {
    // SAFETY: the helper has no preconditions.
    (unsafe { bpf_ktime_get_boot_ns() } / 1_000_000_000) as u32
}

/// Adds one connection (and `packets` packets, `bytes` bytes) to the service's
/// counters in `wg_svcm_v1`.
#[inline(always)]
pub fn count_service(rev_nat_index: u16, connections: u64, packets: u64, bytes: u64) {
    let key = u32::from(rev_nat_index);
    match SERVICE_METRICS.get_ptr_mut(&key) {
        Some(counters) => {
            // SAFETY: per-CPU value; no other writer on this CPU while we run.
            unsafe {
                (*counters).connections += connections;
                (*counters).packets += packets;
                (*counters).bytes += bytes;
            }
        }
        None => {
            let first = ServiceCounters {
                packets,
                bytes,
                connections,
            };
            // From a program, a per-CPU hash update writes only this CPU's slot (a new
            // element starts zeroed on the others), so racing CPUs lose nothing.
            // Failure means the map is full: the sample is dropped, never the traffic.
            let _ = SERVICE_METRICS.insert(&key, &first, 0);
        }
    }
}
