//! Waggle's kernel programs, one ELF object loaded by `waggle-datapath`.
//!
//! One module per attach point, plus shared single-topic modules; each entry point is
//! thin and calls a fallible `try_*` function whose error becomes the program's verdict.
//! Map types come from `waggle-ebpf-common`, the single definition shared with userspace.
//!
//! - `lb`: service lookup, backend selection, affinity (shared by every attach point)
//! - `socket_lb`: cgroup sock_addr hooks (connect, sendmsg, recvmsg, getpeername)
//! - `nodeport`: tc programs for traffic socket LB cannot see (NodePort from outside)
//! - `counters`: per-interface packet counters
#![no_std]
#![no_main]

mod counters;
mod lb;
mod nodeport;
mod socket_lb;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any path that could reach here; this is never executed.
    loop {}
}
