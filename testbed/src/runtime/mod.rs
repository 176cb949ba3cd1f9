//! A container runtime for bed nodes, for the kubelet to drive: containerd with its
//! CRI plugin ([`containerd`]) and images made from what the machine has ([`images`]).

pub mod containerd;
pub mod images;

pub use containerd::{Containerd, unmount_below};
