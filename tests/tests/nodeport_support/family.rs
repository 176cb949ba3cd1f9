//! Address-family-generic helpers, so one test body runs for IPv4 and IPv6: the
//! addresses of bed members, services and backends programmed into the right maps, and
//! servers bound to the right address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::{Result, bail, ensure};
use waggle_ebpf_common::conntrack::CtEntry;
use waggle_testbed::{External, Pod, TestBed};

use super::{BACKEND_PORT, Client, NodeDatapath, ServiceSpec, TcpServer, UdpServer};

/// IPv4 or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ip {
    V4,
    V6,
}

/// Both families, for tests that run once per family.
pub const BOTH: [Ip; 2] = [Ip::V4, Ip::V6];

impl Ip {
    /// Node `index`'s uplink address.
    pub fn node(self, bed: &TestBed, index: usize) -> IpAddr {
        let node = bed.node(index);
        self.pick(node.address(), node.address_v6())
    }

    pub fn pod(self, pod: &Pod) -> IpAddr {
        self.pick(pod.address(), pod.address_v6())
    }

    pub fn external(self, external: &External) -> IpAddr {
        self.pick(external.address(), external.address_v6())
    }

    /// `v4` or `v6`, whichever is this family's.
    pub fn pick(self, v4: Ipv4Addr, v6: Ipv6Addr) -> IpAddr {
        match self {
            Ip::V4 => IpAddr::V4(v4),
            Ip::V6 => IpAddr::V6(v6),
        }
    }

    /// How a server prints a peer of this family: `1.2.3.4:` or `[fd00::1]:`.
    pub fn peer_prefix(self, address: IpAddr) -> String {
        match self {
            Ip::V4 => format!("{address}:"),
            Ip::V6 => format!("[{address}]:"),
        }
    }

    /// A ClusterIP-style service at `address:port`.
    pub fn service(
        self,
        address: IpAddr,
        port: u16,
        protocol: u8,
        rev_nat_index: u16,
        flags: u16,
    ) -> Result<ServiceSpec> {
        let (v4, v6) = match address {
            IpAddr::V4(a) if self == Ip::V4 => (Some(a), None),
            IpAddr::V6(a) if self == Ip::V6 => (None, Some(a)),
            other => bail!("{other} is not an {self:?} address"),
        };
        Ok(ServiceSpec {
            address: v4,
            address_v6: v6,
            port,
            protocol,
            rev_nat_index,
            flags,
            affinity_timeout: 0,
        })
    }
}

/// `address:port` as a socket address.
pub fn socket(address: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(address, port)
}

impl NodeDatapath {
    /// [`NodeDatapath::add_backend`] or [`NodeDatapath::add_backend_v6`].
    pub fn add_backend_ip(&mut self, ip: Ip, id: u32, pod: &Pod, protocol: u8) -> Result<()> {
        match ip {
            Ip::V4 => self.add_backend(id, pod, protocol),
            Ip::V6 => self.add_backend_v6(id, pod, protocol),
        }
    }

    /// [`NodeDatapath::program`] or [`NodeDatapath::program_v6`].
    pub fn program_ip(
        &mut self,
        ip: Ip,
        service: &ServiceSpec,
        scope: u8,
        ids: &[u32],
    ) -> Result<()> {
        match ip {
            Ip::V4 => self.program(service, scope, ids),
            Ip::V6 => self.program_v6(service, scope, ids),
        }
    }
}

/// A conntrack entry of either family, as the tests look at it (ports in network
/// order, as stored).
#[derive(Clone, Debug)]
pub struct Tracked {
    pub direction: u8,
    pub key_dst: IpAddr,
    pub key_dst_port: u16,
    pub flags: u16,
    pub orig_src: IpAddr,
    pub orig_src_port: u16,
    pub rev_nat_index: u16,
}

impl Tracked {
    fn new<A>(
        direction: u8,
        key_dst: IpAddr,
        key_dst_port: u16,
        entry: &CtEntry<A>,
        orig_src: IpAddr,
    ) -> Self {
        Self {
            direction,
            key_dst,
            key_dst_port,
            flags: entry.flags,
            orig_src,
            orig_src_port: entry.orig_src_port,
            rev_nat_index: entry.rev_nat_index,
        }
    }
}

impl NodeDatapath {
    /// Every conntrack entry of family `ip`.
    pub fn conntrack_ip(&self, ip: Ip) -> Result<Vec<Tracked>> {
        let v4 = |a: u32| IpAddr::V4(Ipv4Addr::from(a.to_ne_bytes()));
        let v6 = |a: [u8; 16]| IpAddr::V6(Ipv6Addr::from(a));
        Ok(match ip {
            Ip::V4 => self
                .conntrack()?
                .iter()
                .map(|(k, e)| {
                    Tracked::new(
                        k.direction,
                        v4(k.dst_addr),
                        k.dst_port,
                        e,
                        v4(e.orig_src_addr),
                    )
                })
                .collect(),
            Ip::V6 => self
                .conntrack_v6()?
                .iter()
                .map(|(k, e)| {
                    Tracked::new(
                        k.direction,
                        v6(k.dst_addr),
                        k.dst_port,
                        e,
                        v6(e.orig_src_addr),
                    )
                })
                .collect(),
        })
    }
}

impl Client {
    /// Checks that the server saw this connection come from `address` (family `ip`).
    pub fn expect_peer(&self, ip: Ip, address: IpAddr) -> Result<()> {
        ensure!(
            self.peer_seen.starts_with(&ip.peer_prefix(address)),
            "{ip:?}: the server saw the connection come from {}, expected {address}",
            self.peer_seen
        );
        Ok(())
    }
}

impl TcpServer {
    /// A TCP server on the pod's address of family `ip`, port [`BACKEND_PORT`].
    pub fn start_ip(pod: &Pod, id: &str, ip: Ip) -> Result<Self> {
        Self::listen(pod, id, socket(ip.pod(pod), BACKEND_PORT))
    }
}

impl UdpServer {
    /// A UDP server on the pod's address of family `ip`, port [`BACKEND_PORT`].
    pub fn start_ip(pod: &Pod, id: &str, ip: Ip) -> Result<Self> {
        Self::bind(pod, id, socket(ip.pod(pod), BACKEND_PORT))
    }
}
