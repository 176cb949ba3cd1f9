//! Connection tracking for the per-packet path (IPv4), over the LRU map `wg_ct4_v1`.
//!
//! A translated connection has two entries with the same value: the *original*
//! entry, keyed by the tuple the client sent (client → service address), and the
//! *reply* entry, keyed by the tuple the backend's replies carry when they reach this
//! node (backend → client, or backend → node address and SNAT port). Each entry holds
//! everything its direction needs to translate without another lookup.
//!
//! Entries expire by `last_seen_secs` (see [`lifetime`]); a TCP FIN or RST marks both
//! entries `CLOSING`, which shortens their life. The LRU map evicts the oldest entries
//! when full, so nothing needs a garbage collector.

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_get_prandom_u32};
use waggle_ebpf_common::{
    conntrack::{CT_DIR_ORIGINAL, CT_DIR_REPLY, CtEntryV4, CtKeyV4, ct_flags},
    drop::{DROP_CT_CREATE_FAILED, DropReason},
    lb::PROTO_TCP,
};

use crate::{maps::CONNTRACK_V4, packet::Ipv4Flow};

/// Seconds an idle entry lives, by state.
pub const TCP_SYN_SENT_SECS: u32 = 60;
pub const TCP_ESTABLISHED_SECS: u32 = 6 * 3600;
pub const CLOSING_SECS: u32 = 10;
pub const UDP_SECS: u32 = 60;

/// SNAT ports tried besides the client's own (random ones in the ephemeral range).
pub(crate) const SNAT_RETRIES: u32 = 3;
pub(crate) const SNAT_PORT_MIN: u32 = 32_768;
pub(crate) const SNAT_PORT_SPAN: u32 = 28_232;

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
pub fn expired(entry: &CtEntryV4, protocol: u8, now: u32) -> bool {
    now.wrapping_sub(entry.last_seen_secs) > lifetime(protocol, entry.flags)
}

/// The key of `flow` as seen in `direction` (`CT_DIR_*`).
#[inline(always)]
pub fn key_v4(flow: &Ipv4Flow, direction: u8) -> CtKeyV4 {
    CtKeyV4 {
        src_addr: flow.src_addr,
        dst_addr: flow.dst_addr,
        src_port: flow.src_port,
        dst_port: flow.dst_port,
        protocol: flow.protocol,
        direction,
        _pad: [0; 2],
    }
}

/// A live (not expired) entry for `key`, as a pointer into the map.
#[inline(always)]
pub fn lookup_v4(key: &CtKeyV4, now: u32) -> Option<*mut CtEntryV4> {
    let entry = CONNTRACK_V4.get_ptr_mut(key)?;
    // SAFETY: a map value pointer, valid for this program run.
    if expired(unsafe { &*entry }, key.protocol, now) { None } else { Some(entry) }
}

/// Records a packet on `entry`: refreshes `last_seen`, sets `extra` flags and, for a
/// TCP FIN/RST, `CLOSING`. Returns the new flags.
#[inline(always)]
pub fn touch(entry: *mut CtEntryV4, flow: &Ipv4Flow, extra: u16, now: u32) -> u16 {
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
pub fn sync_peer(peer: &CtKeyV4, flags: u16, now: u32) {
    if let Some(entry) = CONNTRACK_V4.get_ptr_mut(peer) {
        // SAFETY: as in `touch`.
        unsafe {
            (*entry).flags |= flags & (ct_flags::CLOSING | ct_flags::SEEN_REPLY);
            (*entry).last_seen_secs = now;
        }
    }
}

/// The reply key of a connection whose replies come from `backend` to `to`.
#[inline(always)]
pub fn reply_key_v4(
    backend_addr: u32,
    backend_port: u16,
    to_addr: u32,
    to_port: u16,
    protocol: u8,
) -> CtKeyV4 {
    CtKeyV4 {
        src_addr: backend_addr,
        dst_addr: to_addr,
        src_port: backend_port,
        dst_port: to_port,
        protocol,
        direction: CT_DIR_REPLY,
        _pad: [0; 2],
    }
}

/// The original key of the connection an entry describes.
#[inline(always)]
pub fn original_key_v4(entry: &CtEntryV4, protocol: u8) -> CtKeyV4 {
    CtKeyV4 {
        src_addr: entry.orig_src_addr,
        dst_addr: entry.orig_dst_addr,
        src_port: entry.orig_src_port,
        dst_port: entry.orig_dst_port,
        protocol,
        direction: CT_DIR_ORIGINAL,
        _pad: [0; 2],
    }
}

/// Claims the reply entry for a connection whose source is translated to
/// `snat_addr`: the client's own port when that reply tuple is free (a fully random
/// port would collide with TIME_WAIT sockets on the backend under load), else a few
/// random ports of the ephemeral range. A tuple held by an expired entry counts as free.
/// Returns the port.
#[inline(always)]
pub fn claim_snat_v4(
    entry: &mut CtEntryV4,
    backend_addr: u32,
    backend_port: u16,
    snat_addr: u32,
    client_port: u16,
    protocol: u8,
    now: u32,
) -> Result<u16, DropReason> {
    let mut port = client_port;
    let mut attempt = 0;
    while attempt <= SNAT_RETRIES {
        if attempt > 0 {
            // SAFETY: the helper has no preconditions.
            let random = unsafe { bpf_get_prandom_u32() } % SNAT_PORT_SPAN;
            port = ((SNAT_PORT_MIN + random) as u16).to_be();
        }
        entry.nat_port = port;
        let key = reply_key_v4(backend_addr, backend_port, snat_addr, port, protocol);
        if CONNTRACK_V4.insert(key, *entry, u64::from(BPF_NOEXIST)).is_ok() {
            return Ok(port);
        }
        if lookup_v4(&key, now).is_none() {
            // Held by an expired connection: take it over.
            if CONNTRACK_V4.insert(key, *entry, 0).is_ok() {
                return Ok(port);
            }
        }
        attempt += 1;
    }
    Err(DROP_CT_CREATE_FAILED)
}

/// Stores an entry (original or reply).
#[inline(always)]
pub fn store_v4(key: &CtKeyV4, entry: &CtEntryV4) -> Result<(), DropReason> {
    CONNTRACK_V4.insert(key, entry, 0).map_err(|_| DROP_CT_CREATE_FAILED)
}
