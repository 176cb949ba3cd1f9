//! Maglev backend selection for the per-packet path.
//!
//! The proxy builds one table per service (`waggle_proxy::maglev::build_table`) into
//! `wg_maglev_v2`, keyed by `rev_nat_index`. A flow hashes to one slot; every node has
//! the same table, so a flow reaches the same backend whichever node it enters. The
//! hash covers the client address and port, the service port and the protocol, but not
//! the destination address: for a NodePort that differs from node to node.

use waggle_ebpf_common::{
    drop::{DROP_BACKEND_NOT_FOUND, DROP_MAGLEV_EMPTY, DropReason},
    lb::MAGLEV_TABLE_SIZE,
};

use crate::{
    lb::{self, Family, Selected},
    maps::MAGLEV,
    packet::Flow,
};

/// A 32-bit hash of the flow's stable fields (an IPv6 client address is folded into
/// one word first, see [`Family::fold`]).
#[inline(always)]
pub fn flow_hash<F: Family>(flow: &Flow<F::Addr>) -> u32 {
    mix(
        F::fold(&flow.src_addr),
        flow.src_port,
        flow.dst_port,
        flow.protocol,
    )
}

/// murmur3-style mixing of the client address, ports and protocol.
#[inline(always)]
fn mix(address: u32, src_port: u16, dst_port: u16, protocol: u8) -> u32 {
    let mut h: u32 = 0x9e37_79b9;
    for word in [
        address,
        (u32::from(src_port) << 16) | u32::from(dst_port),
        u32::from(protocol),
    ] {
        h ^= word;
        h = h.wrapping_mul(0xcc9e_2d51);
        h = h.rotate_left(15).wrapping_mul(0x1b87_3593);
        h ^= h >> 16;
    }
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The slot of `hash` in a table of `MAGLEV_TABLE_SIZE` entries, by multiply-shift
/// (a range the verifier can follow, unlike `%`).
#[inline(always)]
pub fn slot(hash: u32) -> usize {
    ((u64::from(hash) * MAGLEV_TABLE_SIZE as u64) >> 32) as usize
}

/// Picks the backend of `flow` from the Maglev table of `rev_nat_index`.
/// Errors: no table or an empty slot (`DROP_MAGLEV_EMPTY`), or a backend id that is not
/// in the backends map (`DROP_BACKEND_NOT_FOUND`).
#[inline(always)]
pub fn select<F: Family>(
    rev_nat_index: u16,
    flow: &Flow<F::Addr>,
) -> Result<Selected<F::Addr>, DropReason> {
    let backend_id = table_entry(rev_nat_index, flow_hash::<F>(flow))?;
    let backend = lb::backend::<F>(backend_id).ok_or(DROP_BACKEND_NOT_FOUND)?;
    Ok(Selected {
        backend_id,
        backend,
    })
}

/// The backend id in the table of `rev_nat_index` at the slot of `hash`.
#[inline(always)]
fn table_entry(rev_nat_index: u16, hash: u32) -> Result<u32, DropReason> {
    let table = MAGLEV
        .get_ptr(u32::from(rev_nat_index))
        .ok_or(DROP_MAGLEV_EMPTY)?;
    let index = slot(hash);
    // The compiler knows `index < MAGLEV_TABLE_SIZE` and folds the scaling into the
    // shift, which loses the verifier's bound; a volatile read keeps an explicit check.
    // SAFETY: reading a local.
    let index = unsafe { core::ptr::read_volatile(&index) };
    if index >= MAGLEV_TABLE_SIZE {
        return Err(DROP_MAGLEV_EMPTY);
    }
    // SAFETY: `table` points at a live map value; `index` is within the array.
    let backend_id = unsafe { *(*table).backend_ids.as_ptr().add(index) };
    if backend_id == 0 {
        return Err(DROP_MAGLEV_EMPTY);
    }
    Ok(backend_id)
}
