//! The per-packet service path (`tc_nodeport_ingress`, `tc_pod_egress`) with real
//! packets: an external client reaches NodePorts of a two-node test bed.
//!
//! Needs root (namespaces, BPF) and the BPF object embedded in `waggle-datapath`
//! (`cargo xtask build`); without them the tests fail saying so.

mod nodeport_support;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddrV4, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{Result, ensure};
use nodeport_support::{
    BACKEND_PORT, Client, EXTERNAL, INTERNAL, NODE_PORT, NodeDatapath, ServiceSpec, TcpServer,
    UdpServer, addr, udp_ask,
};
use waggle_ebpf_common::{
    conntrack::{CT_DIR_REPLY, ct_flags},
    drop::{DROP_EXT_LOCAL_NO_LOCAL_BACKEND, DROP_NO_BACKEND},
    lb::{PROTO_TCP, PROTO_UDP, service_flags},
};
use waggle_datapath::lb_maps::LbMaps;
use waggle_proxy::maglev::{MaglevBackend, build_table};
use waggle_testbed::TestBed;

const CONNECT: Duration = Duration::from_secs(3);

fn bed() -> Result<TestBed> {
    Ok(TestBed::builder().nodes(2).external_client(true).build()?)
}

fn node_port_of(bed: &TestBed, node: usize, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(bed.node(node).address(), port)
}

#[test]
fn nodeport_to_remote_backend_is_snated_and_replies_return() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    let pod = bed.add_pod(1, "web")?;
    node1.attach_pod(&pod)?;
    let _server = TcpServer::start(&pod, "web")?;
    let service = ServiceSpec::node_port(7, NODE_PORT, PROTO_TCP);
    for node in [&mut node0, &mut node1] {
        node.add_backend(1, &pod, PROTO_TCP)?;
        node.program(&service, EXTERNAL, &[1])?;
    }

    let external = bed.external().expect("bed has an external client").netns().clone();
    let mut client = Client::connect(&external, node_port_of(&bed, 0, NODE_PORT), CONNECT)?;
    ensure!(client.server == "web");
    // SNAT: the backend sees node 0's address, not the external client's.
    let seen_ip = client.peer_seen.split(':').next().unwrap_or_default().to_owned();
    ensure!(
        seen_ip == bed.node(0).address().to_string(),
        "backend saw {} (expected node 0's address)",
        client.peer_seen
    );
    // The client kept its source port through SNAT (the port was free).
    for round in 0..3 {
        ensure!(client.ask(&format!("ping {round}"))? == "web");
    }
    ensure!(node0.connections(7)? >= 1, "node 0 counted no new connection");

    // Conntrack: both directions are tracked, and closing marks them CLOSING.
    let client_addr = addr(bed.external().expect("external").address());
    let tracked = |node: &NodeDatapath| -> Result<Vec<_>> {
        Ok(node
            .conntrack()?
            .into_iter()
            .filter(|(_, e)| e.orig_src_addr == client_addr && e.rev_nat_index == 7)
            .collect())
    };
    let entries = tracked(&node0)?;
    ensure!(entries.len() == 2, "expected original + reply entries, got {entries:?}");
    ensure!(entries.iter().all(|(_, e)| e.flags & ct_flags::SNAT != 0 && e.flags & ct_flags::SEEN_REPLY != 0));
    let reply = entries.iter().find(|(k, _)| k.direction == CT_DIR_REPLY).expect("reply entry");
    ensure!(reply.0.dst_addr == addr(bed.node(0).address()), "reply key {:?}", reply.0);
    ensure!(reply.0.dst_port == reply.1.orig_src_port, "SNAT kept the client's port");
    drop(client);
    std::thread::sleep(Duration::from_millis(300));
    let entries = tracked(&node0)?;
    ensure!(
        entries.iter().all(|(_, e)| e.flags & ct_flags::CLOSING != 0),
        "FIN did not mark the entries closing: {entries:?}"
    );
    Ok(())
}

#[test]
fn nodeport_to_local_backend_keeps_client_address() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    // No program on the pod's veth: the uplink's egress program translates the replies.
    let pod = bed.add_pod(0, "web")?;
    let _server = TcpServer::start(&pod, "web")?;
    let service = ServiceSpec::node_port(3, NODE_PORT, PROTO_TCP);
    node0.add_backend(1, &pod, PROTO_TCP)?;
    node0.program(&service, EXTERNAL, &[1])?;

    let ext = bed.external().expect("bed has an external client");
    let mut client = Client::connect(ext.netns(), node_port_of(&bed, 0, NODE_PORT), CONNECT)?;
    ensure!(client.server == "web");
    ensure!(
        client.peer_seen.starts_with(&format!("{}:", ext.address())),
        "backend saw {}, expected the client's own address",
        client.peer_seen
    );
    ensure!(client.ask("hello")? == "web");
    Ok(())
}

#[test]
fn external_traffic_policy_local_uses_only_local_backends() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    let pod = bed.add_pod(1, "local")?;
    node1.attach_pod(&pod)?;
    let _server = TcpServer::start(&pod, "local")?;
    let mut service = ServiceSpec::node_port(9, NODE_PORT, PROTO_TCP);
    service.flags |= service_flags::EXT_LOCAL | service_flags::TWO_SCOPES;
    for node in [&mut node0, &mut node1] {
        node.add_backend(1, &pod, PROTO_TCP)?;
        node.program(&service, INTERNAL, &[1])?;
    }
    // The external scope holds node-local backends only: none on node 0.
    node0.program(&service, EXTERNAL, &[])?;
    node1.program(&service, EXTERNAL, &[1])?;

    let ext = bed.external().expect("bed has an external client");
    let client = Client::connect(ext.netns(), node_port_of(&bed, 1, NODE_PORT), CONNECT)?;
    ensure!(
        client.peer_seen.starts_with(&format!("{}:", ext.address())),
        "with externalTrafficPolicy Local the backend must see the client address, saw {}",
        client.peer_seen
    );

    let before = node0.drops(DROP_EXT_LOCAL_NO_LOCAL_BACKEND)?;
    let result = Client::connect(ext.netns(), node_port_of(&bed, 0, NODE_PORT), Duration::from_secs(1));
    ensure!(result.is_err(), "node 0 has no local backend and must drop");
    let after = node0.drops(DROP_EXT_LOCAL_NO_LOCAL_BACKEND)?;
    ensure!(after > before, "drop counter did not move ({before} -> {after})");
    Ok(())
}

#[test]
fn no_backend_refuses_at_once() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    node0.program(&ServiceSpec::node_port(4, NODE_PORT, PROTO_TCP), EXTERNAL, &[])?;
    let ext = bed.external().expect("bed has an external client");
    let before = node0.drops(DROP_NO_BACKEND)?;
    let started = Instant::now();
    let result = Client::connect(ext.netns(), node_port_of(&bed, 0, NODE_PORT), CONNECT);
    let elapsed = started.elapsed();
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        Err(e) => anyhow::bail!("expected a refusal, got {e}"),
        Ok(_) => anyhow::bail!("a service without backends answered"),
    }
    ensure!(elapsed < Duration::from_millis(500), "refusal took {elapsed:?}");
    ensure!(node0.drops(DROP_NO_BACKEND)? > before, "DROP_NO_BACKEND did not move");
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
    let _a = TcpServer::start(&first, "first")?;
    let _b = TcpServer::start(&second, "second")?;
    let service = ServiceSpec::node_port(5, NODE_PORT, PROTO_TCP);
    node0.add_backend(1, &first, PROTO_TCP)?;
    node0.add_backend(2, &second, PROTO_TCP)?;
    node0.program(&service, EXTERNAL, &[1])?;

    let ext = bed.external().expect("bed has an external client");
    let to = node_port_of(&bed, 0, NODE_PORT);
    let mut established = Client::connect(ext.netns(), to, CONNECT)?;
    ensure!(established.server == "first");
    ensure!(established.ask("one")? == "first");

    // The service now has only the second backend.
    node0.program(&service, EXTERNAL, &[2])?;
    ensure!(established.ask("two")? == "first", "an established connection changed backend");
    let fresh = Client::connect(ext.netns(), to, CONNECT)?;
    ensure!(fresh.server == "second", "a new connection went to {}", fresh.server);
    ensure!(established.ask("three")? == "first");
    Ok(())
}

#[test]
fn maglev_sends_a_flow_to_the_same_backend_from_every_node() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    let pods: Vec<_> =
        (0..3).map(|i| bed.add_pod(1, &format!("mg{i}"))).collect::<Result<_, _>>()?;
    let mut servers = Vec::new();
    for pod in &pods {
        node1.attach_pod(pod)?;
        servers.push(UdpServer::start(pod, pod.name())?);
    }
    let mut service = ServiceSpec::node_port(11, NODE_PORT, PROTO_UDP);
    service.flags |= service_flags::MAGLEV;
    let members: Vec<MaglevBackend> = pods
        .iter()
        .enumerate()
        .map(|(i, pod)| MaglevBackend::new(i as u32 + 1, format!("{}:{BACKEND_PORT}", pod.address())))
        .collect();
    let table = build_table(&members);
    // Slots in reverse order on one node: the table, not the slots, decides.
    let ids: Vec<u32> = members.iter().map(|m| m.id).collect();
    let reversed: Vec<u32> = ids.iter().rev().copied().collect();
    for (node, slots) in [(&mut node0, &ids), (&mut node1, &reversed)] {
        for (i, pod) in pods.iter().enumerate() {
            node.add_backend(i as u32 + 1, pod, PROTO_UDP)?;
        }
        node.program(&service, EXTERNAL, slots)?;
        node.maps.maglev().insert(&11, &table)?;
    }

    let ext = bed.external().expect("bed has an external client");
    let mut chosen = std::collections::BTreeSet::new();
    for source_port in 41_000..41_012u16 {
        let socket = ext.netns().run(|| UdpSocket::bind(SocketAddrV4::new(ext.address(), source_port)))?;
        let (via0, _) = udp_ask(&socket, node_port_of(&bed, 0, NODE_PORT))?;
        let (via1, _) = udp_ask(&socket, node_port_of(&bed, 1, NODE_PORT))?;
        ensure!(via0 == via1, "flow from port {source_port}: node 0 chose {via0}, node 1 {via1}");
        // The same flow again keeps its backend.
        ensure!(udp_ask(&socket, node_port_of(&bed, 0, NODE_PORT))?.0 == via0);
        chosen.insert(via0);
    }
    ensure!(chosen.len() >= 2, "12 flows all went to {chosen:?}");
    Ok(())
}

#[test]
fn pod_without_socket_lb_reaches_cluster_ip_through_tc() -> Result<()> {
    let vip = Ipv4Addr::new(10, 96, 0, 10);
    let bed = TestBed::builder()
        .nodes(2)
        .pod_route(IpAddr::V4(Ipv4Addr::new(10, 96, 0, 0)), 12)
        .build()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    let client_pod = bed.add_pod(0, "client")?;
    let backend = bed.add_pod(1, "backend")?;
    node0.attach_pod(&client_pod)?;
    node1.attach_pod(&backend)?;
    let _server = TcpServer::start(&backend, "backend")?;
    let service = ServiceSpec {
        address: Some(vip),
        address_v6: None,
        port: 80,
        protocol: PROTO_TCP,
        rev_nat_index: 21,
        flags: service_flags::CLUSTER_IP,
        affinity_timeout: 0,
    };
    node0.add_backend(1, &backend, PROTO_TCP)?;
    node0.program(&service, EXTERNAL, &[1])?;

    let mut client = Client::connect(client_pod.netns(), SocketAddrV4::new(vip, 80), CONNECT)?;
    ensure!(client.server == "backend");
    ensure!(
        client.peer_seen.starts_with(&format!("{}:", client_pod.address())),
        "no SNAT for pod traffic: backend saw {}",
        client.peer_seen
    );
    ensure!(client.ask("via the VIP")? == "backend");
    Ok(())
}

#[test]
fn client_ip_affinity_keeps_new_connections_on_one_backend() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let pods: Vec<_> =
        (0..2).map(|i| bed.add_pod(1, &format!("aff{i}"))).collect::<Result<_, _>>()?;
    let servers: Vec<_> =
        pods.iter().map(|pod| TcpServer::start(pod, pod.name())).collect::<Result<_>>()?;
    let mut service = ServiceSpec::node_port(13, NODE_PORT, PROTO_TCP);
    service.flags |= service_flags::AFFINITY;
    service.affinity_timeout = 60;
    node0.add_backend(1, &pods[0], PROTO_TCP)?;
    node0.add_backend(2, &pods[1], PROTO_TCP)?;
    node0.program(&service, EXTERNAL, &[1, 2])?;

    let ext = bed.external().expect("bed has an external client");
    let first = Client::connect(ext.netns(), node_port_of(&bed, 0, NODE_PORT), CONNECT)?;
    // Random choice would split 8 new connections over both backends (p = 1/128 not to).
    for _ in 0..8 {
        let next = Client::connect(ext.netns(), node_port_of(&bed, 0, NODE_PORT), CONNECT)?;
        ensure!(next.server == first.server, "affinity broke: {} then {}", first.server, next.server);
    }
    drop(servers);
    Ok(())
}
