//! Socket-level load balancing (`ebpf/src/socket_lb.rs`) with real sockets in a
//! namespace test bed: processes in a node's cgroup connect to service addresses that
//! exist nowhere on the network, and reach backends on every node.

mod affinity;
mod cluster_ip;
mod node_port;
mod pinning;
mod refusal;
mod support;
mod udp;

use std::net::Ipv4Addr;

/// The ClusterIP most tests use, and its port; backends listen on `BACKEND_PORT`.
const CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const PORT: u16 = 80;
const BACKEND_PORT: u16 = 8080;
