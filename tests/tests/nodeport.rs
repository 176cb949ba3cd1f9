//! The per-packet service path (`tc_nodeport_ingress`, `tc_nodeport_egress`,
//! `tc_pod_egress`) with real packets, every case for IPv4 and IPv6: an external client
//! (`10.250.0.200`, `fd00:250::200`) reaches NodePorts of a two-node test bed, and a pod
//! without socket LB reaches a ClusterIP through `tc_pod_egress`.
//!
//! Needs root (namespaces, BPF) and the BPF object embedded in `waggle-datapath`
//! (`cargo xtask build`); without them the tests fail saying so.

mod nodeport_support;

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use nodeport_support::{
    BACKEND_PORT, BOTH, Client, EXTERNAL, INTERNAL, Ip, NODE_PORT, NodeDatapath, ServiceSpec,
    TcpServer, Tracked, UdpServer, socket, udp_ask,
};
use waggle_datapath::lb_maps::LbMaps;
use waggle_ebpf_common::{
    conntrack::{CT_DIR_REPLY, ct_flags},
    drop::{DROP_EXT_LOCAL_NO_LOCAL_BACKEND, DROP_NO_BACKEND},
    lb::{PROTO_TCP, PROTO_UDP, service_flags},
};
use waggle_proxy::maglev::{MaglevBackend, build_table};
use waggle_testbed::TestBed;

const CONNECT: Duration = Duration::from_secs(3);

fn bed() -> Result<TestBed> {
    Ok(TestBed::builder().nodes(2).external_client(true).build()?)
}

fn node_port_of(bed: &TestBed, ip: Ip, node: usize, port: u16) -> SocketAddr {
    socket(ip.node(bed, node), port)
}

#[test]
fn nodeport_to_remote_backend_is_snated_and_replies_return() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    let pod = bed.add_pod(1, "web")?;
    node1.attach_pod(&pod)?;
    let service = ServiceSpec::node_port(7, NODE_PORT, PROTO_TCP);
    let ext = bed.external().context("bed has an external client")?;
    for ip in BOTH {
        let _server = TcpServer::start_ip(&pod, "web", ip)?;
        for node in [&mut node0, &mut node1] {
            node.add_backend_ip(ip, 1, &pod, PROTO_TCP)?;
            node.program_ip(ip, &service, EXTERNAL, &[1])?;
        }

        let mut client =
            Client::connect(ext.netns(), node_port_of(&bed, ip, 0, NODE_PORT), CONNECT)?;
        ensure!(client.server == "web");
        // SNAT: the backend sees node 0's address, not the external client's.
        client.expect_peer(ip, ip.node(&bed, 0))?;
        for round in 0..3 {
            ensure!(client.ask(&format!("ping {round}"))? == "web");
        }
        ensure!(
            node0.connections(7)? >= 1,
            "node 0 counted no new connection"
        );

        // Conntrack: both directions are tracked, and closing marks them CLOSING.
        let client_addr = ip.external(ext);
        let tracked = |node: &NodeDatapath| -> Result<Vec<Tracked>> {
            Ok(node
                .conntrack_ip(ip)?
                .into_iter()
                .filter(|t| t.orig_src == client_addr && t.rev_nat_index == 7)
                .collect())
        };
        let entries = tracked(&node0)?;
        ensure!(
            entries.len() == 2,
            "{ip:?}: expected original + reply entries, got {entries:?}"
        );
        ensure!(
            entries
                .iter()
                .all(|t| t.flags & ct_flags::SNAT != 0 && t.flags & ct_flags::SEEN_REPLY != 0)
        );
        let reply = entries
            .iter()
            .find(|t| t.direction == CT_DIR_REPLY)
            .context("reply entry")?;
        ensure!(
            reply.key_dst == ip.node(&bed, 0),
            "{ip:?}: reply key {reply:?}"
        );
        // The client kept its source port through SNAT (the port was free).
        ensure!(
            reply.key_dst_port == reply.orig_src_port,
            "SNAT kept the client's port"
        );
        drop(client);
        // The FIN needs the scheduler on a loaded machine: poll with a generous deadline.
        let deadline = Instant::now() + Duration::from_secs(10);
        let entries = loop {
            let entries = tracked(&node0)?;
            let closing = entries.iter().all(|t| t.flags & ct_flags::CLOSING != 0);
            if closing || Instant::now() >= deadline {
                break entries;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        ensure!(
            entries.iter().all(|t| t.flags & ct_flags::CLOSING != 0),
            "{ip:?}: FIN did not mark the entries closing: {entries:?}"
        );
    }
    Ok(())
}

#[test]
fn nodeport_to_local_backend_keeps_client_address() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    // No program on the pod's veth: the uplink's egress program translates the replies.
    let pod = bed.add_pod(0, "web")?;
    let service = ServiceSpec::node_port(3, NODE_PORT, PROTO_TCP);
    let ext = bed.external().context("bed has an external client")?;
    for ip in BOTH {
        let _server = TcpServer::start_ip(&pod, "web", ip)?;
        node0.add_backend_ip(ip, 1, &pod, PROTO_TCP)?;
        node0.program_ip(ip, &service, EXTERNAL, &[1])?;

        let mut client =
            Client::connect(ext.netns(), node_port_of(&bed, ip, 0, NODE_PORT), CONNECT)?;
        ensure!(client.server == "web");
        client
            .expect_peer(ip, ip.external(ext))
            .context("DNAT only: the client address stays")?;
        ensure!(client.ask("hello")? == "web");

        // Traffic to the node that is not for a service (another port) is left alone:
        // the node's stack refuses it itself.
        let other = node_port_of(&bed, ip, 0, NODE_PORT + 1);
        match ext
            .netns()
            .run(|| TcpStream::connect_timeout(&other, CONNECT))
        {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            other => {
                bail!("{ip:?}: a non-service port should be refused by the node, got {other:?}")
            }
        }
    }
    Ok(())
}

#[test]
fn external_traffic_policy_local_uses_only_local_backends() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    let pod = bed.add_pod(1, "local")?;
    node1.attach_pod(&pod)?;
    let mut service = ServiceSpec::node_port(9, NODE_PORT, PROTO_TCP);
    service.flags |= service_flags::EXT_LOCAL | service_flags::TWO_SCOPES;
    let ext = bed.external().context("bed has an external client")?;
    for ip in BOTH {
        let _server = TcpServer::start_ip(&pod, "local", ip)?;
        for node in [&mut node0, &mut node1] {
            node.add_backend_ip(ip, 1, &pod, PROTO_TCP)?;
            node.program_ip(ip, &service, INTERNAL, &[1])?;
        }
        // The external scope holds node-local backends only: none on node 0.
        node0.program_ip(ip, &service, EXTERNAL, &[])?;
        node1.program_ip(ip, &service, EXTERNAL, &[1])?;

        let client = Client::connect(ext.netns(), node_port_of(&bed, ip, 1, NODE_PORT), CONNECT)?;
        client
            .expect_peer(ip, ip.external(ext))
            .context("with externalTrafficPolicy Local the backend must see the client")?;

        let before = node0.drops(DROP_EXT_LOCAL_NO_LOCAL_BACKEND)?;
        let to = node_port_of(&bed, ip, 0, NODE_PORT);
        let result = Client::connect(ext.netns(), to, Duration::from_secs(1));
        ensure!(
            result.is_err(),
            "{ip:?}: node 0 has no local backend and must drop"
        );
        let after = node0.drops(DROP_EXT_LOCAL_NO_LOCAL_BACKEND)?;
        ensure!(
            after > before,
            "{ip:?}: drop counter did not move ({before} -> {after})"
        );
    }
    Ok(())
}

#[test]
fn no_backend_refuses_at_once() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let ext = bed.external().context("bed has an external client")?;
    for ip in BOTH {
        node0.program_ip(
            ip,
            &ServiceSpec::node_port(4, NODE_PORT, PROTO_TCP),
            EXTERNAL,
            &[],
        )?;
        let before = node0.drops(DROP_NO_BACKEND)?;
        let started = Instant::now();
        let result = Client::connect(ext.netns(), node_port_of(&bed, ip, 0, NODE_PORT), CONNECT);
        let elapsed = started.elapsed();
        match result {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(e) => bail!("{ip:?}: expected a refusal, got {e}"),
            Ok(_) => bail!("{ip:?}: a service without backends answered"),
        }
        ensure!(
            // Below the 1 s SYN retransmission timeout: the first SYN was refused.
            elapsed < Duration::from_millis(900),
            "{ip:?}: refusal took {elapsed:?}"
        );
        ensure!(
            node0.drops(DROP_NO_BACKEND)? > before,
            "{ip:?}: DROP_NO_BACKEND did not move"
        );
    }
    Ok(())
}

#[test]
fn conntrack_keeps_established_connection_on_its_backend() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    let first = bed.add_pod(1, "first")?;
    let second = bed.add_pod(1, "second")?;
    node1.attach_pod(&first)?;
    node1.attach_pod(&second)?;
    let service = ServiceSpec::node_port(5, NODE_PORT, PROTO_TCP);
    let ext = bed.external().context("bed has an external client")?;
    for ip in BOTH {
        let _a = TcpServer::start_ip(&first, "first", ip)?;
        let _b = TcpServer::start_ip(&second, "second", ip)?;
        node0.add_backend_ip(ip, 1, &first, PROTO_TCP)?;
        node0.add_backend_ip(ip, 2, &second, PROTO_TCP)?;
        node0.program_ip(ip, &service, EXTERNAL, &[1])?;

        let to = node_port_of(&bed, ip, 0, NODE_PORT);
        let mut established = Client::connect(ext.netns(), to, CONNECT)?;
        ensure!(established.server == "first");
        ensure!(established.ask("one")? == "first");

        // The service now has only the second backend.
        node0.program_ip(ip, &service, EXTERNAL, &[2])?;
        ensure!(
            established.ask("two")? == "first",
            "{ip:?}: an established connection changed backend"
        );
        let fresh = Client::connect(ext.netns(), to, CONNECT)?;
        ensure!(
            fresh.server == "second",
            "{ip:?}: a new connection went to {}",
            fresh.server
        );
        ensure!(established.ask("three")? == "first");
    }
    Ok(())
}

#[test]
fn maglev_sends_a_flow_to_the_same_backend_from_every_node() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    let pods: Vec<_> = (0..3)
        .map(|i| bed.add_pod(1, &format!("mg{i}")))
        .collect::<Result<_, _>>()?;
    for pod in &pods {
        node1.attach_pod(pod)?;
    }
    let mut service = ServiceSpec::node_port(11, NODE_PORT, PROTO_UDP);
    service.flags |= service_flags::MAGLEV;
    let ext = bed.external().context("bed has an external client")?;
    for ip in BOTH {
        let _servers = pods
            .iter()
            .map(|pod| UdpServer::start_ip(pod, pod.name(), ip))
            .collect::<Result<Vec<_>>>()?;
        let members: Vec<MaglevBackend> = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| {
                MaglevBackend::new(i as u32 + 1, socket(ip.pod(pod), BACKEND_PORT).to_string())
            })
            .collect();
        let table = build_table(&members);
        // Slots in reverse order on one node: the table, not the slots, decides.
        let ids: Vec<u32> = members.iter().map(|m| m.id).collect();
        let reversed: Vec<u32> = ids.iter().rev().copied().collect();
        for (node, slots) in [(&mut node0, &ids), (&mut node1, &reversed)] {
            for (i, pod) in pods.iter().enumerate() {
                node.add_backend_ip(ip, i as u32 + 1, pod, PROTO_UDP)?;
            }
            node.program_ip(ip, &service, EXTERNAL, slots)?;
            node.maps.maglev().insert(&11, &table)?;
        }

        let mut chosen = BTreeSet::new();
        for source_port in 41_000..41_012u16 {
            let local = socket(ip.external(ext), source_port);
            let udp = ext.netns().run(|| UdpSocket::bind(local))?;
            let (via0, _) = udp_ask(&udp, node_port_of(&bed, ip, 0, NODE_PORT))?;
            let (via1, _) = udp_ask(&udp, node_port_of(&bed, ip, 1, NODE_PORT))?;
            ensure!(
                via0 == via1,
                "{ip:?}: flow from port {source_port}: node 0 chose {via0}, node 1 {via1}"
            );
            // The same flow again keeps its backend.
            ensure!(udp_ask(&udp, node_port_of(&bed, ip, 0, NODE_PORT))?.0 == via0);
            chosen.insert(via0);
        }
        ensure!(chosen.len() >= 2, "{ip:?}: 12 flows all went to {chosen:?}");
    }
    Ok(())
}

#[test]
fn pod_without_socket_lb_reaches_cluster_ip_through_tc() -> Result<()> {
    let vip4 = Ipv4Addr::new(10, 96, 0, 10);
    let vip6: Ipv6Addr = "fd00:96::10".parse()?;
    let bed = TestBed::builder()
        .nodes(2)
        .pod_route(IpAddr::V4(Ipv4Addr::new(10, 96, 0, 0)), 12)
        .pod_route(IpAddr::V6("fd00:96::".parse()?), 112)
        .build()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    // The client pod's cgroup has no socket-LB programs: only tc_pod_egress on its
    // host-side veth can translate the VIP.
    let client_pod = bed.add_pod(0, "client")?;
    let backend = bed.add_pod(1, "backend")?;
    node0.attach_pod(&client_pod)?;
    node1.attach_pod(&backend)?;
    for ip in BOTH {
        let vip = ip.pick(vip4, vip6);
        let _server = TcpServer::start_ip(&backend, "backend", ip)?;
        let service = ip.service(vip, 80, PROTO_TCP, 21, service_flags::CLUSTER_IP)?;
        node0.add_backend_ip(ip, 1, &backend, PROTO_TCP)?;
        node0.program_ip(ip, &service, EXTERNAL, &[1])?;

        let mut client = Client::connect(client_pod.netns(), socket(vip, 80), CONNECT)?;
        ensure!(client.server == "backend");
        client
            .expect_peer(ip, ip.pod(&client_pod))
            .context("no SNAT for pod traffic")?;
        ensure!(client.ask("via the VIP")? == "backend");
    }
    Ok(())
}

#[test]
fn client_ip_affinity_keeps_new_connections_on_one_backend() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let pods: Vec<_> = (0..2)
        .map(|i| bed.add_pod(1, &format!("aff{i}")))
        .collect::<Result<_, _>>()?;
    let mut service = ServiceSpec::node_port(13, NODE_PORT, PROTO_TCP);
    service.flags |= service_flags::AFFINITY;
    service.affinity_timeout = 60;
    let ext = bed.external().context("bed has an external client")?;
    for ip in BOTH {
        let _servers = pods
            .iter()
            .map(|pod| TcpServer::start_ip(pod, pod.name(), ip))
            .collect::<Result<Vec<_>>>()?;
        node0.add_backend_ip(ip, 1, &pods[0], PROTO_TCP)?;
        node0.add_backend_ip(ip, 2, &pods[1], PROTO_TCP)?;
        node0.program_ip(ip, &service, EXTERNAL, &[1, 2])?;

        let to = node_port_of(&bed, ip, 0, NODE_PORT);
        let first = Client::connect(ext.netns(), to, CONNECT)?;
        // Random choice would split 8 new connections over both backends (p = 1/128 not to).
        for _ in 0..8 {
            let next = Client::connect(ext.netns(), to, CONNECT)?;
            ensure!(
                next.server == first.server,
                "{ip:?}: affinity broke: {} then {}",
                first.server,
                next.server
            );
        }
    }
    Ok(())
}
