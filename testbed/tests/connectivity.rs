//! Pod-to-pod (same node, across nodes, IPv4 and IPv6), pod-to-node and
//! external-to-node traffic through a real bed, checked with netprobe.

use std::net::{IpAddr, SocketAddr};

use waggle_testbed::{Netprobe, TestBed, probe::Attempt};

fn probe() -> Netprobe {
    Netprobe::at(env!("CARGO_BIN_EXE_netprobe"))
}

fn assert_all_reach(attempts: &[Attempt], count: usize, id: &str, client: IpAddr) {
    assert_eq!(attempts.len(), count, "{attempts:#?}");
    for attempt in attempts {
        assert!(attempt.ok, "attempt failed: {attempt:#?}");
        assert_eq!(attempt.id.as_deref(), Some(id), "{attempt:#?}");
        let saw = attempt.server_saw_addr().expect("server reported the peer");
        assert_eq!(
            saw.ip(),
            client,
            "server saw {saw}, not the client's address"
        );
    }
}

#[test]
fn pods_reach_pods_on_the_same_and_other_nodes_over_v4_and_v6() {
    let bed = TestBed::builder()
        .nodes(2)
        .build()
        .unwrap_or_else(|error| panic!("cannot build the test bed: {error}"));
    let client = bed.add_pod(0, "client").unwrap();
    let local = bed.add_pod(0, "local").unwrap();
    let remote = bed.add_pod(1, "remote").unwrap();
    let probe = probe();
    let _local = probe
        .serve(&bed, &local, "local", Some(8080), Some(8081))
        .unwrap();
    let _remote = probe
        .serve(&bed, &remote, "remote", Some(8080), Some(8081))
        .unwrap();

    for (server, id) in [(&local, "local"), (&remote, "remote")] {
        for (server_ip, client_ip) in [
            (IpAddr::V4(server.address()), IpAddr::V4(client.address())),
            (
                IpAddr::V6(server.address_v6()),
                IpAddr::V6(client.address_v6()),
            ),
        ] {
            let tcp = probe
                .tcp(&client, SocketAddr::new(server_ip, 8080), 3)
                .unwrap();
            assert_all_reach(&tcp, 3, id, client_ip);
            assert_eq!(tcp[0].peer_addr(), Some(SocketAddr::new(server_ip, 8080)));
            let udp = probe
                .udp(&client, SocketAddr::new(server_ip, 8081), 3, false)
                .unwrap();
            assert_all_reach(&udp, 3, id, client_ip);
            assert_eq!(
                udp[0].from_addr(),
                Some(SocketAddr::new(server_ip, 8081)),
                "{udp:#?}"
            );
            let connected = probe
                .udp(&client, SocketAddr::new(server_ip, 8081), 2, true)
                .unwrap();
            assert_all_reach(&connected, 2, id, client_ip);
            assert_eq!(
                connected[0].peer_addr(),
                Some(SocketAddr::new(server_ip, 8081))
            );
        }
    }
}

#[test]
fn external_client_reaches_node_addresses_but_not_pods() {
    let bed = TestBed::builder()
        .nodes(2)
        .external_client(true)
        .build()
        .unwrap_or_else(|error| panic!("cannot build the test bed: {error}"));
    let pod = bed.add_pod(1, "web").unwrap();
    let probe = probe();
    let _node = probe
        .serve(&bed, bed.node(1), "node1", Some(30080), Some(30081))
        .unwrap();
    let _pod = probe.serve(&bed, &pod, "web", Some(8080), None).unwrap();
    let ext = bed.external().expect("external client requested");

    let tcp = probe
        .tcp(ext, SocketAddr::new(bed.node(1).address().into(), 30080), 2)
        .unwrap();
    assert_all_reach(&tcp, 2, "node1", ext.address().into());
    let tcp6 = probe
        .tcp(
            ext,
            SocketAddr::new(bed.node(1).address_v6().into(), 30080),
            1,
        )
        .unwrap();
    assert_all_reach(&tcp6, 1, "node1", ext.address_v6().into());
    let udp = probe
        .udp(
            ext,
            SocketAddr::new(bed.node(1).address().into(), 30081),
            2,
            false,
        )
        .unwrap();
    assert_all_reach(&udp, 2, "node1", ext.address().into());

    // The external client has no route to pod CIDRs.
    let to_pod = probe
        .tcp(ext, SocketAddr::new(pod.address().into(), 8080), 1)
        .unwrap();
    assert_eq!(
        to_pod[0].error.as_deref(),
        Some("ENETUNREACH"),
        "{to_pod:#?}"
    );

    // A pod reaches another node's address (routed by its own node), with its own source.
    let from_pod = probe
        .tcp(
            &pod,
            SocketAddr::new(bed.node(1).address().into(), 30080),
            1,
        )
        .unwrap();
    assert_all_reach(&from_pod, 1, "node1", pod.address().into());
    let other_node = bed.add_pod(0, "other").unwrap();
    let across = probe
        .tcp(
            &other_node,
            SocketAddr::new(bed.node(1).address().into(), 30080),
            1,
        )
        .unwrap();
    assert_all_reach(&across, 1, "node1", other_node.address().into());
}

#[test]
fn node_reaches_its_pods_from_its_own_address() {
    let bed = TestBed::builder()
        .nodes(1)
        .build()
        .unwrap_or_else(|error| panic!("cannot build the test bed: {error}"));
    let pod = bed.add_pod(0, "web").unwrap();
    let probe = probe();
    let _server = probe.serve(&bed, &pod, "web", Some(8080), None).unwrap();
    let node = bed.node(0);
    let attempts = probe
        .tcp(node, SocketAddr::new(pod.address().into(), 8080), 1)
        .unwrap();
    assert_all_reach(&attempts, 1, "web", node.address().into());
    let attempts = probe
        .tcp(node, SocketAddr::new(pod.address_v6().into(), 8080), 1)
        .unwrap();
    assert_all_reach(&attempts, 1, "web", node.address_v6().into());
}

#[test]
fn closed_ports_and_silent_peers_are_reported_by_errno_name() {
    let bed = TestBed::builder()
        .nodes(1)
        .build()
        .unwrap_or_else(|error| panic!("cannot build the test bed: {error}"));
    let client = bed.add_pod(0, "client").unwrap();
    let target = bed.add_pod(0, "no-server").unwrap();
    let probe = probe();
    for ip in target.addresses() {
        let to = SocketAddr::new(ip, 9);
        let tcp = probe.tcp(&client, to, 1).unwrap();
        assert_eq!(tcp[0].error.as_deref(), Some("ECONNREFUSED"), "{tcp:#?}");
        let connected = probe.udp(&client, to, 1, true).unwrap();
        assert_eq!(
            connected[0].error.as_deref(),
            Some("ECONNREFUSED"),
            "{connected:#?}"
        );
        let silent = probe
            .client(&client, "udp", to, 1, &["--timeout-ms", "200"])
            .unwrap();
        assert_eq!(silent[0].error.as_deref(), Some("ETIMEDOUT"), "{silent:#?}");
        assert!(silent[0].elapsed_us >= 200_000, "{silent:#?}");
    }
}
