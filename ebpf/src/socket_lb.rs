//! Socket-level load balancing: cgroup sock_addr hooks that translate a service
//! address into a backend address once per connect()/sendmsg(), before any packet
//! exists, and translate it back for getpeername()/recvmsg().
//!
//! | program          | hook                       | kernel    | does                          |
//! |------------------|----------------------------|-----------|-------------------------------|
//! | `sock4_connect`  | `cgroup/connect4`          | 4.17      | TCP/connected UDP: VIP→backend|
//! | `sock6_connect`  | `cgroup/connect6`          | 4.17      | same, IPv6                    |
//! | `sock4_sendmsg`  | `cgroup/sendmsg4`          | 4.18      | unconnected UDP: VIP→backend  |
//! | `sock6_sendmsg`  | `cgroup/sendmsg6`          | 4.18      | same, IPv6                    |
//! | `sock4_recvmsg`  | `cgroup/recvmsg4`          | 5.2       | recvfrom(): backend→VIP       |
//! | `sock6_recvmsg`  | `cgroup/recvmsg6`          | 5.2       | same, IPv6                    |
//! | `sock4_getpeer`  | `cgroup/getpeername4`      | 5.8       | getpeername(): backend→VIP    |
//! | `sock6_getpeer`  | `cgroup/getpeername6`      | 5.8       | same, IPv6                    |
//!
//! Helpers: `bpf_get_socket_cookie` (5.7 for sock_addr), `bpf_get_netns_cookie` (5.7),
//! `bpf_ktime_get_boot_ns` (5.8), `bpf_set_retval` (5.18, to refuse with ECONNREFUSED
//! instead of the default EPERM), `bpf_sk_storage_get` (the socket-local records below;
//! the map needs the object's BTF).
//!
//! connect4/connect6 keep the reverse translation in the socket's own storage
//! (`wg_sklb_v1`, freed with the socket): one record, since a socket has one peer.
//! sendmsg4/sendmsg6 (unconnected UDP, which may reach several services and backends
//! from one socket) record `{socket cookie, backend} → service` in
//! `wg_srnat4_v1`/`wg_srnat6_v1` and flag the socket's storage. The reverse hooks
//! rewrite only an address that matches such a record, so other peers of the same
//! socket are left alone; a socket without storage (every socket that socket LB never
//! translated, e.g. each one a server accepts) costs them one pointer check.
//! A service without backends is refused at once (ECONNREFUSED) and counted under its
//! drop reason. A destination that is no service is left untouched.

// Map keys and values are passed by reference on purpose: the BPF stack is 512 bytes
// and a by-value argument is one more copy of a key on it.
#![allow(clippy::needless_borrows_for_generic_args)]

use core::ptr::{addr_of, addr_of_mut};

use aya_ebpf::{
    EbpfContext,
    bindings::bpf_sock_addr,
    helpers::{bpf_get_netns_cookie, bpf_get_socket_cookie, bpf_set_retval},
    macros::cgroup_sock_addr,
    programs::SockAddrContext,
};
use waggle_ebpf_common::{
    drop::{DROP_SOCK_REV_NAT_FULL, DropReason},
    lb::{
        AFFINITY_BY_NETNS, BackendV4, PROTO_UDP, ServiceValue, SockLbRecord, SockRevNatKeyV4,
        SockRevNatKeyV6, SockRevNatV4, SockRevNatV6, service_flags, sock_lb_family, sock_lb_flags,
    },
};

use crate::{
    lb::{self, AffinityClient, Client, V4, V6},
    maps::{SOCK_LB, SOCK_REV_NAT_V4, SOCK_REV_NAT_V6, count_drop},
};

/// `ECONNREFUSED` from `<errno.h>`.
const ECONNREFUSED: i32 = 111;

/// sock_addr verdicts: 1 lets the syscall proceed, 0 fails it (with the errno set by
/// `bpf_set_retval`, EPERM otherwise).
const ALLOW: i32 = 1;
const REFUSE: i32 = 0;

#[cgroup_sock_addr(connect4)]
pub fn sock4_connect(ctx: SockAddrContext) -> i32 {
    verdict(&ctx, forward4(&ctx, false))
}

#[cgroup_sock_addr(sendmsg4)]
pub fn sock4_sendmsg(ctx: SockAddrContext) -> i32 {
    verdict(&ctx, forward4(&ctx, true))
}

#[cgroup_sock_addr(connect6)]
pub fn sock6_connect(ctx: SockAddrContext) -> i32 {
    verdict(&ctx, forward6(&ctx, false))
}

#[cgroup_sock_addr(sendmsg6)]
pub fn sock6_sendmsg(ctx: SockAddrContext) -> i32 {
    verdict(&ctx, forward6(&ctx, true))
}

#[cgroup_sock_addr(recvmsg4)]
pub fn sock4_recvmsg(ctx: SockAddrContext) -> i32 {
    reverse4(&ctx);
    // recvmsg hooks must return 1.
    ALLOW
}

#[cgroup_sock_addr(getpeername4)]
pub fn sock4_getpeer(ctx: SockAddrContext) -> i32 {
    reverse4(&ctx);
    // getpeername hooks must return 1.
    ALLOW
}

#[cgroup_sock_addr(recvmsg6)]
pub fn sock6_recvmsg(ctx: SockAddrContext) -> i32 {
    reverse6(&ctx);
    ALLOW
}

#[cgroup_sock_addr(getpeername6)]
pub fn sock6_getpeer(ctx: SockAddrContext) -> i32 {
    reverse6(&ctx);
    ALLOW
}

/// Turns the result of a forward translation into the hook's verdict: a drop reason
/// refuses the syscall with ECONNREFUSED and is counted.
#[inline(always)]
fn verdict(_ctx: &SockAddrContext, result: Result<(), DropReason>) -> i32 {
    match result {
        Ok(()) => ALLOW,
        Err(reason) => {
            count_drop(reason);
            // SAFETY: cgroup programs may set the syscall's return value (5.18).
            unsafe { bpf_set_retval(-ECONNREFUSED) };
            REFUSE
        }
    }
}

/// Field access to the `bpf_sock_addr` context. The verifier allows 4-byte loads and
/// stores of these fields (8-byte ones of `user_ip6`); volatile accesses keep the
/// compiler from merging or splitting them.
struct Sa(*mut bpf_sock_addr);

impl Sa {
    #[inline(always)]
    fn ip4(&self) -> u32 {
        // SAFETY: the context pointer is valid for the program's run.
        unsafe { addr_of!((*self.0).user_ip4).read_volatile() }
    }
    #[inline(always)]
    fn set_ip4(&self, address: u32) {
        // SAFETY: as above; user_ip4 is writable in connect/sendmsg/recvmsg/getpeername.
        unsafe { addr_of_mut!((*self.0).user_ip4).write_volatile(address) }
    }
    /// Network-order port (the low 16 bits of `user_port` hold the big-endian port).
    #[inline(always)]
    fn port(&self) -> u16 {
        // SAFETY: as above.
        unsafe { addr_of!((*self.0).user_port).read_volatile() as u16 }
    }
    #[inline(always)]
    fn set_port(&self, port: u16) {
        // SAFETY: as above.
        unsafe { addr_of_mut!((*self.0).user_port).write_volatile(u32::from(port)) }
    }
    /// The IPv6 address as the words of `user_ip6` (memory order).
    #[inline(always)]
    fn ip6_words(&self) -> [u32; 4] {
        let mut out = [0u32; 4];
        for (i, word) in out.iter_mut().enumerate() {
            // SAFETY: as above.
            *word = unsafe { addr_of!((*self.0).user_ip6[i]).read_volatile() };
        }
        out
    }
    #[inline(always)]
    fn set_ip6_words(&self, address: &[u32; 4]) {
        for (i, word) in address.iter().enumerate() {
            // SAFETY: as above.
            unsafe { addr_of_mut!((*self.0).user_ip6[i]).write_volatile(*word) };
        }
    }
    #[inline(always)]
    fn protocol(&self) -> u8 {
        // SAFETY: as above.
        unsafe { addr_of!((*self.0).protocol).read_volatile() as u8 }
    }
}

/// An IPv6 address from `user_ip6` words to bytes (network order), the services-map form.
#[inline(always)]
fn to_bytes(words: &[u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, word) in words.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
    }
    out
}

/// An IPv6 address from bytes to `user_ip6` words.
#[inline(always)]
fn to_words(bytes: &[u8; 16]) -> [u32; 4] {
    let mut out = [0u32; 4];
    for (i, word) in out.iter_mut().enumerate() {
        *word = u32::from_ne_bytes([
            bytes[i * 4],
            bytes[i * 4 + 1],
            bytes[i * 4 + 2],
            bytes[i * 4 + 3],
        ]);
    }
    out
}

/// Word-wise equality (no `bcmp` call, which BPF does not have).
#[inline(always)]
fn same(a: &[u32; 4], b: &[u32; 4]) -> bool {
    (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) == 0
}

/// The affinity identity of a socket LB client, its network namespace, for a service
/// with session affinity; `None` otherwise, so the netns cookie is computed only when
/// [`lb::select`] will use it.
#[inline(always)]
fn netns_client(ctx: &SockAddrContext, service: &ServiceValue) -> Option<AffinityClient> {
    if service.flags & service_flags::AFFINITY == 0 {
        return None;
    }
    // SAFETY: sock_addr programs may call bpf_get_netns_cookie (5.7).
    let cookie = unsafe { bpf_get_netns_cookie(ctx.as_ptr()) };
    let mut client = [0u8; 16];
    client[..8].copy_from_slice(&cookie.to_le_bytes());
    Some(AffinityClient {
        client,
        kind: AFFINITY_BY_NETNS,
    })
}

#[inline(always)]
fn socket_cookie(ctx: &SockAddrContext) -> u64 {
    // SAFETY: sock_addr programs may call bpf_get_socket_cookie (5.7).
    unsafe { bpf_get_socket_cookie(ctx.as_ptr()) }
}

/// A connected socket's reverse translation, kept in its socket storage.
struct Connected {
    family: u8,
    backend: [u32; 4],
    backend_port: u16,
    service: [u32; 4],
    service_port: u16,
    rev_nat_index: u16,
}

/// connect(): stores `record` in the socket's storage (created on first use). Flags
/// already set (an earlier datagram send) are kept. The translation happens even
/// when the storage cannot be allocated; that is counted, and getpeername() will then
/// show the backend.
#[inline(always)]
fn record_connected(ctx: &SockAddrContext, record: &Connected) {
    // SAFETY: the storage of the context's socket; valid for this run.
    let stored = unsafe { SOCK_LB.get_or_insert_ptr_mut(ctx, None) };
    if stored.is_null() {
        count_drop(DROP_SOCK_REV_NAT_FULL);
        return;
    }
    // SAFETY: non-null storage of this socket, written field by field.
    unsafe {
        (*stored).backend = record.backend;
        (*stored).backend_port = record.backend_port;
        (*stored).service = record.service;
        (*stored).service_port = record.service_port;
        (*stored).rev_nat_index = record.rev_nat_index;
        (*stored).family = record.family;
    }
}

/// sendmsg(): marks the socket as having datagram records in the reverse-NAT LRU maps,
/// so that recvmsg() of this socket looks there. False when the storage cannot be
/// allocated (recvfrom() would then show the backend).
#[inline(always)]
fn mark_datagrams(ctx: &SockAddrContext) -> bool {
    // SAFETY: as in `record_connected`.
    let stored = unsafe { SOCK_LB.get_or_insert_ptr_mut(ctx, None) };
    if stored.is_null() {
        return false;
    }
    // SAFETY: non-null storage of this socket.
    unsafe {
        if (*stored).flags & sock_lb_flags::DATAGRAMS == 0 {
            (*stored).flags |= sock_lb_flags::DATAGRAMS;
        }
    }
    true
}

/// The socket's storage, copied out; `None` (one pointer check) for every socket
/// that socket LB never translated.
#[inline(always)]
fn stored(ctx: &SockAddrContext) -> Option<SockLbRecord> {
    // SAFETY: lookup without creation; the value is copied out at once.
    let stored = unsafe { SOCK_LB.get_ptr_mut(ctx) };
    if stored.is_null() {
        None
    } else {
        // SAFETY: non-null storage of this socket.
        Some(unsafe { *stored })
    }
}

/// connect4/sendmsg4: translate a service destination into a backend.
#[inline(always)]
fn forward4(ctx: &SockAddrContext, sendmsg: bool) -> Result<(), DropReason> {
    let sa = Sa(ctx.sock_addr);
    let (address, port, protocol) = (sa.ip4(), sa.port(), sa.protocol());
    let Some(service) = lb::lookup_any::<V4>(address, port, protocol) else {
        return Ok(());
    };
    let chosen = lb::select::<V4>(&service, Client::InNode, netns_client(ctx, &service.value))?;
    let rev_nat_index = service.value.rev_nat_index;
    let new_flow = if sendmsg {
        record_datagram4(ctx, address, port, &chosen.backend, rev_nat_index)
    } else {
        record_connected(
            ctx,
            &Connected {
                family: sock_lb_family::V4,
                backend: [chosen.backend.address, 0, 0, 0],
                backend_port: chosen.backend.port,
                service: [address, 0, 0, 0],
                service_port: port,
                rev_nat_index,
            },
        );
        // A connect() is always a new flow.
        true
    };
    sa.set_ip4(chosen.backend.address);
    sa.set_port(chosen.backend.port);
    count_translation(rev_nat_index, new_flow, sendmsg && protocol == PROTO_UDP);
    Ok(())
}

/// Counts one translation in the service's metrics: a connection when it starts a new
/// flow, a packet when it is an unconnected UDP send.
#[inline(always)]
fn count_translation(rev_nat_index: u16, new_flow: bool, datagram: bool) {
    lb::count_service(rev_nat_index, u64::from(new_flow), u64::from(datagram), 0);
}

/// sendmsg4: records `{socket cookie, backend} → service` in the LRU map unless the
/// same record exists. True when it did not: the first datagram of this socket to
/// this backend, a new flow.
#[inline(always)]
fn record_datagram4(
    ctx: &SockAddrContext,
    address: u32,
    port: u16,
    backend: &BackendV4,
    rev_nat_index: u16,
) -> bool {
    if !mark_datagrams(ctx) {
        count_drop(DROP_SOCK_REV_NAT_FULL);
    }
    let key = SockRevNatKeyV4 {
        cookie: socket_cookie(ctx),
        address: backend.address,
        port: backend.port,
        _pad: 0,
    };
    let value = SockRevNatV4 {
        address,
        port,
        rev_nat_index,
    };
    // SAFETY: copied out at once.
    let existing = unsafe { SOCK_REV_NAT_V4.get(&key).copied() };
    if existing == Some(value) {
        return false;
    }
    if SOCK_REV_NAT_V4.insert(&key, &value, 0).is_err() {
        count_drop(DROP_SOCK_REV_NAT_FULL);
    }
    existing.is_none()
}

/// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
#[inline(always)]
fn v4_mapped(address: &[u32; 4]) -> Option<u32> {
    (address[0] | address[1] == 0 && address[2] == u32::from_ne_bytes([0, 0, 0xff, 0xff]))
        .then_some(address[3])
}

/// `::ffff:a.b.c.d` for an IPv4 address (network order), as `user_ip6` words.
#[inline(always)]
fn mapped(v4: u32) -> [u32; 4] {
    [0, 0, u32::from_ne_bytes([0, 0, 0xff, 0xff]), v4]
}

/// connect6/sendmsg6: translate a service destination into a backend. A dual-stack
/// socket's IPv4-mapped destination (`::ffff:10.96.0.10`) uses the IPv4 services and
/// gets an IPv4-mapped backend.
#[inline(always)]
fn forward6(ctx: &SockAddrContext, sendmsg: bool) -> Result<(), DropReason> {
    let sa = Sa(ctx.sock_addr);
    let (address, port, protocol) = (sa.ip6_words(), sa.port(), sa.protocol());
    let (backend_address, backend_port, rev_nat_index) = match v4_mapped(&address) {
        Some(v4) => {
            let Some(service) = lb::lookup_any::<V4>(v4, port, protocol) else {
                return Ok(());
            };
            let chosen =
                lb::select::<V4>(&service, Client::InNode, netns_client(ctx, &service.value))?;
            (
                mapped(chosen.backend.address),
                chosen.backend.port,
                service.value.rev_nat_index,
            )
        }
        None => {
            let Some(service) = lb::lookup_any::<V6>(to_bytes(&address), port, protocol) else {
                return Ok(());
            };
            let chosen =
                lb::select::<V6>(&service, Client::InNode, netns_client(ctx, &service.value))?;
            (
                to_words(&chosen.backend.address),
                chosen.backend.port,
                service.value.rev_nat_index,
            )
        }
    };
    let new_flow = if sendmsg {
        record_datagram6(
            ctx,
            &address,
            port,
            &backend_address,
            backend_port,
            rev_nat_index,
        )
    } else {
        record_connected(
            ctx,
            &Connected {
                family: sock_lb_family::V6,
                backend: backend_address,
                backend_port,
                service: address,
                service_port: port,
                rev_nat_index,
            },
        );
        true
    };
    sa.set_ip6_words(&backend_address);
    sa.set_port(backend_port);
    count_translation(rev_nat_index, new_flow, sendmsg && protocol == PROTO_UDP);
    Ok(())
}

/// sendmsg6: as [`record_datagram4`], in the IPv6 map.
#[inline(always)]
fn record_datagram6(
    ctx: &SockAddrContext,
    address: &[u32; 4],
    port: u16,
    backend_address: &[u32; 4],
    backend_port: u16,
    rev_nat_index: u16,
) -> bool {
    if !mark_datagrams(ctx) {
        count_drop(DROP_SOCK_REV_NAT_FULL);
    }
    let key = SockRevNatKeyV6 {
        cookie: socket_cookie(ctx),
        address: to_bytes(backend_address),
        port: backend_port,
        _pad: [0; 6],
    };
    let value = SockRevNatV6 {
        address: to_bytes(address),
        port,
        rev_nat_index,
    };
    // SAFETY: copied out at once.
    let existing = unsafe { SOCK_REV_NAT_V6.get(&key).copied() };
    if existing == Some(value) {
        return false;
    }
    if SOCK_REV_NAT_V6.insert(&key, &value, 0).is_err() {
        count_drop(DROP_SOCK_REV_NAT_FULL);
    }
    existing.is_none()
}

/// recvmsg4/getpeername4: show the service address instead of the backend.
///
/// A socket without storage was never translated: done. Otherwise its connected
/// record, then (only if it sent translated datagrams) the LRU map.
#[inline(always)]
fn reverse4(ctx: &SockAddrContext) {
    let Some(record) = stored(ctx) else {
        return;
    };
    let sa = Sa(ctx.sock_addr);
    let (address, port) = (sa.ip4(), sa.port());
    if record.family == sock_lb_family::V4
        && record.backend[0] == address
        && record.backend_port == port
    {
        sa.set_ip4(record.service[0]);
        sa.set_port(record.service_port);
        return;
    }
    if record.flags & sock_lb_flags::DATAGRAMS == 0 {
        return;
    }
    let key = SockRevNatKeyV4 {
        cookie: socket_cookie(ctx),
        address,
        port,
        _pad: 0,
    };
    // SAFETY: copied out at once.
    if let Some(service) = unsafe { SOCK_REV_NAT_V4.get(&key).copied() } {
        sa.set_ip4(service.address);
        sa.set_port(service.port);
    }
}

/// recvmsg6/getpeername6: show the service address instead of the backend.
///
/// An IPv4-mapped peer may have been translated by the IPv4 hooks (the kernel hands
/// a dual-stack socket's AF_INET connect() and its unconnected UDP send to the IPv4
/// hooks), so an IPv4 record matches the IPv4 address inside a mapped peer.
#[inline(always)]
fn reverse6(ctx: &SockAddrContext) {
    let Some(record) = stored(ctx) else {
        return;
    };
    let sa = Sa(ctx.sock_addr);
    let (address, port) = (sa.ip6_words(), sa.port());
    let inner_v4 = v4_mapped(&address);
    if record.backend_port == port {
        if record.family == sock_lb_family::V6 && same(&record.backend, &address) {
            sa.set_ip6_words(&record.service);
            sa.set_port(record.service_port);
            return;
        }
        if record.family == sock_lb_family::V4 && inner_v4 == Some(record.backend[0]) {
            sa.set_ip6_words(&mapped(record.service[0]));
            sa.set_port(record.service_port);
            return;
        }
    }
    if record.flags & sock_lb_flags::DATAGRAMS == 0 {
        return;
    }
    let cookie = socket_cookie(ctx);
    let key = SockRevNatKeyV6 {
        cookie,
        address: to_bytes(&address),
        port,
        _pad: [0; 6],
    };
    // SAFETY: copied out at once.
    if let Some(service) = unsafe { SOCK_REV_NAT_V6.get(&key).copied() } {
        sa.set_ip6_words(&to_words(&service.address));
        sa.set_port(service.port);
    } else if let Some(v4) = inner_v4 {
        let key = SockRevNatKeyV4 {
            cookie,
            address: v4,
            port,
            _pad: 0,
        };
        // SAFETY: copied out at once.
        if let Some(service) = unsafe { SOCK_REV_NAT_V4.get(&key).copied() } {
            sa.set_ip6_words(&mapped(service.address));
            sa.set_port(service.port);
        }
    }
}
