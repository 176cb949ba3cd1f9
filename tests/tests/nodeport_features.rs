//! Per-packet path features with real packets, each for IPv4 and IPv6: ICMP errors of
//! translated connections reach the client about the address it used, a pod without
//! socket LB reaches a service whose chosen backend is itself (hairpin), and an
//! external client reaches externalIPs and LoadBalancer IPs through the uplink.
//!
//! Needs root (namespaces, BPF) and the BPF object embedded in `waggle-datapath`
//! (`cargo xtask build`); without them the tests fail saying so.

mod nodeport_support;

use std::{
    io::ErrorKind,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket},
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use nodeport_support::{
    BOTH, Client, EXTERNAL, Ip, NODE_PORT, NodeDatapath, ServiceSpec, TcpServer, UdpServer, socket,
    udp_ask,
};
use waggle_ebpf_common::{
    conntrack::ct_flags,
    lb::{PROTO_TCP, PROTO_UDP, service_flags},
};
use waggle_testbed::TestBed;

const CONNECT: Duration = Duration::from_secs(3);

fn bed() -> Result<TestBed> {
    Ok(TestBed::builder().nodes(2).external_client(true).build()?)
}

/// Sends `payload` from a connected UDP socket in the external client's namespace to
/// `to` until the socket reports an error (or the attempts run out), and checks it is
/// the one `expected` accepts. The kernel reports an ICMP error on a connected socket
/// only when the error quotes exactly the socket's own tuple, so the error proves the
/// quoted packet was translated back to client → `to`, with checksums the client's
/// stack accepts.
fn expect_error(
    bed: &TestBed,
    ip: Ip,
    to: SocketAddr,
    payload: &[u8],
    expected: (&str, fn(&std::io::Error) -> bool),
) -> Result<()> {
    let ext = bed.external().context("bed has an external client")?;
    let local = socket(ip.external(ext), 0);
    let client = ext.netns().run(|| -> std::io::Result<UdpSocket> {
        let client = UdpSocket::bind(local)?;
        client.connect(to)?;
        Ok(client)
    })?;
    client.set_read_timeout(Some(Duration::from_millis(700)))?;
    let mut buf = [0u8; 64];
    let (what, matches) = expected;
    // A first error may be lost while a neighbour entry resolves; ICMP errors are
    // rate-limited to about one a second per destination, so allow a few seconds.
    for _ in 0..5 {
        let error = match client.send(payload) {
            Ok(_) => match client.recv(&mut buf) {
                Ok(n) => bail!("{to} answered {:?}: nothing should", &buf[..n]),
                Err(e) => e,
            },
            Err(e) => e,
        };
        if matches(&error) {
            return Ok(());
        }
        if !matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
            bail!("{ip:?}: expected {what} from {to}, got {error}");
        }
    }
    bail!("{ip:?}: no {what} reached the client's socket for {to}")
}

/// ECONNREFUSED: an ICMP port unreachable arrived.
const REFUSED: (&str, fn(&std::io::Error) -> bool) = ("port unreachable (ECONNREFUSED)", |e| {
    e.kind() == ErrorKind::ConnectionRefused
});
/// EMSGSIZE: an ICMP fragmentation needed / ICMPv6 packet too big arrived.
const TOO_BIG: (&str, fn(&std::io::Error) -> bool) = ("fragmentation needed (EMSGSIZE)", |e| {
    e.raw_os_error() == Some(90)
});

fn expect_refused(bed: &TestBed, ip: Ip, to: SocketAddr) -> Result<()> {
    expect_error(bed, ip, to, b"anyone?", REFUSED)
}

#[test]
fn icmp_port_unreachable_from_a_local_backend_quotes_the_node_port() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    // A backend with nothing listening on the port: it answers with ICMP port
    // unreachable, which leaves through the uplink (tc_nodeport_egress).
    let pod = bed.add_pod(0, "silent")?;
    let service = ServiceSpec::node_port(31, NODE_PORT, PROTO_UDP);
    for ip in BOTH {
        node0.add_backend_ip(ip, 1, &pod, PROTO_UDP)?;
        node0.program_ip(ip, &service, EXTERNAL, &[1])?;
    }
    for ip in BOTH {
        expect_refused(&bed, ip, socket(ip.node(&bed, 0), NODE_PORT))?;
    }
    Ok(())
}

#[test]
fn icmp_port_unreachable_from_a_remote_backend_is_reverse_snated() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    // The backend runs on node 1: node 0 SNATs to itself, and the backend's ICMP error
    // comes back to node 0 (tc_nodeport_ingress), addressed to node 0 and quoting
    // node 0's SNAT port.
    let pod = bed.add_pod(1, "silent")?;
    node1.attach_pod(&pod)?;
    let service = ServiceSpec::node_port(32, NODE_PORT, PROTO_UDP);
    for ip in BOTH {
        for node in [&mut node0, &mut node1] {
            node.add_backend_ip(ip, 1, &pod, PROTO_UDP)?;
            node.program_ip(ip, &service, EXTERNAL, &[1])?;
        }
    }
    for ip in BOTH {
        expect_refused(&bed, ip, socket(ip.node(&bed, 0), NODE_PORT))?;
    }
    let snat_v4 = node0
        .conntrack()?
        .iter()
        .any(|(_, e)| e.flags & ct_flags::SNAT != 0);
    let snat_v6 = node0
        .conntrack_v6()?
        .iter()
        .any(|(_, e)| e.flags & ct_flags::SNAT != 0);
    ensure!(
        snat_v4 && snat_v6,
        "the connections were not SNAT'ed (v4 {snat_v4}, v6 {snat_v6})"
    );
    Ok(())
}

#[test]
fn icmp_fragmentation_needed_on_the_way_to_a_remote_backend_reaches_the_client() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    let pod = bed.add_pod(1, "far")?;
    node1.attach_pod(&pod)?;
    let _servers = BOTH
        .iter()
        .map(|ip| UdpServer::start_ip(&pod, "far", *ip))
        .collect::<Result<Vec<_>>>()?;
    // The last hop to the pod has a small MTU: node 1, forwarding node 0's SNAT'ed
    // datagram, answers with fragmentation needed / packet too big to node 0, which
    // must hand it to the client about the NodePort it used.
    bed.node(1)
        .netns()
        .ip(&["link", "set", pod.host_veth(), "mtu", "1280"])?;
    let service = ServiceSpec::node_port(33, NODE_PORT, PROTO_UDP);
    for ip in BOTH {
        for node in [&mut node0, &mut node1] {
            node.add_backend_ip(ip, 1, &pod, PROTO_UDP)?;
            node.program_ip(ip, &service, EXTERNAL, &[1])?;
        }
    }
    for ip in BOTH {
        let to = socket(ip.node(&bed, 0), NODE_PORT);
        expect_error(&bed, ip, to, &[0x5a; 1400], TOO_BIG)?;
        // Small datagrams still get through, so the path itself works.
        let ext = bed.external().context("bed has an external client")?;
        let udp = ext
            .netns()
            .run(|| UdpSocket::bind(socket(ip.external(ext), 0)))?;
        ensure!(
            udp_ask(&udp, to)?.0 == "far",
            "{ip:?}: a small datagram did not reach the pod"
        );
    }
    Ok(())
}

#[test]
fn pod_reaching_a_service_backed_by_itself_hairpins() -> Result<()> {
    let vip4 = Ipv4Addr::new(10, 96, 0, 30);
    let vip6: Ipv6Addr = "fd00:96::30".parse()?;
    let bed = TestBed::builder()
        .nodes(1)
        .pod_route(IpAddr::V4(Ipv4Addr::new(10, 96, 0, 0)), 12)
        .pod_route(IpAddr::V6("fd00:96::".parse()?), 112)
        .build()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let pod = bed.add_pod(0, "loner")?;
    // No socket LB for the pod: its only path to services is tc_pod_egress.
    node0.attach_pod(&pod)?;
    for ip in BOTH {
        let vip = ip.pick(vip4, vip6);
        let _server = TcpServer::start_ip(&pod, "loner", ip)?;
        let service = ip.service(vip, 80, PROTO_TCP, 41, service_flags::CLUSTER_IP)?;
        node0.add_backend_ip(ip, 1, &pod, PROTO_TCP)?;
        node0.program_ip(ip, &service, EXTERNAL, &[1])?;

        let mut client = Client::connect(pod.netns(), socket(vip, 80), CONNECT)
            .with_context(|| format!("{ip:?}: the pod cannot reach {vip}:80 served by itself"))?;
        ensure!(client.server == "loner");
        // The pod sees its own connection come from the service address.
        client
            .expect_peer(ip, vip)
            .context("the hairpin source is the service address")?;
        ensure!(client.ask("to myself")? == "loner");
    }
    let hairpins = node0
        .conntrack()?
        .iter()
        .filter(|(_, e)| e.flags & ct_flags::HAIRPIN != 0)
        .count()
        + node0
            .conntrack_v6()?
            .iter()
            .filter(|(_, e)| e.flags & ct_flags::HAIRPIN != 0)
            .count();
    ensure!(
        hairpins >= 4,
        "expected hairpin conntrack entries in both maps, found {hairpins}"
    );
    Ok(())
}

#[test]
fn external_client_reaches_external_and_load_balancer_ips() -> Result<()> {
    let external_ip = (
        Ipv4Addr::new(10, 99, 0, 10),
        "fd00:99::10".parse::<Ipv6Addr>()?,
    );
    let lb_ip = (
        Ipv4Addr::new(10, 99, 0, 20),
        "fd00:99::20".parse::<Ipv6Addr>()?,
    );
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    let remote = bed.add_pod(1, "remote")?;
    let local = bed.add_pod(0, "local")?;
    node1.attach_pod(&remote)?;
    let ext = bed.external().context("bed has an external client")?;
    for ip in BOTH {
        // The external client's route to both addresses leads to node 0 (as a router
        // or a LoadBalancer would send them), inside the bed.
        let via = ip.node(&bed, 0).to_string();
        for address in [
            ip.pick(external_ip.0, external_ip.1),
            ip.pick(lb_ip.0, lb_ip.1),
        ] {
            let prefix = format!("{address}/{}", if ip == Ip::V4 { 32 } else { 128 });
            ext.netns().ip(&["route", "add", &prefix, "via", &via])?;
        }
    }
    let mut servers = Vec::new();
    for ip in BOTH {
        servers.push(TcpServer::start_ip(&remote, "remote", ip)?);
        servers.push(TcpServer::start_ip(&local, "local", ip)?);
        let eip = ip.pick(external_ip.0, external_ip.1);
        let lbip = ip.pick(lb_ip.0, lb_ip.1);
        let by_eip = ip.service(eip, 80, PROTO_TCP, 51, service_flags::EXTERNAL_IP)?;
        let by_lb = ip.service(lbip, 80, PROTO_TCP, 52, service_flags::LOAD_BALANCER)?;
        node0.add_backend_ip(ip, 1, &remote, PROTO_TCP)?;
        node0.add_backend_ip(ip, 2, &local, PROTO_TCP)?;
        node0.program_ip(ip, &by_eip, EXTERNAL, &[1])?;
        node0.program_ip(ip, &by_lb, EXTERNAL, &[2])?;

        // externalIP → remote backend: DNAT + SNAT to node 0; replies return.
        let mut client = Client::connect(ext.netns(), socket(eip, 80), CONNECT)
            .with_context(|| format!("{ip:?}: connecting to externalIP {eip}"))?;
        ensure!(client.server == "remote");
        client
            .expect_peer(ip, ip.node(&bed, 0))
            .context("SNAT to node 0")?;
        ensure!(client.ask("via the externalIP")? == "remote");

        // LoadBalancer IP → local backend: DNAT only, the client address is kept.
        let mut client = Client::connect(ext.netns(), socket(lbip, 80), CONNECT)
            .with_context(|| format!("{ip:?}: connecting to LoadBalancer IP {lbip}"))?;
        ensure!(client.server == "local");
        client
            .expect_peer(ip, ip.external(ext))
            .context("DNAT only: the client address stays")?;
        ensure!(client.ask("via the LoadBalancer IP")? == "local");
    }
    ensure!(
        node0.connections(51)? >= 2 && node0.connections(52)? >= 2,
        "connections not counted"
    );
    Ok(())
}
