//! Userspace side of Waggle's eBPF data path.
//!
//! [`object`] holds the BPF object compiled from `ebpf/` and embedded at build time;
//! [`load`] turns it into a live [`aya::Ebpf`] with clear errors for what the kernel
//! or the process lacks. [`socket_lb`] and [`nodeport`] attach the service programs;
//! [`lb_maps`] reads and writes the load-balancing maps. Start at [`load::Datapath`].

pub mod error;
pub mod lb_maps;
pub mod load;
pub mod nodeport;
pub mod object;
pub mod socket_lb;

pub use error::DatapathError;
pub use load::Datapath;
