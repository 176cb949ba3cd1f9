//! Helpers of the per-packet path tests: one loaded data path per test-bed node (maps
//! pinned in the bed's private BPF filesystem), service programming, and small
//! in-process TCP/UDP servers that answer with their id and the peer they saw.
//!
//! Sockets are created inside a namespace (`NetNs::run`) and keep belonging to it, so
//! the servers' threads and the test's clients run on ordinary threads afterwards.

#![allow(dead_code)]

mod family;
pub mod packets;

#[allow(unused_imports)]
pub use family::{BOTH, Ip, Tracked, socket};

use std::{
    io::{BufRead, BufReader, Write},
    net::{
        Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream,
        UdpSocket,
    },
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use waggle_datapath::{
    Datapath,
    lb_maps::{FrontendKey, LbMaps, PinnedLbMaps, write_frontend},
    nodeport::{PerPacketProgram, TcAttachment},
};
use waggle_ebpf_common::{
    conntrack::{CtEntryV4, CtEntryV6, CtKeyV4, CtKeyV6},
    lb::{
        BackendV4, BackendV6, NodeConfig, SCOPE_EXTERNAL, SCOPE_INTERNAL, ServiceKeyV4,
        ServiceKeyV6, ServiceValue, backend_flags, service_flags,
    },
    maps,
};
use waggle_testbed::{NetNs, Pod, TestBed};

pub const NODE_PORT: u16 = 30080;
pub const BACKEND_PORT: u16 = 8080;

/// A map address: network byte order, as `waggle_ebpf_common` stores it.
pub fn addr(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// A map port: network byte order.
pub fn port(p: u16) -> u16 {
    p.to_be()
}

/// The data path of one node: loaded, node address programmed, and both uplink
/// programs (`tc_nodeport_ingress`, `tc_nodeport_egress`) attached.
pub struct NodeDatapath {
    pub index: usize,
    pub netns: NetNs,
    pub address: Ipv4Addr,
    pub address_v6: Ipv6Addr,
    pub maps: PinnedLbMaps,
    attachments: Vec<TcAttachment>,
    // Last: the programs' links above go first.
    pub datapath: Datapath,
}

impl NodeDatapath {
    pub fn load(bed: &TestBed, index: usize) -> Result<Self> {
        let node = bed.node(index);
        let pin_dir = bed.bpf_dir().join(format!("node{index}"));
        bed.register_pin_dir(&pin_dir)?;
        let mut datapath = Datapath::load_pinned(&pin_dir)
            .context("loading the BPF object (tests run as root with the object built)")?;
        let mut maps = PinnedLbMaps::from_ebpf(datapath.ebpf())?;
        let address = node.address();
        let address_v6 = node.address_v6();
        maps.set_node_config(&NodeConfig {
            node_address_v4: addr(address),
            node_address_v6: address_v6.octets(),
            ..Default::default()
        })?;
        maps.node_addrs_v4().insert(&addr(address), &1)?;
        maps.node_addrs_v6().insert(&address_v6.octets(), &1)?;
        let netns = node.netns().clone();
        let uplink = node.uplink().to_owned();
        let attachments = netns.run(|| {
            PerPacketProgram::UPLINK
                .iter()
                .map(|program| Ok(datapath.attach_per_packet(*program, &uplink)?))
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(Self {
            index,
            netns,
            address,
            address_v6,
            maps,
            attachments,
            datapath,
        })
    }

    /// Attaches `tc_pod_egress` to the pod's host-side veth (the pod must be on this node).
    pub fn attach_pod(&mut self, pod: &Pod) -> Result<()> {
        let veth = pod.host_veth().to_owned();
        let datapath = &mut self.datapath;
        let link = self
            .netns
            .run(|| -> Result<_> { Ok(datapath.attach_pod_egress(&veth)?) })?;
        self.attachments.push(link);
        Ok(())
    }

    /// Adds backend `id` at the pod's address; LOCAL when the pod runs on this node.
    pub fn add_backend(&mut self, id: u32, pod: &Pod, protocol: u8) -> Result<()> {
        let mut flags = backend_flags::ACTIVE;
        if pod.node() == self.index {
            flags |= backend_flags::LOCAL;
        }
        let backend = BackendV4 {
            address: addr(pod.address()),
            port: port(BACKEND_PORT),
            protocol,
            flags,
        };
        self.maps.backends_v4().insert(&id, &backend)?;
        Ok(())
    }

    /// Programs a service's entry and slots in one scope.
    pub fn program(&mut self, service: &ServiceSpec, scope: u8, backend_ids: &[u32]) -> Result<()> {
        let key = FrontendKey::V4(ServiceKeyV4 {
            address: service.address.map_or(0, addr),
            port: port(service.port),
            protocol: service.protocol,
            scope,
        });
        write_frontend(&mut self.maps, key, service.value(backend_ids), backend_ids)?;
        Ok(())
    }

    /// Adds IPv6 backend `id` at the pod's IPv6 address; LOCAL when the pod runs here.
    pub fn add_backend_v6(&mut self, id: u32, pod: &Pod, protocol: u8) -> Result<()> {
        let mut flags = backend_flags::ACTIVE;
        if pod.node() == self.index {
            flags |= backend_flags::LOCAL;
        }
        let backend = BackendV6 {
            address: pod.address_v6().octets(),
            port: port(BACKEND_PORT),
            protocol,
            flags,
        };
        self.maps.backends_v6().insert(&id, &backend)?;
        Ok(())
    }

    /// Programs an IPv6 service's entry and slots in one scope (a NodePort entry has
    /// address `::`; `service.address_v6` otherwise).
    pub fn program_v6(
        &mut self,
        service: &ServiceSpec,
        scope: u8,
        backend_ids: &[u32],
    ) -> Result<()> {
        let key = FrontendKey::V6(ServiceKeyV6 {
            address: service.address_v6.map_or([0; 16], |a| a.octets()),
            port: port(service.port),
            protocol: service.protocol,
            scope,
        });
        write_frontend(&mut self.maps, key, service.value(backend_ids), backend_ids)?;
        Ok(())
    }

    /// Every IPv6 conntrack entry (`wg_ct6_v1`).
    pub fn conntrack_v6(&self) -> Result<Vec<(CtKeyV6, CtEntryV6)>> {
        let map = self
            .datapath
            .ebpf()
            .map(maps::CONNTRACK_V6)
            .context("no conntrack map")?;
        let table: aya::maps::HashMap<_, CtKeyV6, CtEntryV6> = aya::maps::HashMap::try_from(map)?;
        Ok(table.iter().filter_map(Result::ok).collect())
    }

    /// Every conntrack entry (`wg_ct4_v2`).
    pub fn conntrack(&self) -> Result<Vec<(CtKeyV4, CtEntryV4)>> {
        let map = self
            .datapath
            .ebpf()
            .map(maps::CONNTRACK_V4)
            .context("no conntrack map")?;
        let table: aya::maps::HashMap<_, CtKeyV4, CtEntryV4> = aya::maps::HashMap::try_from(map)?;
        Ok(table.iter().filter_map(Result::ok).collect())
    }

    /// A drop counter (summed over CPUs).
    pub fn drops(&self, reason: u32) -> Result<u64> {
        let counters = self.maps.drop_counters()?;
        Ok(counters
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n))
    }

    /// New connections counted for a service.
    pub fn connections(&self, rev_nat_index: u16) -> Result<u64> {
        let counters = self.maps.service_counters()?;
        Ok(counters
            .iter()
            .find(|(k, _)| *k == u32::from(rev_nat_index))
            .map_or(0, |(_, c)| c.connections))
    }
}

/// One service port as the tests program it.
#[derive(Clone, Debug)]
pub struct ServiceSpec {
    /// `None` for a NodePort entry (address 0).
    pub address: Option<Ipv4Addr>,
    /// The IPv6 service address (`None` for a NodePort entry, address `::`).
    pub address_v6: Option<Ipv6Addr>,
    pub port: u16,
    pub protocol: u8,
    pub rev_nat_index: u16,
    pub flags: u16,
    /// Session-affinity timeout in seconds (with `service_flags::AFFINITY`).
    pub affinity_timeout: u32,
}

/// Slot ranges handed to programmed services (index 0 is never used).
static NEXT_SLOT: AtomicU32 = AtomicU32::new(1);

impl ServiceSpec {
    /// The services-map value of this service with a fresh slot range for
    /// `backend_ids` (`count` is set when written).
    fn value(&self, backend_ids: &[u32]) -> ServiceValue {
        ServiceValue {
            slot_base: NEXT_SLOT.fetch_add(backend_ids.len().max(1) as u32, Ordering::Relaxed),
            rev_nat_index: self.rev_nat_index,
            flags: self.flags,
            affinity_timeout: self.affinity_timeout,
            ..ServiceValue::default()
        }
    }

    pub fn node_port(rev_nat_index: u16, node_port: u16, protocol: u8) -> Self {
        Self {
            address: None,
            address_v6: None,
            port: node_port,
            protocol,
            rev_nat_index,
            flags: service_flags::NODE_PORT,
            affinity_timeout: 0,
        }
    }
}

pub const EXTERNAL: u8 = SCOPE_EXTERNAL;
pub const INTERNAL: u8 = SCOPE_INTERNAL;

/// A TCP server in a pod: on each connection it first writes `<id> <peer>\n`, then
/// answers every line with `<id> <line>\n`.
pub struct TcpServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpServer {
    pub fn start(pod: &Pod, id: &str) -> Result<Self> {
        Self::listen(
            pod,
            id,
            SocketAddrV4::new(pod.address(), BACKEND_PORT).into(),
        )
    }

    /// The same server on the pod's IPv6 address.
    pub fn start_v6(pod: &Pod, id: &str) -> Result<Self> {
        Self::listen(
            pod,
            id,
            SocketAddrV6::new(pod.address_v6(), BACKEND_PORT, 0, 0).into(),
        )
    }

    fn listen(pod: &Pod, id: &str, bind: SocketAddr) -> Result<Self> {
        let listener = pod.netns().run(|| TcpListener::bind(bind))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let id = id.to_owned();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        let id = id.clone();
                        std::thread::spawn(move || serve_tcp(stream, &id, &peer.to_string()));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

fn serve_tcp(stream: TcpStream, id: &str, peer: &str) {
    let _ = stream.set_nonblocking(false);
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    if writeln!(writer, "{id} {peer}").is_err() {
        return;
    }
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        if writeln!(writer, "{id} {line}").is_err() {
            return;
        }
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A UDP server in a pod: answers each datagram with `<id> <peer>`.
pub struct UdpServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpServer {
    pub fn start(pod: &Pod, id: &str) -> Result<Self> {
        Self::bind(
            pod,
            id,
            SocketAddrV4::new(pod.address(), BACKEND_PORT).into(),
        )
    }

    fn bind(pod: &Pod, id: &str, bind: SocketAddr) -> Result<Self> {
        let socket = pod.netns().run(|| UdpSocket::bind(bind))?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let id = id.to_owned();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((_, peer)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(format!("{id} {peer}").as_bytes(), peer);
                }
            }
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A TCP client connection made from a namespace, speaking the servers' line protocol.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// The server's id and the peer address it saw.
    pub server: String,
    pub peer_seen: String,
}

impl Client {
    pub fn connect(
        netns: &NetNs,
        to: impl Into<SocketAddr>,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        let to = to.into();
        let stream = netns.run(|| TcpStream::connect_timeout(&to, timeout))?;
        stream.set_read_timeout(Some(Duration::from_secs(3)))?;
        let writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        let greeting = read_line(&mut reader)?;
        let (server, peer_seen) = greeting
            .split_once(' ')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .ok_or_else(|| std::io::Error::other(format!("bad greeting {greeting:?}")))?;
        Ok(Self {
            reader,
            writer,
            server,
            peer_seen,
        })
    }

    /// Sends a line; returns the id of the server that answered it.
    pub fn ask(&mut self, line: &str) -> Result<String> {
        writeln!(self.writer, "{line}")?;
        let answer = read_line(&mut self.reader)?;
        match answer.split_once(' ') {
            Some((id, echoed)) if echoed == line => Ok(id.to_owned()),
            _ => bail!("unexpected answer {answer:?} to {line:?}"),
        }
    }
}

fn read_line(reader: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    Ok(line.trim_end().to_owned())
}

/// One UDP request/reply from `socket` (created in a namespace) to `to`: the answering
/// server's id and the peer it saw.
pub fn udp_ask(socket: &UdpSocket, to: impl Into<SocketAddr>) -> Result<(String, String)> {
    let to = to.into();
    socket.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 256];
    // A reply may be lost while a neighbour entry resolves: retry a few times.
    for _ in 0..3 {
        socket.send_to(b"hello", to)?;
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let (id, peer) = text.split_once(' ').context("bad UDP answer")?;
            return Ok((id.to_owned(), peer.to_owned()));
        }
    }
    bail!("no UDP answer from {to}")
}
