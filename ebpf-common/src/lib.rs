//! The one definition of every type that crosses the kernel/userspace boundary of
//! Waggle's eBPF data path.
//!
//! Kernel programs (`ebpf/`, `#![no_std]`) and the userspace side (`datapath/`,
//! `proxy/`) both depend on this crate, so a map key or value has exactly one layout.
//! Rules every type here follows (the aya/Cilium convention):
//! - `#[repr(C)]`, fixed-width integers, explicit padding fields, no `bool`, `enum` or
//!   `Option` in a map type;
//! - addresses and ports are stored in **network byte order** exactly as they appear in
//!   `struct sockaddr_in`/`bpf_sock_addr`, so the kernel side never swaps bytes;
//! - a layout change gets a new map name (`*_V1` → `*_V2`), never a reinterpretation
//!   of a pinned map.
//!
//! Start reading at [`lb`] (services and backends), then [`conntrack`], [`drop`].
#![no_std]

pub mod conntrack;
pub mod drop;
pub mod lb;
pub mod maps;
pub mod metrics;

#[cfg(feature = "user")]
mod pod_impls;
