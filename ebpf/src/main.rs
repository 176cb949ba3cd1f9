//! Waggle's kernel programs, one ELF object loaded by `waggle-datapath`.
//!
//! One module per attach point, plus shared single-topic modules; each entry point is
//! thin and calls a fallible `try_*` function whose error becomes the program's verdict.
//! Map types come from `waggle-ebpf-common`, the single definition shared with userspace.
//!
//! - `maps`: every map shared by the service programs, declared once (pinned by name)
//! - `lb`: service lookup, backend selection, affinity (shared by every attach point)
//! - `socket_lb`: cgroup sock_addr hooks (connect, sendmsg, recvmsg, getpeername)
//! - `family`: what differs between IPv4 and IPv6 (`Family`, `V4`, `V6`); the modules
//!   below are written once, generic over it
//! - `nodeport`: tc programs for traffic socket LB cannot see (NodePort from outside,
//!   pods without socket LB), built from `packet`/`packet6` (header parsing),
//!   `conntrack` (CT entries, SNAT ports), `nat` (rewrites, checksums, FIB forwarding)
//!   and `maglev` (consistent backend choice)
//! - `counters`: per-interface packet counters
#![no_std]
#![no_main]

mod conntrack;
mod counters;
mod family;
mod lb;
mod maglev;
mod maps;
mod nat;
mod nodeport;
mod packet;
mod packet6;
mod socket_lb;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any path that could reach here; this is never executed.
    loop {}
}
