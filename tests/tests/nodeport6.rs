//! The IPv6 per-packet service path with real packets: the external client
//! (`fd00:250::200`) reaches NodePorts on `[fd00:250::(i+1)]` of a two-node test bed,
//! and a pod without socket LB reaches an IPv6 ClusterIP through `tc_pod_egress`.
//!
//! Needs root (namespaces, BPF) and the BPF object embedded in `waggle-datapath`
//! (`cargo xtask build`); without them the tests fail saying so.

mod nodeport_support;

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddrV6, TcpStream},
    time::{Duration, Instant},
};

use anyhow::{Result, bail, ensure};
use nodeport_support::{
    Client, EXTERNAL, INTERNAL, NODE_PORT, NodeDatapath, ServiceSpec, TcpServer,
};
use waggle_ebpf_common::{
    conntrack::{CT_DIR_REPLY, ct_flags},
    drop::{DROP_EXT_LOCAL_NO_LOCAL_BACKEND, DROP_NO_BACKEND},
    lb::{PROTO_TCP, service_flags},
};
use waggle_testbed::TestBed;

const CONNECT: Duration = Duration::from_secs(3);

fn bed() -> Result<TestBed> {
    Ok(TestBed::builder().nodes(2).external_client(true).build()?)
}

fn node_port_of(bed: &TestBed, node: usize, port: u16) -> SocketAddrV6 {
    SocketAddrV6::new(bed.node(node).address_v6(), port, 0, 0)
}

#[test]
fn ipv6_nodeport_to_remote_backend_is_snated_and_replies_return() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    let pod = bed.add_pod(1, "web")?;
    node1.attach_pod(&pod)?;
    let _server = TcpServer::start_v6(&pod, "web")?;
    let service = ServiceSpec::node_port(7, NODE_PORT, PROTO_TCP);
    for node in [&mut node0, &mut node1] {
        node.add_backend_v6(1, &pod, PROTO_TCP)?;
        node.program_v6(&service, EXTERNAL, &[1])?;
    }

    let ext = bed.external().expect("bed has an external client");
    let mut client = Client::connect(ext.netns(), node_port_of(&bed, 0, NODE_PORT), CONNECT)?;
    ensure!(client.server == "web");
    // SNAT: the backend sees node 0's IPv6 address, not the external client's.
    let node0_seen = format!("[{}]:", bed.node(0).address_v6());
    ensure!(
        client.peer_seen.starts_with(&node0_seen),
        "backend saw {} (expected node 0's address {node0_seen})",
        client.peer_seen
    );
    for round in 0..3 {
        ensure!(client.ask(&format!("ping {round}"))? == "web");
    }
    ensure!(node0.connections(7)? >= 1, "node 0 counted no new connection");

    // Conntrack (wg_ct6_v1): both directions, SNAT kept the client's port.
    let client_addr = ext.address_v6().octets();
    let tracked = |node: &NodeDatapath| -> Result<Vec<_>> {
        Ok(node
            .conntrack_v6()?
            .into_iter()
            .filter(|(_, e)| e.orig_src_addr == client_addr && e.rev_nat_index == 7)
            .collect())
    };
    let entries = tracked(&node0)?;
    ensure!(entries.len() == 2, "expected original + reply entries, got {entries:?}");
    ensure!(entries
        .iter()
        .all(|(_, e)| e.flags & ct_flags::SNAT != 0 && e.flags & ct_flags::SEEN_REPLY != 0));
    let reply = entries.iter().find(|(k, _)| k.direction == CT_DIR_REPLY).expect("reply entry");
    ensure!(reply.0.dst_addr == bed.node(0).address_v6().octets(), "reply key {:?}", reply.0);
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
fn ipv6_nodeport_to_local_backend_keeps_client_address() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    // No program on the pod's veth: the uplink's egress program translates the replies.
    let pod = bed.add_pod(0, "web")?;
    let _server = TcpServer::start_v6(&pod, "web")?;
    let service = ServiceSpec::node_port(3, NODE_PORT, PROTO_TCP);
    node0.add_backend_v6(1, &pod, PROTO_TCP)?;
    node0.program_v6(&service, EXTERNAL, &[1])?;

    let ext = bed.external().expect("bed has an external client");
    let mut client = Client::connect(ext.netns(), node_port_of(&bed, 0, NODE_PORT), CONNECT)?;
    ensure!(client.server == "web");
    ensure!(
        client.peer_seen.starts_with(&format!("[{}]:", ext.address_v6())),
        "backend saw {}, expected the client's own address",
        client.peer_seen
    );
    ensure!(client.ask("hello")? == "web");

    // Traffic to the node that is not for a service (here: the IPv4 service's port on
    // another number) is left alone: the node's stack refuses it itself.
    let other = SocketAddrV6::new(bed.node(0).address_v6(), NODE_PORT + 1, 0, 0);
    match ext.netns().run(|| TcpStream::connect_timeout(&other.into(), CONNECT)) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        other => bail!("a non-service port should be refused by the node, got {other:?}"),
    }
    Ok(())
}

#[test]
fn ipv6_external_traffic_policy_local_drops_without_local_backends() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    let pod = bed.add_pod(1, "local")?;
    node1.attach_pod(&pod)?;
    let _server = TcpServer::start_v6(&pod, "local")?;
    let mut service = ServiceSpec::node_port(9, NODE_PORT, PROTO_TCP);
    service.flags |= service_flags::EXT_LOCAL | service_flags::TWO_SCOPES;
    for node in [&mut node0, &mut node1] {
        node.add_backend_v6(1, &pod, PROTO_TCP)?;
        node.program_v6(&service, INTERNAL, &[1])?;
    }
    node0.program_v6(&service, EXTERNAL, &[])?;
    node1.program_v6(&service, EXTERNAL, &[1])?;

    let ext = bed.external().expect("bed has an external client");
    let client = Client::connect(ext.netns(), node_port_of(&bed, 1, NODE_PORT), CONNECT)?;
    ensure!(
        client.peer_seen.starts_with(&format!("[{}]:", ext.address_v6())),
        "with externalTrafficPolicy Local the backend must see the client address, saw {}",
        client.peer_seen
    );

    let before = node0.drops(DROP_EXT_LOCAL_NO_LOCAL_BACKEND)?;
    let result =
        Client::connect(ext.netns(), node_port_of(&bed, 0, NODE_PORT), Duration::from_secs(1));
    ensure!(result.is_err(), "node 0 has no local backend and must drop");
    let after = node0.drops(DROP_EXT_LOCAL_NO_LOCAL_BACKEND)?;
    ensure!(after > before, "drop counter did not move ({before} -> {after})");
    Ok(())
}

#[test]
fn ipv6_no_backend_refuses_at_once() -> Result<()> {
    let bed = bed()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    node0.program_v6(&ServiceSpec::node_port(4, NODE_PORT, PROTO_TCP), EXTERNAL, &[])?;
    let ext = bed.external().expect("bed has an external client");
    let before = node0.drops(DROP_NO_BACKEND)?;
    let started = Instant::now();
    let result = Client::connect(ext.netns(), node_port_of(&bed, 0, NODE_PORT), CONNECT);
    let elapsed = started.elapsed();
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        Err(e) => bail!("expected a refusal, got {e}"),
        Ok(_) => bail!("a service without backends answered"),
    }
    ensure!(elapsed < Duration::from_millis(500), "refusal took {elapsed:?}");
    ensure!(node0.drops(DROP_NO_BACKEND)? > before, "DROP_NO_BACKEND did not move");
    Ok(())
}

#[test]
fn ipv6_pod_without_socket_lb_reaches_cluster_ip_through_tc() -> Result<()> {
    let vip: Ipv6Addr = "fd00:96::10".parse()?;
    let bed = TestBed::builder()
        .nodes(2)
        .pod_route(IpAddr::V6("fd00:96::".parse()?), 112)
        .build()?;
    let mut node0 = NodeDatapath::load(&bed, 0)?;
    let mut node1 = NodeDatapath::load(&bed, 1)?;
    let client_pod = bed.add_pod(0, "client")?;
    let backend = bed.add_pod(1, "backend")?;
    node0.attach_pod(&client_pod)?;
    node1.attach_pod(&backend)?;
    let _server = TcpServer::start_v6(&backend, "backend")?;
    let service = ServiceSpec {
        address: None,
        address_v6: Some(vip),
        port: 80,
        protocol: PROTO_TCP,
        rev_nat_index: 21,
        flags: service_flags::CLUSTER_IP,
        affinity_timeout: 0,
    };
    node0.add_backend_v6(1, &backend, PROTO_TCP)?;
    node0.program_v6(&service, EXTERNAL, &[1])?;

    let mut client =
        Client::connect(client_pod.netns(), SocketAddrV6::new(vip, 80, 0, 0), CONNECT)?;
    ensure!(client.server == "backend");
    ensure!(
        client.peer_seen.starts_with(&format!("[{}]:", client_pod.address_v6())),
        "no SNAT for pod traffic: backend saw {}",
        client.peer_seen
    );
    ensure!(client.ask("via the VIP")? == "backend");
    Ok(())
}
