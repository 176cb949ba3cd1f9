//! Userspace side of Waggle's eBPF data path.
//!
//! [`object`] holds the BPF object compiled from `ebpf/` and embedded at build time;
//! [`load`] turns it into a live [`aya::Ebpf`] with clear errors for what the kernel
//! or the process lacks. [`socket_lb`] and [`nodeport`] attach the service programs ([`pod`]: the
//! per-packet program of a pod veth);
//! [`lb_maps`] reads and writes the load-balancing maps. Start at [`load::Datapath`].

// aya's error types make `DatapathError` large; errors here are rare and cold (set-up
// time), so boxing every source would cost clarity for nothing.
#![allow(clippy::result_large_err)]

mod array_table;
pub mod batch;
pub mod error;
pub mod lb_maps;
mod link;
pub mod load;
mod map_layout;
pub mod nodeport;
pub mod object;
pub mod pod;
pub mod socket_lb;

pub use error::DatapathError;
pub use load::Datapath;
