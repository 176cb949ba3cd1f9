//! Waggle's per-node service proxy: the replacement for kube-proxy that programs the
//! eBPF load-balancing maps.
//!
//! The shape is kube-proxy's: sources ([`source`]: Kubernetes watchers or YAML files)
//! feed a [`tracker::ChangeTracker`] that only records per-object previous/current
//! pairs and nudges the [`runner`]; one [`sync::Syncer::sync`] turns the accumulated
//! changes into map writes. Inside a sync, [`translate`] (pure: Service +
//! EndpointSlices → frontends and backend sets, with [`endpoints`] choosing the
//! backends; on a helper thread for large syncs, see [`plans`]) feeds the
//! [`program::Programmer`], which keeps ids and slots stable, gives a frontend two
//! Services claim to one of them ([`claims`]) and marks changed entries in the desired
//! [`state::MapState`]; only those are written
//! (or, after a failure, everything that differs from the maps). [`dump`] renders map
//! contents as text for golden tests and `waggle bpf lb list`; [`daemon`] wires it all
//! to the real data path with metrics and health checks. The node itself is watched
//! through [`netlink`]: its addresses ([`node_addresses`], applied by the same sync)
//! and its pod interfaces ([`pod_interfaces`], which get the per-packet fallback).
//!
//! Start reading at [`translate`], then [`program`], then [`sync`].

pub mod claims;
pub mod daemon;
pub mod dump;
pub mod endpoints;
pub mod healthcheck;
pub mod ids;
pub mod maglev;
pub mod mem_maps;
pub mod metrics;
pub mod model;
pub mod netlink;
pub mod node_addresses;
pub mod plans;
pub mod pod_interfaces;
pub mod program;
pub mod runner;
pub mod slot_ranges;
pub mod source;
pub mod state;
pub mod sync;
pub mod tracker;
pub mod translate;
