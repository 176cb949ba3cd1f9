//! Connection tracking for the per-packet path, over the LRU maps `wg_ct4_v2` and
//! `wg_ct6_v1` (one per [`Family`]).
//!
//! A translated connection has two entries with the same value: the *original*
//! entry, keyed by the tuple the client sent (client → service address), and the
//! *reply* entry, keyed by the tuple the backend's replies carry when they reach this
//! node (backend → client, or backend → SNAT address and port). Each entry holds
//! everything its direction needs to translate without another lookup.
//!
//! Entries expire by `last_seen_secs` (see [`lifetime`]); a TCP FIN or RST marks both
//! entries `CLOSING`, which shortens their life. The LRU map evicts the oldest entries
//! when full, so nothing needs a garbage collector. Keys and entries are written in
//! place (they live in per-CPU scratch memory; an IPv6 key by value would cost stack).

// Keys and entries are passed to the map helpers by reference on purpose: they live
// in per-CPU scratch memory, and a by-value argument would copy them onto the stack.
#![allow(clippy::needless_borrows_for_generic_args)]

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_get_prandom_u32};
use waggle_ebpf_common::{
    conntrack::{CT_DIR_ORIGINAL, CT_DIR_REPLY, CtEntry, CtKey, ct_flags},
    drop::{DROP_CT_CREATE_FAILED, DropReason},
    lb::PROTO_TCP,
};

use crate::{family::Family, packet::Flow};

/// Seconds an idle entry lives, by state.
pub const TCP_SYN_SENT_SECS: u32 = 60;
pub const TCP_ESTABLISHED_SECS: u32 = 6 * 3600;
pub const CLOSING_SECS: u32 = 10;
pub const UDP_SECS: u32 = 60;

/// SNAT ports tried besides the client's own (random ones in the ephemeral range).
const SNAT_RETRIES: u32 = 3;
const SNAT_PORT_MIN: u32 = 32_768;
const SNAT_PORT_SPAN: u32 = 28_232;

/// How long an entry may stay idle.
#[inline(always)]
pub fn lifetime(protocol: u8, flags: u16) -> u32 {
    if flags & ct_flags::CLOSING != 0 {
        CLOSING_SECS
    } else if protocol != PROTO_TCP {
        UDP_SECS
    } else if flags & ct_flags::SEEN_REPLY != 0 {
        TCP_ESTABLISHED_SECS
    } else {
        TCP_SYN_SENT_SECS
    }
}

#[inline(always)]
fn expired<A>(entry: &CtEntry<A>, protocol: u8, now: u32) -> bool {
    now.wrapping_sub(entry.last_seen_secs) > lifetime(protocol, entry.flags)
}

/// Writes a key: the tuple `src → dst` of `protocol` in `direction` (`CT_DIR_*`).
#[inline(always)]
pub fn fill_key<A: Copy>(
    key: &mut CtKey<A>,
    (src_addr, src_port): (&A, u16),
    (dst_addr, dst_port): (&A, u16),
    protocol: u8,
    direction: u8,
) {
    key.src_addr = *src_addr;
    key.dst_addr = *dst_addr;
    key.src_port = src_port;
    key.dst_port = dst_port;
    key.protocol = protocol;
    key.direction = direction;
    key._pad = [0; 2];
}

/// Writes the key of `flow` as seen in `direction` into `key`.
#[inline(always)]
pub fn fill_flow_key<A: Copy>(key: &mut CtKey<A>, flow: &Flow<A>, direction: u8) {
    fill_key(
        key,
        (&flow.src_addr, flow.src_port),
        (&flow.dst_addr, flow.dst_port),
        flow.protocol,
        direction,
    );
}

/// Writes the original key of the connection `entry` describes.
#[inline(always)]
pub fn fill_original_key<A: Copy>(key: &mut CtKey<A>, entry: &CtEntry<A>, protocol: u8) {
    fill_key(
        key,
        (&entry.orig_src_addr, entry.orig_src_port),
        (&entry.orig_dst_addr, entry.orig_dst_port),
        protocol,
        CT_DIR_ORIGINAL,
    );
}

/// A live (not expired) entry for `key`, as a pointer into the map.
#[inline(always)]
pub fn lookup<F: Family>(key: &CtKey<F::Addr>, now: u32) -> Option<*mut CtEntry<F::Addr>> {
    let entry = F::conntrack().get_ptr_mut(key)?;
    // SAFETY: a map value pointer, valid for this program run.
    if expired(unsafe { &*entry }, key.protocol, now) {
        None
    } else {
        Some(entry)
    }
}

/// Records a packet on `entry`: refreshes `last_seen`, sets `extra` flags and, for a
/// TCP FIN/RST, `CLOSING`. Returns the new flags.
#[inline(always)]
pub fn touch<A>(entry: *mut CtEntry<A>, flow: &Flow<A>, extra: u16, now: u32) -> u16 {
    // SAFETY: a map value pointer; concurrent updates of these plain fields by another
    // CPU can at worst lose one refresh, which the next packet repeats.
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
pub fn sync_peer<F: Family>(peer: &CtKey<F::Addr>, flags: u16, now: u32) {
    if let Some(entry) = F::conntrack().get_ptr_mut(peer) {
        // SAFETY: as in `touch`.
        unsafe {
            (*entry).flags |= flags & (ct_flags::CLOSING | ct_flags::SEEN_REPLY);
            (*entry).last_seen_secs = now;
        }
    }
}

/// Claims a SNAT port for a new connection and stores its reply entry under `key`
/// (the reply key with the client's port; its port is changed while searching): the
/// client's own port when that reply tuple is free (a fully random port would collide
/// with TIME_WAIT sockets on the backend under load), else a few random ports of the
/// ephemeral range. A tuple held by an expired entry counts as free.
/// Sets `entry.nat_port`. Errors: no port found (`DROP_CT_CREATE_FAILED`).
#[inline(always)]
pub fn claim_snat<F: Family>(
    entry: &mut CtEntry<F::Addr>,
    key: &mut CtKey<F::Addr>,
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
        key.direction = CT_DIR_REPLY;
        if F::conntrack()
            .insert(&*key, &*entry, u64::from(BPF_NOEXIST))
            .is_ok()
        {
            return Ok(port);
        }
        if lookup::<F>(key, now).is_none() {
            // Held by an expired connection: take it over.
            if F::conntrack().insert(&*key, &*entry, 0).is_ok() {
                return Ok(port);
            }
        }
        attempt += 1;
    }
    Err(DROP_CT_CREATE_FAILED)
}

/// Stores an entry (original or reply).
#[inline(always)]
pub fn store<F: Family>(key: &CtKey<F::Addr>, entry: &CtEntry<F::Addr>) -> Result<(), DropReason> {
    F::conntrack()
        .insert(key, entry, 0)
        .map_err(|_| DROP_CT_CREATE_FAILED)
}
