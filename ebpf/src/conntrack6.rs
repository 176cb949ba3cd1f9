//! Connection tracking for the IPv6 per-packet path, over the LRU map `wg_ct6_v1`.
//!
//! The same model as [`crate::conntrack`] (original and reply entries with the same
//! value, lifetimes by state, SNAT port claiming); only the key and entry types differ.

// Keys and entries are passed to the map helpers by reference on purpose: they live
// in per-CPU scratch memory, and a by-value argument would copy them onto the stack.
#![allow(clippy::needless_borrows_for_generic_args)]

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_get_prandom_u32};
use waggle_ebpf_common::{
    conntrack::{CT_DIR_ORIGINAL, CT_DIR_REPLY, CtEntryV6, CtKeyV6, ct_flags},
    drop::{DROP_CT_CREATE_FAILED, DropReason},
};

use crate::{
    conntrack::{SNAT_PORT_MIN, SNAT_PORT_SPAN, SNAT_RETRIES, lifetime},
    maps::CONNTRACK_V6,
    packet6::Ipv6Flow,
};

#[inline(always)]
fn expired(entry: &CtEntryV6, protocol: u8, now: u32) -> bool {
    now.wrapping_sub(entry.last_seen_secs) > lifetime(protocol, entry.flags)
}

/// Writes the key of `flow` as seen in `direction` (`CT_DIR_*`) into `key`.
#[inline(always)]
pub fn fill_key(key: &mut CtKeyV6, flow: &Ipv6Flow, direction: u8) {
    key.src_addr = flow.src_addr;
    key.dst_addr = flow.dst_addr;
    key.src_port = flow.src_port;
    key.dst_port = flow.dst_port;
    key.protocol = flow.protocol;
    key.direction = direction;
    key._pad = [0; 2];
}

/// A live (not expired) entry for `key`, as a pointer into the map.
#[inline(always)]
pub fn lookup_v6(key: &CtKeyV6, now: u32) -> Option<*mut CtEntryV6> {
    let entry = CONNTRACK_V6.get_ptr_mut(key)?;
    // SAFETY: a map value pointer, valid for this program run.
    if expired(unsafe { &*entry }, key.protocol, now) {
        None
    } else {
        Some(entry)
    }
}

/// Records a packet on `entry` (see [`crate::conntrack::touch`]); returns the new flags.
#[inline(always)]
pub fn touch(entry: *mut CtEntryV6, flow: &Ipv6Flow, extra: u16, now: u32) -> u16 {
    // SAFETY: a map value pointer; a lost concurrent refresh is repeated by the next packet.
    unsafe {
        let mut flags = (*entry).flags | extra;
        if flow.closes() {
            flags |= ct_flags::CLOSING;
        }
        if (*entry).flags != flags {
            (*entry).flags = flags;
        }
        if (*entry).last_seen_secs != now {
            (*entry).last_seen_secs = now;
        }
        flags
    }
}

/// Copies `flags` (CLOSING, SEEN_REPLY) and `now` onto the entry of the other direction.
#[inline(always)]
pub fn sync_peer(peer: &CtKeyV6, flags: u16, now: u32) {
    if let Some(entry) = CONNTRACK_V6.get_ptr_mut(peer) {
        // SAFETY: as in `touch`.
        unsafe {
            (*entry).flags |= flags & (ct_flags::CLOSING | ct_flags::SEEN_REPLY);
            (*entry).last_seen_secs = now;
        }
    }
}

/// Writes the reply key of a connection whose replies come from `backend` to `to`.
#[inline(always)]
pub fn fill_reply_key(
    key: &mut CtKeyV6,
    backend_addr: &[u8; 16],
    backend_port: u16,
    to_addr: &[u8; 16],
    to_port: u16,
    protocol: u8,
) {
    key.src_addr = *backend_addr;
    key.dst_addr = *to_addr;
    key.src_port = backend_port;
    key.dst_port = to_port;
    key.protocol = protocol;
    key.direction = CT_DIR_REPLY;
    key._pad = [0; 2];
}

/// Writes the original key of the connection `entry` describes.
#[inline(always)]
pub fn fill_original_key(key: &mut CtKeyV6, entry: &CtEntryV6, protocol: u8) {
    key.src_addr = entry.orig_src_addr;
    key.dst_addr = entry.orig_dst_addr;
    key.src_port = entry.orig_src_port;
    key.dst_port = entry.orig_dst_port;
    key.protocol = protocol;
    key.direction = CT_DIR_ORIGINAL;
    key._pad = [0; 2];
}

/// Claims a SNAT port for a new connection and stores its reply entry under `key`
/// (the reply key with the client's port; its port is changed while searching) (see
/// [`crate::conntrack::claim_snat_v4`]): the client's own port when free, else a few
/// random ephemeral ones; an entry held by an expired connection is taken over.
/// Sets `entry.nat_port`. Errors: no port found (`DROP_CT_CREATE_FAILED`).
#[inline(always)]
pub fn claim_snat_v6(
    entry: &mut CtEntryV6,
    key: &mut CtKeyV6,
    now: u32,
) -> Result<u16, DropReason> {
    let mut port = key.dst_port;
    let mut attempt = 0;
    while attempt <= SNAT_RETRIES {
        if attempt > 0 {
            // SAFETY: the helper has no preconditions.
            let random = unsafe { bpf_get_prandom_u32() } % SNAT_PORT_SPAN;
            port = ((SNAT_PORT_MIN + random) as u16).to_be();
        }
        entry.nat_port = port;
        key.dst_port = port;
        if CONNTRACK_V6
            .insert(&*key, &*entry, u64::from(BPF_NOEXIST))
            .is_ok()
        {
            return Ok(port);
        }
        if lookup_v6(key, now).is_none() {
            // Held by an expired connection: take it over.
            if CONNTRACK_V6.insert(&*key, &*entry, 0).is_ok() {
                return Ok(port);
            }
        }
        attempt += 1;
    }
    Err(DROP_CT_CREATE_FAILED)
}

/// Stores an entry (original or reply).
#[inline(always)]
pub fn store_v6(key: &CtKeyV6, entry: &CtEntryV6) -> Result<(), DropReason> {
    CONNTRACK_V6
        .insert(key, entry, 0)
        .map_err(|_| DROP_CT_CREATE_FAILED)
}
