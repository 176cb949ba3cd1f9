//! What the socket-LB tests share: a data path per node attached to the node's cgroup,
//! and a typed way to write services into its maps (through `lb_maps`, as the proxy
//! does).

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use waggle_datapath::{
    Datapath,
    lb_maps::{FrontendKey, LbMaps, PinnedLbMaps, write_frontend},
    socket_lb::SocketLb,
};
use waggle_ebpf_common::lb::{
    BackendV4, BackendV6, PROTO_TCP, SCOPE_EXTERNAL, SCOPE_INTERNAL, ServiceKeyV4, ServiceKeyV6,
    ServiceValue, SockRevNatKeyV4, SockRevNatV4, backend_flags, service_flags,
};
use waggle_testbed::{Netprobe, TestBed, probe::Attempt};

pub use waggle_ebpf_common::lb::PROTO_UDP;

pub fn netprobe() -> Netprobe {
    Netprobe::at(env!("CARGO_BIN_EXE_test-netprobe"))
}

pub fn load() -> Datapath {
    Datapath::load().unwrap_or_else(|error| {
        panic!(
            "loading Waggle's BPF object failed (needs root or CAP_BPF + CAP_NET_ADMIN and \
             the object built by `cargo xtask build`): {error}"
        )
    })
}

/// One service port as a test describes it.
#[derive(Clone, Debug)]
pub struct Svc {
    /// Service address (ClusterIP / externalIP), or `None` for a NodePort entry.
    pub address: Option<IpAddr>,
    pub port: u16,
    pub protocol: u8,
    pub rev_nat_index: u16,
    pub flags: u16,
    pub affinity_timeout: u32,
    /// Backends of the external scope (all of them for a one-scope service).
    pub backends: Vec<SocketAddr>,
    /// Backends of the internal scope: makes a `TWO_SCOPES` service.
    pub internal: Option<Vec<SocketAddr>>,
}

impl Svc {
    /// A TCP ClusterIP.
    pub fn cluster_ip(address: IpAddr, port: u16, rev_nat_index: u16) -> Self {
        Self {
            address: Some(address),
            port,
            protocol: PROTO_TCP,
            rev_nat_index,
            flags: service_flags::CLUSTER_IP,
            affinity_timeout: 0,
            backends: Vec::new(),
            internal: None,
        }
    }

    /// A NodePort entry (address 0) for `protocol`.
    pub fn node_port(port: u16, rev_nat_index: u16) -> Self {
        Self {
            address: None,
            port,
            protocol: PROTO_TCP,
            rev_nat_index,
            flags: service_flags::NODE_PORT,
            affinity_timeout: 0,
            backends: Vec::new(),
            internal: None,
        }
    }

    pub fn udp(mut self) -> Self {
        self.protocol = PROTO_UDP;
        self
    }

    pub fn backends(mut self, backends: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.backends = backends.into_iter().collect();
        self
    }

    /// Makes a two-scope service whose in-node clients use `backends`.
    pub fn internal(mut self, backends: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.internal = Some(backends.into_iter().collect());
        self
    }

    pub fn flags(mut self, flags: u16) -> Self {
        self.flags |= flags;
        self
    }

    pub fn affinity(mut self, timeout_secs: u32) -> Self {
        self.flags |= service_flags::AFFINITY;
        self.affinity_timeout = timeout_secs;
        self
    }
}

/// Backend ids are global to the process so services never share one by accident.
static NEXT_BACKEND: AtomicU32 = AtomicU32::new(1);
/// Slot ranges of the programmed services (index 0 is never used).
static NEXT_SLOT: AtomicU32 = AtomicU32::new(1);

fn be_port(port: u16) -> u16 {
    port.to_be()
}

fn v4(address: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(address.octets())
}

/// Writes `svc` (masters, slots and backends of each scope) into `maps`.
pub fn program(maps: &mut dyn LbMaps, svc: &Svc) {
    let mut flags = svc.flags;
    if svc.internal.is_some() {
        flags |= service_flags::TWO_SCOPES;
    }
    program_scope(maps, svc, SCOPE_EXTERNAL, &svc.backends, flags);
    if let Some(internal) = &svc.internal {
        program_scope(maps, svc, SCOPE_INTERNAL, internal, flags);
    }
}

fn program_scope(maps: &mut dyn LbMaps, svc: &Svc, scope: u8, backends: &[SocketAddr], flags: u16) {
    let master = ServiceValue {
        slot_base: NEXT_SLOT.fetch_add(backends.len().max(1) as u32, Ordering::Relaxed),
        rev_nat_index: svc.rev_nat_index,
        flags,
        affinity_timeout: svc.affinity_timeout,
        ..ServiceValue::default()
    };
    let v6 = matches!(svc.address, Some(IpAddr::V6(_)))
        || backends.first().is_some_and(SocketAddr::is_ipv6);
    let ids: Vec<u32> = backends
        .iter()
        .map(|_| NEXT_BACKEND.fetch_add(1, Ordering::Relaxed))
        .collect();
    for (id, backend) in ids.iter().zip(backends) {
        match backend.ip() {
            IpAddr::V4(address) => maps
                .backends_v4()
                .insert(
                    id,
                    &BackendV4 {
                        address: v4(address),
                        port: be_port(backend.port()),
                        protocol: svc.protocol,
                        flags: backend_flags::ACTIVE,
                    },
                )
                .expect("write backend"),
            IpAddr::V6(address) => maps
                .backends_v6()
                .insert(
                    id,
                    &BackendV6 {
                        address: address.octets(),
                        port: be_port(backend.port()),
                        protocol: svc.protocol,
                        flags: backend_flags::ACTIVE,
                    },
                )
                .expect("write backend"),
        }
    }
    let key = if v6 {
        FrontendKey::V6(ServiceKeyV6 {
            address: match svc.address {
                Some(IpAddr::V6(a)) => a.octets(),
                _ => [0; 16],
            },
            port: be_port(svc.port),
            protocol: svc.protocol,
            scope,
        })
    } else {
        FrontendKey::V4(ServiceKeyV4 {
            address: match svc.address {
                Some(IpAddr::V4(a)) => v4(a),
                _ => 0,
            },
            port: be_port(svc.port),
            protocol: svc.protocol,
            scope,
        })
    };
    write_frontend(maps, key, master, &ids).expect("write service");
}

/// Socket LB on every node of a bed: one data path per node (as each node runs its
/// own daemon), attached to the node's cgroup, so every pod and node process uses it.
pub struct ClusterLb {
    pub nodes: Vec<(Datapath, SocketLb)>,
}

impl ClusterLb {
    pub fn attach(bed: &TestBed) -> Self {
        let nodes = bed
            .nodes()
            .iter()
            .map(|node| {
                let mut datapath = load();
                let lb = datapath
                    .attach_socket_lb(node.cgroup())
                    .unwrap_or_else(|e| panic!("attach socket LB to {}: {e}", node.name()));
                let mut maps = PinnedLbMaps::from_ebpf(datapath.ebpf()).expect("open LB maps");
                maps.node_addrs_v4()
                    .insert(&v4(node.address()), &1)
                    .expect("node address");
                maps.node_addrs_v4()
                    .insert(&v4(Ipv4Addr::LOCALHOST), &1)
                    .expect("loopback");
                maps.node_addrs_v6()
                    .insert(&node.address_v6().octets(), &1)
                    .expect("node address v6");
                (datapath, lb)
            })
            .collect();
        Self { nodes }
    }

    /// Programs `svc` on every node.
    pub fn add(&self, svc: &Svc) {
        for (datapath, _) in &self.nodes {
            program(
                &mut PinnedLbMaps::from_ebpf(datapath.ebpf()).expect("open LB maps"),
                svc,
            );
        }
    }

    /// The LB maps of node `index`.
    pub fn maps(&self, index: usize) -> PinnedLbMaps {
        PinnedLbMaps::from_ebpf(self.nodes[index].0.ebpf()).expect("open LB maps")
    }

    /// Entries of node `index`'s IPv4 datagram reverse-NAT map (`wg_srnat4_v1`): one
    /// per (socket, backend) of translated unconnected sends; connected sockets keep
    /// theirs in socket storage instead.
    pub fn datagram_records_v4(&self, index: usize) -> usize {
        let name = waggle_ebpf_common::maps::SOCK_REV_NAT_V4;
        let map = self.nodes[index].0.ebpf().map(name).expect("datagram map");
        let map = aya::maps::HashMap::<_, SockRevNatKeyV4, SockRevNatV4>::try_from(map)
            .expect("an LRU hash map");
        map.keys().map(|key| key.expect("read a key")).count()
    }
}

/// Drop counter of `reason` summed over CPUs.
pub fn drops(maps: &PinnedLbMaps, reason: u32) -> u64 {
    maps.drop_counters()
        .expect("read drop counters")
        .into_iter()
        .find(|(r, _)| *r == reason)
        .map_or(0, |(_, n)| n)
}

/// How many attempts reached each server id; panics on a failed attempt.
pub fn spread(attempts: &[Attempt]) -> BTreeMap<String, usize> {
    waggle_testbed::probe::spread(attempts, "socket LB")
}

/// A pin directory `wgtest-<pid>-<n>` on the bed's private BPF filesystem (this machine
/// has no bpffs on /sys/fs/bpf), registered with the bed (removed with it, or by the
/// sweep after a crash) and removed on drop.
pub struct PinDir(PathBuf);

impl PinDir {
    pub fn new(bed: &TestBed) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = bed.bpf_dir().join(format!(
            "wgtest-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        bed.register_pin_dir(&path).expect("register pin dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = waggle_datapath::socket_lb::detach_pinned(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
