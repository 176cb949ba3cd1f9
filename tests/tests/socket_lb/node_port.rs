//! NodePorts from inside the node: the node address and loopback.

use std::net::{Ipv4Addr, SocketAddr};

use waggle_testbed::TestBed;

use crate::{
    BACKEND_PORT,
    support::{ClusterLb, Svc, netprobe, spread},
};

#[test]
fn node_port_via_loopback_and_node_address_from_pod_and_host() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(2));
    let probe = netprobe();
    let backends = [
        bed.add_pod(0, "np-0").unwrap(),
        bed.add_pod(1, "np-1").unwrap(),
    ];
    let _servers: Vec<_> = backends
        .iter()
        .map(|pod| {
            probe
                .serve(&bed, pod, pod.name(), Some(BACKEND_PORT), None)
                .unwrap()
        })
        .collect();
    let client = bed.add_pod(0, "client").unwrap();
    let lb = ClusterLb::attach(&bed);
    lb.add(
        &Svc::node_port(30080, 5).backends(
            backends
                .iter()
                .map(|p| SocketAddr::new(p.address().into(), BACKEND_PORT)),
        ),
    );
    let node = bed.node(0);
    let on_node = SocketAddr::new(node.address().into(), 30080);
    let loopback = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 30080);

    let from_host_loopback = probe.tcp(node, loopback, 40).unwrap();
    assert_eq!(
        spread(&from_host_loopback).len(),
        2,
        "{from_host_loopback:#?}"
    );
    assert!(
        from_host_loopback
            .iter()
            .all(|a| a.peer_addr() == Some(loopback))
    );

    let from_host = probe.tcp(node, on_node, 40).unwrap();
    assert_eq!(spread(&from_host).len(), 2, "{from_host:#?}");
    assert!(from_host.iter().all(|a| a.peer_addr() == Some(on_node)));

    let from_pod = probe.tcp(&client, on_node, 40).unwrap();
    assert_eq!(spread(&from_pod).len(), 2, "{from_pod:#?}");
    assert!(from_pod.iter().all(|a| a.peer_addr() == Some(on_node)));

    // A port that is no NodePort on a node address is left alone (nothing listens).
    let other = probe
        .tcp(node, SocketAddr::new(node.address().into(), 30081), 1)
        .unwrap();
    assert_eq!(
        other[0].error.as_deref(),
        Some("ECONNREFUSED"),
        "{other:#?}"
    );
}
