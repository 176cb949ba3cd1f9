//! The proxy (`waggle-proxy`) against the real data path in a namespace test bed:
//! Services and EndpointSlices in, real connections through socket LB out.

mod proxy_support;

use std::{
    io::{BufRead, BufReader},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use proxy_support::{
    NodeProxy, PinDir, cluster_ip_service, endpoints_of, long_lived_client, netprobe,
};
use waggle_datapath::lb_maps::{LbMaps, PinnedLbMaps};
use waggle_ebpf_common::lb::{SCOPE_EXTERNAL, ServiceKeyV4};
use waggle_testbed::{
    TestBed,
    probe::{Attempt, spread},
};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const PORT: u16 = 80;
const BACKEND_PORT: u16 = 8080;

fn master_count(maps: &mut PinnedLbMaps) -> Option<u16> {
    let key = ServiceKeyV4 {
        address: u32::from_ne_bytes(VIP.octets()),
        port: PORT.to_be(),
        protocol: 6,
        scope: SCOPE_EXTERNAL,
    };
    maps.services_v4()
        .get(&key)
        .expect("read master")
        .map(|v| v.count)
}

#[test]
fn cluster_ip_through_the_proxy_spreads_over_all_backends_on_both_nodes() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(2));
    let probe = netprobe();
    let mut pods = Vec::new();
    let mut servers = Vec::new();
    for (node, name) in [(0, "web-a"), (0, "web-b"), (1, "web-c"), (1, "web-d")] {
        let pod = bed.add_pod(node, name).unwrap();
        servers.push(
            probe
                .serve(&bed, &pod, name, Some(BACKEND_PORT), None)
                .unwrap(),
        );
        pods.push(pod);
    }
    let client = bed.add_pod(0, "client").unwrap();
    let eps = endpoints_of(&bed, &pods);
    let eps: Vec<(IpAddr, &str)> = eps.iter().map(|(ip, n)| (*ip, n.as_str())).collect();
    let yaml = cluster_ip_service("web", VIP.into(), PORT, BACKEND_PORT, &eps);
    let pins: Vec<PinDir> = (0..2)
        .map(|i| PinDir::new(&bed, &format!("n{i}")))
        .collect();
    let _proxies: Vec<NodeProxy> = (0..2)
        .map(|i| NodeProxy::start(&bed, i, pins[i].path(), &yaml))
        .collect();

    let vip = SocketAddr::new(VIP.into(), PORT);
    let attempts = probe.tcp(&client, vip, 60).unwrap();
    let seen = spread(&attempts, "ClusterIP");
    assert_eq!(seen.len(), 4, "every backend is used: {seen:?}");
    assert!(
        attempts
            .iter()
            .all(|a| a.peer_name.as_deref() == Some("10.96.0.10:80")),
        "getpeername shows the ClusterIP: {attempts:#?}"
    );
    // A client on the other node goes through that node's proxy.
    let far = bed.add_pod(1, "far-client").unwrap();
    assert_eq!(
        spread(&probe.tcp(&far, vip, 80).unwrap(), "ClusterIP").len(),
        4
    );
}

#[test]
fn removing_a_backend_takes_effect_within_a_second_and_spares_other_connections() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(1));
    let probe = netprobe();
    let a = bed.add_pod(0, "web-a").unwrap();
    let b = bed.add_pod(0, "web-b").unwrap();
    let _sa = probe
        .serve_with(
            &bed,
            &a,
            &["serve", "--id", "web-a", "--tcp", "8080", "--echo"],
        )
        .unwrap();
    let _sb = probe
        .serve_with(
            &bed,
            &b,
            &["serve", "--id", "web-b", "--tcp", "8080", "--echo"],
        )
        .unwrap();
    let client = bed.add_pod(0, "client").unwrap();
    let both = endpoints_of(&bed, [&a, &b]);
    let both: Vec<(IpAddr, &str)> = both.iter().map(|(ip, n)| (*ip, n.as_str())).collect();
    let pins = PinDir::new(&bed, "n0");
    let proxy = NodeProxy::start(
        &bed,
        0,
        pins.path(),
        &cluster_ip_service("web", VIP.into(), PORT, BACKEND_PORT, &both),
    );
    let vip = SocketAddr::new(VIP.into(), PORT);

    // Open long-lived connections until one lands on web-b (the backend we keep).
    let (mut keeper, mut keeper_out) = loop {
        let mut child = long_lived_client(&bed, &client, vip, 3.0);
        let stdout = child.child_mut().stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first: serde_json::Value =
            serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(first["peer"], "10.96.0.10:80", "{first}");
        if first["id"] == "web-b" {
            break (child, lines);
        }
        child.kill().unwrap();
    };

    // Remove web-a; measure until the map shows it.
    let mut maps =
        PinnedLbMaps::from_ebpf(proxy.attached.as_ref().unwrap().datapath.ebpf()).unwrap();
    assert_eq!(master_count(&mut maps), Some(2));
    let only_b = endpoints_of(&bed, [&b]);
    let only_b: Vec<(IpAddr, &str)> = only_b.iter().map(|(ip, n)| (*ip, n.as_str())).collect();
    let start = Instant::now();
    proxy.set_objects(&cluster_ip_service(
        "web",
        VIP.into(),
        PORT,
        BACKEND_PORT,
        &only_b,
    ));
    while master_count(&mut maps) != Some(1) {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "backend removal not programmed within 1 s"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let latency = start.elapsed();
    eprintln!("endpoint change -> map update: {latency:?}");
    let attempts = probe.tcp(&client, vip, 20).unwrap();
    assert_eq!(
        spread(&attempts, "ClusterIP").keys().collect::<Vec<_>>(),
        ["web-b"],
        "removed backend still chosen"
    );

    // The connection to web-b kept working throughout.
    let last: serde_json::Value =
        serde_json::from_str(&keeper_out.next().unwrap().unwrap()).unwrap();
    assert!(
        last["error"].is_null(),
        "long-lived connection broke: {last}"
    );
    assert!(last["exchanges"].as_u64().unwrap() > 20, "{last}");
    keeper.wait().unwrap();
}

#[test]
fn a_proxy_restart_during_a_connection_loop_loses_no_connection() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(1));
    let probe = netprobe();
    let a = bed.add_pod(0, "web-a").unwrap();
    let b = bed.add_pod(0, "web-b").unwrap();
    let _sa = probe
        .serve(&bed, &a, "web-a", Some(BACKEND_PORT), None)
        .unwrap();
    let _sb = probe
        .serve(&bed, &b, "web-b", Some(BACKEND_PORT), None)
        .unwrap();
    let client = bed.add_pod(0, "client").unwrap();
    let eps = endpoints_of(&bed, [&a, &b]);
    let eps: Vec<(IpAddr, &str)> = eps.iter().map(|(ip, n)| (*ip, n.as_str())).collect();
    let yaml = cluster_ip_service("web", VIP.into(), PORT, BACKEND_PORT, &eps);
    let pins = PinDir::new(&bed, "n0");
    let first = NodeProxy::start(&bed, 0, pins.path(), &yaml);

    // ~300 connections, one every 10 ms, while the proxy stops and comes back.
    let mut command = probe.command(
        &client,
        &[
            "tcp",
            "--to",
            "10.96.0.10:80",
            "--count",
            "300",
            "--interval-ms",
            "10",
        ],
    );
    command
        .stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null());
    let clients = bed.spawn(command).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    first.stop();
    std::thread::sleep(Duration::from_millis(500));
    let second = NodeProxy::start(&bed, 0, pins.path(), &yaml);
    let report = second.wait_for_syncs(1, Duration::from_secs(5));
    let stats = report.last.clone().unwrap().unwrap();
    assert!(stats.full);
    assert_eq!(
        stats.writes.upserts + stats.writes.removes,
        0,
        "the restarted proxy rewrote entries: {stats:?}"
    );

    let output = clients.into_child().wait_with_output().unwrap();
    let attempts: Vec<Attempt> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(attempts.len(), 300);
    let failed: Vec<&Attempt> = attempts.iter().filter(|a| !a.ok).collect();
    assert!(
        failed.is_empty(),
        "{} connections failed across the restart: {failed:#?}",
        failed.len()
    );
    assert_eq!(spread(&attempts, "ClusterIP").len(), 2);
    drop(second);
}

#[test]
fn node_port_through_the_proxy_answers_on_the_node_address_and_follows_endpoint_changes() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(2));
    let probe = netprobe();
    let a = bed.add_pod(0, "web-a").unwrap();
    let b = bed.add_pod(1, "web-b").unwrap();
    let _sa = probe
        .serve(&bed, &a, "web-a", Some(BACKEND_PORT), None)
        .unwrap();
    let _sb = probe
        .serve(&bed, &b, "web-b", Some(BACKEND_PORT), None)
        .unwrap();
    let client = bed.add_pod(0, "client").unwrap();
    let node_port = |endpoints: &[(IpAddr, String)]| {
        let mut yaml = cluster_ip_service(
            "front",
            VIP.into(),
            PORT,
            BACKEND_PORT,
            &endpoints
                .iter()
                .map(|(ip, n)| (*ip, n.as_str()))
                .collect::<Vec<_>>(),
        );
        yaml = yaml.replacen("spec: {", "spec: {type: NodePort, ", 1);
        yaml.replacen("targetPort: 8080}", "targetPort: 8080, nodePort: 30080}", 1)
    };
    let pins = PinDir::new(&bed, "n0");
    let proxy = NodeProxy::start(
        &bed,
        0,
        pins.path(),
        &node_port(&endpoints_of(&bed, [&a, &b])),
    );
    let at_node = SocketAddr::new(bed.node(0).address().into(), 30080);
    let attempts = probe.tcp(&client, at_node, 40).unwrap();
    assert_eq!(spread(&attempts, "ClusterIP").len(), 2, "{attempts:#?}");
    assert!(
        attempts
            .iter()
            .all(|a| a.peer_name == Some(at_node.to_string())),
        "{attempts:#?}"
    );

    proxy.apply(&node_port(&endpoints_of(&bed, [&b])));
    let attempts = probe.tcp(&client, at_node, 20).unwrap();
    assert_eq!(
        spread(&attempts, "ClusterIP").keys().collect::<Vec<_>>(),
        ["web-b"]
    );

    // No endpoint left: refused at once, not a timeout.
    proxy.apply(&node_port(&[]));
    let attempts = probe.tcp(&client, at_node, 1).unwrap();
    assert_eq!(
        attempts[0].error.as_deref(),
        Some("ECONNREFUSED"),
        "{attempts:#?}"
    );
    assert!(attempts[0].elapsed_us < 900_000, "{attempts:#?}");
}
