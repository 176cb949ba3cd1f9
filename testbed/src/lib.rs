//! Waggle's network-namespace test bed: a small cluster network on one machine.
//!
//! Every data-path and cluster test builds a [`TestBed`]; it is also the network of the
//! local cluster. Start reading at [`TestBed::builder`].
//!
//! # Topology
//!
//! ```text
//!                      fabric netns: bridge br0 (no address)
//!            ┌──────────────┬───────────────┬───────────────────┐
//!          port n0        port n1   ...   port ext
//!            │ veth         │ veth          │ veth
//!   node0 netns: eth0    node1 netns: eth0     external netns: eth0
//!   10.250.0.1/24        10.250.0.2/24         10.250.0.200/24
//!   fd00:250::1/64       fd00:250::2/64        fd00:250::200/64
//!     │ wgp0 (169.254.1.1/32, fe80::1/64)       routes: only the fabric subnet
//!     │ veth
//!   pod netns: eth0 10.244.0.2/32, fd00:244:0::2/128
//! ```
//!
//! * Node `i` has fabric address `10.250.0.(i+1)` / `fd00:250::(i+1)` on its uplink
//!   `eth0`, podCIDR `10.244.i.0/24` / `fd00:244:i::/64`, forwarding on, and a route
//!   to every other node's podCIDR via that node's fabric address.
//! * The `k`-th pod added to node `i` gets `10.244.i.(k+2)` / `fd00:244:i::(k+2)` on its
//!   `eth0`; its host side `wgp<k>` lives in the node namespace with a host route
//!   (`/32`, `/128`, source = node address) to the pod. Like Calico, every host veth
//!   carries the gateway `169.254.1.1` and `fe80::1`; a pod routes `10.244.0.0/16`,
//!   `10.250.0.0/24`, `fd00:244::/32` and `fd00:250::/64` via it (plus any
//!   [`TestBedBuilder::pod_route`]). Pod-to-pod traffic on one node is routed by
//!   the node, so programs on `wgp<k>` see it.
//! * The external client (`10.250.0.200`, `fd00:250::200`) reaches node addresses
//!   (NodePorts), nothing else.
//!
//! # Isolation
//!
//! No namespace has a default route: a connect() to an address outside these
//! prefixes (a service VIP such as 10.96.0.1 without a load balancer, 192.0.2.1)
//! fails with `ENETUNREACH` inside the namespace. Links are created directly inside
//! the bed's namespaces, never in the root namespace; the only objects outside them
//! are the namespace handles `/run/netns/wgtb-<pid>-<n>-*` and the run directory
//! `/run/wgtb-<pid>-<n>/` with the bed's private cgroup2 mount (`cgroup/`) and a
//! private BPF filesystem (`bpf/`).
//!
//! # Names, cgroups and clean-up
//!
//! Objects are named `wgtb-<pid>-<n>-...` (`-fabric`, `-node0`, `-ext`,
//! `-n<node>-<pod>`); the pid tells which process owns them. The cgroups are
//! `<cgroup mount>/wgtb-<pid>-<n>/node<i>/<pod>`: BPF attached to a node cgroup sees
//! that node's pods ([`Pod::command`] puts its child into the pod cgroup). Dropping
//! the bed (also during a panic) kills its processes, removes cgroups, namespaces,
//! registered pin directories, mounts and the run directory; building a bed first
//! sweeps leftovers whose owner pid is dead ([`sweep::sweep`]).
//!
//! # Traffic
//!
//! [`probe`] is `netprobe`, a small JSON-speaking client/server (binary
//! `netprobe` in this crate and in `waggle-tests`), and [`probe::Netprobe`] runs it
//! in pods, nodes or the external client and parses its reports.
//!
//! # Example
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use waggle_testbed::{Netprobe, TestBed};
//!
//! # fn main() -> Result<(), waggle_testbed::TestBedError> {
//! let bed = TestBed::builder().nodes(2).external_client(true).build()?;
//! let web = bed.add_pod(1, "web-0")?;
//! let client = bed.add_pod(0, "client")?;
//! // In an integration test: Netprobe::at(env!("CARGO_BIN_EXE_netprobe")).
//! let probe = Netprobe::locate()?;
//! let _server = probe.serve(&bed, &web, "web-0", Some(8080), Some(8081))?;
//! let attempts = probe.tcp(&client, SocketAddr::new(web.address().into(), 8080), 3)?;
//! assert!(attempts.iter().all(|a| a.ok && a.id.as_deref() == Some("web-0")));
//! // tc/TCX attach, netlink or sockets inside a namespace:
//! let ifindex = bed.node(1).netns().run(|| nix::net::if_::if_nametoindex(web.host_veth()));
//! // Processes: `web.command(..)` joins the pod netns and cgroup; `bed.spawn` tracks it.
//! let mut sleep = web.command("sleep");
//! sleep.arg("60");
//! let _child = bed.spawn(sleep)?;
//! # let _ = ifindex;
//! # Ok(())
//! # }
//! ```

pub mod bed;
pub mod cgroup;
mod cmd;
pub mod error;
pub mod members;
pub mod names;
pub mod netns;
pub mod probe;
pub mod process;
pub mod runtime;
pub mod sweep;
pub mod topology;

pub use bed::{TestBed, TestBedBuilder};
pub use error::TestBedError;
pub use members::{External, Node, Place, Pod};
pub use netns::NetNs;
pub use probe::Netprobe;
pub use process::Spawned;
