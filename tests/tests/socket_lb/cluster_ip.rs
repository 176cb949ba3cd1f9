//! ClusterIP over TCP: spreading, getpeername(), IPv6, dual-stack sockets, scopes, and
//! isolation of addresses that are no service.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use waggle_ebpf_common::drop::DROP_INT_LOCAL_NO_LOCAL_BACKEND;
use waggle_testbed::TestBed;

use crate::{
    BACKEND_PORT, CLUSTER_IP, PORT,
    support::{self, ClusterLb, Svc, netprobe, spread},
};

#[test]
fn cluster_ip_tcp_spreads_over_backends_on_both_nodes_and_getpeername_shows_the_vip() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(2));
    let probe = netprobe();
    let pods: Vec<_> = ["web-0", "web-1", "web-2"]
        .iter()
        .enumerate()
        .map(|(i, name)| bed.add_pod(i % 2, name).unwrap())
        .collect();
    let _servers: Vec<_> = pods
        .iter()
        .map(|pod| {
            probe
                .serve(&bed, pod, pod.name(), Some(BACKEND_PORT), None)
                .unwrap()
        })
        .collect();
    let clients = [
        bed.add_pod(0, "client-0").unwrap(),
        bed.add_pod(1, "client-1").unwrap(),
    ];

    let lb = ClusterLb::attach(&bed);
    lb.add(
        &Svc::cluster_ip(CLUSTER_IP.into(), PORT, 1).backends(
            pods.iter()
                .map(|p| SocketAddr::new(p.address().into(), BACKEND_PORT)),
        ),
    );

    let vip = SocketAddr::new(CLUSTER_IP.into(), PORT);
    for client in &clients {
        let attempts = probe.tcp(client, vip, 60).unwrap();
        let seen = spread(&attempts);
        assert_eq!(
            seen.len(),
            3,
            "from {}: every backend reached: {seen:?}",
            client.name()
        );
        for attempt in &attempts {
            assert_eq!(
                attempt.peer_addr(),
                Some(vip),
                "getpeername() shows the VIP"
            );
            // No NAT on the wire: the backend sees the client pod itself.
            assert_eq!(
                attempt.server_saw_addr().map(|a| a.ip()),
                Some(IpAddr::V4(client.address())),
            );
        }
    }
    let counters = lb.maps(0).service_counters().unwrap();
    let connections = counters
        .iter()
        .find(|(k, _)| *k == 1)
        .map_or(0, |(_, c)| c.connections);
    assert_eq!(
        connections, 60,
        "node0 counted its 60 connects for rev_nat_index 1"
    );
}

#[test]
fn unknown_vip_stays_unreachable() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(1));
    let client = bed.add_pod(0, "client").unwrap();
    let _lb = ClusterLb::attach(&bed);
    let attempts = netprobe()
        .tcp(
            &client,
            SocketAddr::new(Ipv4Addr::new(10, 96, 0, 99).into(), PORT),
            1,
        )
        .unwrap();
    assert_eq!(
        attempts[0].error.as_deref(),
        Some("ENETUNREACH"),
        "{attempts:#?}"
    );
}

#[test]
fn cluster_ip_v6_tcp() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(2));
    let probe = netprobe();
    let backends = [
        bed.add_pod(0, "v6-a").unwrap(),
        bed.add_pod(1, "v6-b").unwrap(),
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
    let vip_addr: Ipv6Addr = "fd00:96::10".parse().unwrap();
    lb.add(
        &Svc::cluster_ip(vip_addr.into(), PORT, 2).backends(
            backends
                .iter()
                .map(|p| SocketAddr::new(p.address_v6().into(), BACKEND_PORT)),
        ),
    );
    let vip = SocketAddr::new(vip_addr.into(), PORT);
    let attempts = probe.tcp(&client, vip, 30).unwrap();
    assert_eq!(spread(&attempts).len(), 2, "{attempts:#?}");
    assert!(
        attempts.iter().all(|a| a.peer_addr() == Some(vip)),
        "{attempts:#?}"
    );
}

#[test]
fn dual_stack_socket_reaches_an_ipv4_service_through_its_mapped_address() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(1));
    let probe = netprobe();
    let server = bed.add_pod(0, "web").unwrap();
    let _server = probe
        .serve(&bed, &server, "web", Some(BACKEND_PORT), Some(5353))
        .unwrap();
    let client = bed.add_pod(0, "client").unwrap();
    let lb = ClusterLb::attach(&bed);
    let backend = |port| SocketAddr::new(server.address().into(), port);
    lb.add(&Svc::cluster_ip(CLUSTER_IP.into(), PORT, 12).backends([backend(BACKEND_PORT)]));
    lb.add(
        &Svc::cluster_ip(CLUSTER_IP.into(), 53, 13)
            .udp()
            .backends([backend(5353)]),
    );
    let mapped = |port| SocketAddr::new(CLUSTER_IP.to_ipv6_mapped().into(), port);
    // netprobe prints IPv4-mapped addresses as plain IPv4.
    let shown = |port| SocketAddr::new(CLUSTER_IP.into(), port);

    let tcp = probe.tcp(&client, mapped(PORT), 3).unwrap();
    assert_eq!(spread(&tcp).len(), 1, "{tcp:#?}");
    assert!(
        tcp.iter().all(|a| a.peer_addr() == Some(shown(PORT))),
        "{tcp:#?}"
    );
    let unconnected = probe.udp(&client, mapped(53), 3, false).unwrap();
    assert_eq!(spread(&unconnected).len(), 1, "{unconnected:#?}");
    assert!(
        unconnected.iter().all(|a| a.from_addr() == Some(shown(53))),
        "{unconnected:#?}"
    );
    let connected = probe.udp(&client, mapped(53), 3, true).unwrap();
    assert_eq!(spread(&connected).len(), 1, "{connected:#?}");
    assert!(
        connected.iter().all(|a| a.peer_addr() == Some(shown(53))),
        "{connected:#?}"
    );
}

#[test]
fn two_scope_service_gives_in_node_clients_the_internal_scope() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(2));
    let probe = netprobe();
    let local = bed.add_pod(0, "local").unwrap();
    let remote = bed.add_pod(1, "remote").unwrap();
    let _servers: Vec<_> = [&local, &remote]
        .iter()
        .map(|pod| {
            probe
                .serve(&bed, *pod, pod.name(), Some(BACKEND_PORT), None)
                .unwrap()
        })
        .collect();
    let client = bed.add_pod(0, "client").unwrap();
    let lb = ClusterLb::attach(&bed);
    let at = |pod: &waggle_testbed::Pod| SocketAddr::new(pod.address().into(), BACKEND_PORT);
    // External scope: the remote backend only; internal scope: the local one.
    lb.add(
        &Svc::cluster_ip(CLUSTER_IP.into(), PORT, 10)
            .backends([at(&remote)])
            .internal([at(&local)]),
    );
    let seen = spread(
        &probe
            .tcp(&client, SocketAddr::new(CLUSTER_IP.into(), PORT), 10)
            .unwrap(),
    );
    assert_eq!(seen.keys().collect::<Vec<_>>(), ["local"], "{seen:?}");

    // internalTrafficPolicy: Local with no local backend: refused, under its own reason.
    let empty_vip = Ipv4Addr::new(10, 96, 0, 11);
    lb.add(
        &Svc::cluster_ip(empty_vip.into(), PORT, 11)
            .flags(waggle_ebpf_common::lb::service_flags::INT_LOCAL)
            .backends([at(&remote)])
            .internal([]),
    );
    let maps = lb.maps(0);
    let before = support::drops(&maps, DROP_INT_LOCAL_NO_LOCAL_BACKEND);
    let refused = probe
        .tcp(&client, SocketAddr::new(empty_vip.into(), PORT), 1)
        .unwrap();
    assert_eq!(
        refused[0].error.as_deref(),
        Some("ECONNREFUSED"),
        "{refused:#?}"
    );
    assert_eq!(
        support::drops(&maps, DROP_INT_LOCAL_NO_LOCAL_BACKEND) - before,
        1
    );
}
