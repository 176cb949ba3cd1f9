//! End to end: the API server and the eBPF data path together, as real processes.
//!
//! A two-node test bed runs `waggle server` in node 0's namespace and a `waggle proxy`
//! per node (see `cluster_e2e/cluster.rs`). The test writes Services and EndpointSlices
//! through the API, as a user and an endpoints controller would, and checks what pods
//! and an external client get from connect(): every backend reached through the
//! allocated ClusterIP, endpoint changes applied within a second, refusal without
//! endpoints, no route once the Service is gone, NodePorts from outside the cluster.
//! A third test leaves the slices to the endpointslice controller that `waggle server`
//! runs: a Service with a selector over Pod objects reaches exactly the ready pods.
//!
//! The shared steps live in `cluster_e2e/scenario.rs`.
//!
//! Needs root, the BPF object embedded in `waggle-datapath` and the `waggle` binary built
//! beside the tests (`cargo xtask test` does both); without them the tests fail saying so.

#[path = "cluster_e2e/api.rs"]
mod api;
#[path = "cluster_e2e/cluster.rs"]
#[allow(dead_code)]
mod cluster;
#[path = "daemon_support/mod.rs"]
mod daemon_support;
#[path = "cluster_e2e/maps.rs"]
mod maps;
#[path = "cluster_e2e/objects.rs"]
mod objects;
#[path = "cluster_e2e/scenario.rs"]
mod scenario;

use std::net::{IpAddr, SocketAddr, SocketAddrV4};

use scenario::{SERVICE_PORT, Scenario};
use waggle_testbed::TestBed;

const ALL: [&str; 4] = ["web-0", "web-1", "web-2", "web-3"];

#[test]
fn selecting_service_reaches_the_ready_pods_through_the_endpointslice_controller() {
    let mut s = Scenario::start(TestBed::builder().nodes(2));
    let (service, written) = s.create_selecting("sel", &ALL);
    let vip = SocketAddrV4::new(objects::cluster_ip(&service), SERVICE_PORT);
    let limit = std::time::Duration::from_secs(10);
    let took = s.wait_everywhere_within(vip, Some(4), written, limit);
    eprintln!("TIMING pods and selecting Service -> controller -> data path: {took:?}");
    for client in &s.clients {
        s.assert_reaches(client, vip.into(), 60, &ALL);
    }

    // A pod that stops being ready stops receiving new connections.
    let written = s.set_ready("web-3", false);
    let took = s.wait_everywhere_within(vip, Some(3), written, limit);
    eprintln!("TIMING pod not ready -> controller -> data path: {took:?}");
    for client in &s.clients {
        s.assert_reaches(client, vip.into(), 60, &["web-0", "web-1", "web-2"]);
    }

    // The Service deleted: its slices go with it (garbage collector), and so does the VIP.
    s.cluster
        .api
        .delete_service("sel")
        .expect("deleting the Service");
    let gone = std::time::Instant::now();
    s.wait_everywhere_within(vip, None, gone, limit);
    s.assert_gone_everywhere(vip.into());
    s.cluster.check_alive();
}

#[test]
fn cluster_ip_service_from_the_api_follows_endpoint_changes_and_deletion() {
    let mut s = Scenario::start(TestBed::builder().nodes(2));

    // Create: the server allocates the ClusterIP; the slice lists all four backends.
    let (service, written) = s.create("web", false, &ALL);
    let vip = SocketAddrV4::new(objects::cluster_ip(&service), SERVICE_PORT);
    let took = s.wait_everywhere(vip, Some(4), written);
    eprintln!(
        "TIMING create EndpointSlice of new Service {vip} -> data path on every node: {took:?}"
    );
    let listing = s.cluster.lb_list(0);
    assert!(
        listing.contains(&format!("{vip}/TCP")),
        "`waggle bpf lb list` does not show {vip}:\n{listing}"
    );

    // Every backend is reached from both nodes, and the client sees the ClusterIP.
    for client in &s.clients {
        for attempt in s.assert_reaches(client, vip.into(), 60, &ALL) {
            assert_eq!(
                attempt.peer_name.as_deref(),
                Some(vip.to_string().as_str()),
                "getpeername: {attempt:#?}"
            );
            let saw = attempt
                .server_saw_addr()
                .expect("the server reports the client address");
            assert_eq!(
                saw.ip(),
                IpAddr::V4(client.address()),
                "socket LB must not SNAT: {attempt:#?}"
            );
        }
    }

    // Remove web-3 (on node 1): no new connection may reach it a second after the write.
    let three = ["web-0", "web-1", "web-2"];
    let written = s.set_backends("web", &three);
    let took = s.wait_everywhere(vip, Some(3), written);
    eprintln!("TIMING EndpointSlice update (PUT sent) -> data path on every node: {took:?}");
    for client in &s.clients {
        s.assert_reaches(client, vip.into(), 60, &three);
    }

    // No endpoints left: refused at once.
    let written = s.set_backends("web", &[]);
    let took = s.wait_everywhere(vip, Some(0), written);
    eprintln!("TIMING EndpointSlice emptied -> data path on every node: {took:?}");
    for client in &s.clients {
        s.assert_fails_fast(client, vip.into(), &["ECONNREFUSED"]);
    }

    // Service deleted: its ClusterIP leaves the maps and leads nowhere.
    let written = s.delete("web");
    let took = s.wait_everywhere(vip, None, written);
    eprintln!("TIMING Service delete -> data path on every node: {took:?}");
    s.assert_gone_everywhere(vip.into());
    s.cluster.check_alive();
}

#[test]
fn node_port_service_from_the_api_answers_the_external_client_on_every_node() {
    let mut s = Scenario::start(TestBed::builder().nodes(2).external_client(true));

    let (service, written) = s.create("front", true, &ALL);
    let node_port = objects::node_port(&service);
    let vip = SocketAddrV4::new(objects::cluster_ip(&service), SERVICE_PORT);
    s.wait_node_port_everywhere(
        node_port,
        Some(4),
        written,
        "create EndpointSlice of new NodePort Service",
    );
    s.wait_everywhere(vip, Some(4), written);

    // From outside the cluster, through each node's uplink program.
    let external = s
        .bed
        .external()
        .expect("the bed has an external client")
        .clone();
    for node in s.bed.nodes() {
        let at_node = SocketAddr::new(node.address().into(), node_port);
        let attempts = s.assert_reaches(&external, at_node, 60, &ALL);
        assert!(
            attempts
                .iter()
                .all(|a| a.peer_name.as_deref() == Some(at_node.to_string().as_str())),
            "{attempts:#?}"
        );
    }
    // From a pod, through socket LB, to the other node's NodePort.
    let at_node1 = SocketAddr::new(s.bed.node(1).address().into(), node_port);
    s.assert_reaches(&s.clients[0], at_node1, 80, &ALL);

    // Shrink to the node-1 backends: node 0's NodePort now always forwards across the fabric.
    let written = s.set_backends("front", &["web-2", "web-3"]);
    s.wait_node_port_everywhere(node_port, Some(2), written, "EndpointSlice update");
    let at_node0 = SocketAddr::new(s.bed.node(0).address().into(), node_port);
    s.assert_reaches(&external, at_node0, 30, &["web-2", "web-3"]);

    // Service deleted: the NodePort stops answering.
    let written = s.delete("front");
    s.wait_node_port_everywhere(node_port, None, written, "Service delete");
    let attempts = s
        .probe
        .client(&external, "tcp", at_node0, 1, &["--timeout-ms", "1000"])
        .expect("running netprobe tcp");
    assert!(
        !attempts[0].ok,
        "the deleted NodePort still answers: {attempts:#?}"
    );
    s.cluster.check_alive();
}
