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
//! instead of the default EPERM).
//!
//! The forward hooks record `{socket cookie, backend} → service` in
//! `wg_srnat4_v1`/`wg_srnat6_v1`; the reverse hooks rewrite only an address that
//! matches such a record, so other peers of the same socket are left alone.
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
        AFFINITY_BY_NETNS, PROTO_UDP, ServiceValue, SockRevNatKeyV4, SockRevNatKeyV6, SockRevNatV4,
        SockRevNatV6, service_flags,
    },
};

use crate::{
    lb::{self, AffinityClient, Client, V4, V6},
    maps::{SOCK_REV_NAT_V4, SOCK_REV_NAT_V6, count_drop},
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
    #[inline(always)]
    fn ip6(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        for i in 0..4 {
            // SAFETY: as above; user_ip6 words hold the address in memory order.
            let word = unsafe { addr_of!((*self.0).user_ip6[i]).read_volatile() };
            out[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
        }
        out
    }
    #[inline(always)]
    fn set_ip6(&self, address: &[u8; 16]) {
        for i in 0..4 {
            let word = u32::from_ne_bytes([
                address[i * 4],
                address[i * 4 + 1],
                address[i * 4 + 2],
                address[i * 4 + 3],
            ]);
            // SAFETY: as above.
            unsafe { addr_of_mut!((*self.0).user_ip6[i]).write_volatile(word) };
        }
    }
    #[inline(always)]
    fn protocol(&self) -> u8 {
        // SAFETY: as above.
        unsafe { addr_of!((*self.0).protocol).read_volatile() as u8 }
    }
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

/// connect4/sendmsg4: translate a service destination into a backend.
#[inline(always)]
fn forward4(ctx: &SockAddrContext, sendmsg: bool) -> Result<(), DropReason> {
    let sa = Sa(ctx.sock_addr);
    let (address, port, protocol) = (sa.ip4(), sa.port(), sa.protocol());
    let Some(service) = lb::lookup_any::<V4>(address, port, protocol) else {
        return Ok(());
    };
    let chosen = lb::select::<V4>(&service, Client::InNode, netns_client(ctx, &service.value))?;
    let key = SockRevNatKeyV4 {
        cookie: socket_cookie(ctx),
        address: chosen.backend.address,
        port: chosen.backend.port,
        _pad: 0,
    };
    let rev_nat_index = service.value.rev_nat_index;
    // A datagram send counts as a new flow only the first time this socket reaches
    // this backend; a connect() is always one.
    // SAFETY: presence test only.
    let new_flow = !sendmsg || unsafe { SOCK_REV_NAT_V4.get(&key).is_none() };
    let value = SockRevNatV4 {
        address,
        port,
        rev_nat_index,
    };
    if SOCK_REV_NAT_V4.insert(&key, &value, 0).is_err() {
        // The translation still happens; only getpeername()/recvfrom() will show the
        // backend. Counted so the condition is visible.
        count_drop(DROP_SOCK_REV_NAT_FULL);
    }
    sa.set_ip4(chosen.backend.address);
    sa.set_port(chosen.backend.port);
    lb::count_service(
        rev_nat_index,
        u64::from(new_flow),
        u64::from(sendmsg && protocol == PROTO_UDP),
        0,
    );
    Ok(())
}

/// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
#[inline(always)]
fn v4_mapped(address: &[u8; 16]) -> Option<u32> {
    let prefix = u64::from_ne_bytes([
        address[0], address[1], address[2], address[3], address[4], address[5], address[6],
        address[7],
    ]);
    let middle = u32::from_ne_bytes([address[8], address[9], address[10], address[11]]);
    (prefix == 0 && middle == u32::from_ne_bytes([0, 0, 0xff, 0xff]))
        .then(|| u32::from_ne_bytes([address[12], address[13], address[14], address[15]]))
}

/// `::ffff:a.b.c.d` for an IPv4 address (network order).
#[inline(always)]
fn mapped(v4: u32) -> [u8; 16] {
    let b = v4.to_ne_bytes();
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, b[0], b[1], b[2], b[3],
    ]
}

/// connect6/sendmsg6: translate a service destination into a backend. A dual-stack
/// socket's IPv4-mapped destination (`::ffff:10.96.0.10`) uses the IPv4 services and
/// gets an IPv4-mapped backend.
#[inline(always)]
fn forward6(ctx: &SockAddrContext, sendmsg: bool) -> Result<(), DropReason> {
    let sa = Sa(ctx.sock_addr);
    let (address, port, protocol) = (sa.ip6(), sa.port(), sa.protocol());
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
            let Some(service) = lb::lookup_any::<V6>(address, port, protocol) else {
                return Ok(());
            };
            let chosen =
                lb::select::<V6>(&service, Client::InNode, netns_client(ctx, &service.value))?;
            (
                chosen.backend.address,
                chosen.backend.port,
                service.value.rev_nat_index,
            )
        }
    };
    let key = SockRevNatKeyV6 {
        cookie: socket_cookie(ctx),
        address: backend_address,
        port: backend_port,
        _pad: [0; 6],
    };
    // SAFETY: presence test only.
    let new_flow = !sendmsg || unsafe { SOCK_REV_NAT_V6.get(&key).is_none() };
    let value = SockRevNatV6 {
        address,
        port,
        rev_nat_index,
    };
    if SOCK_REV_NAT_V6.insert(&key, &value, 0).is_err() {
        count_drop(DROP_SOCK_REV_NAT_FULL);
    }
    sa.set_ip6(&backend_address);
    sa.set_port(backend_port);
    lb::count_service(
        rev_nat_index,
        u64::from(new_flow),
        u64::from(sendmsg && protocol == PROTO_UDP),
        0,
    );
    Ok(())
}

/// recvmsg4/getpeername4: show the service address instead of the backend.
#[inline(always)]
fn reverse4(ctx: &SockAddrContext) {
    let sa = Sa(ctx.sock_addr);
    let key = SockRevNatKeyV4 {
        cookie: socket_cookie(ctx),
        address: sa.ip4(),
        port: sa.port(),
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
/// a dual-stack socket's unconnected UDP send to sendmsg4), so a miss in the IPv6
/// map falls back to the IPv4 one.
#[inline(always)]
fn reverse6(ctx: &SockAddrContext) {
    let sa = Sa(ctx.sock_addr);
    let cookie = socket_cookie(ctx);
    let (address, port) = (sa.ip6(), sa.port());
    let key = SockRevNatKeyV6 {
        cookie,
        address,
        port,
        _pad: [0; 6],
    };
    // SAFETY: copied out at once.
    if let Some(service) = unsafe { SOCK_REV_NAT_V6.get(&key).copied() } {
        sa.set_ip6(&service.address);
        sa.set_port(service.port);
    } else if let Some(v4) = v4_mapped(&address) {
        let key = SockRevNatKeyV4 {
            cookie,
            address: v4,
            port,
            _pad: 0,
        };
        // SAFETY: copied out at once.
        if let Some(service) = unsafe { SOCK_REV_NAT_V4.get(&key).copied() } {
            sa.set_ip6(&mapped(service.address));
            sa.set_port(service.port);
        }
    }
}
