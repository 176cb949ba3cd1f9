//! Isolation: no default route anywhere, unroutable destinations fail at once inside
//! the pod without a packet leaving it, and no link or route of the bed exists in
//! (or leads to) the root namespace.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use waggle_testbed::{NetNs, Netprobe, TestBed};

fn probe() -> Netprobe {
    Netprobe::at(env!("CARGO_BIN_EXE_netprobe"))
}

/// IPv4 and IPv6 SNMP counters of a namespace (`/proc/net/snmp`, `/proc/net/snmp6`).
fn snmp(netns: &NetNs) -> HashMap<String, u64> {
    let (v4, v6) = netns.run(|| {
        (
            std::fs::read_to_string("/proc/thread-self/net/snmp").unwrap(),
            std::fs::read_to_string("/proc/thread-self/net/snmp6").unwrap(),
        )
    });
    let mut counters = HashMap::new();
    let lines: Vec<&str> = v4.lines().filter(|line| line.starts_with("Ip:")).collect();
    for (key, value) in lines[0]
        .split_whitespace()
        .zip(lines[1].split_whitespace())
        .skip(1)
    {
        counters.insert(format!("Ip{key}"), value.parse().unwrap());
    }
    for line in v6.lines() {
        if let Some((key, value)) = line.split_once(char::is_whitespace) {
            counters.insert(key.to_owned(), value.trim().parse().unwrap());
        }
    }
    counters
}

#[test]
fn unroutable_destinations_fail_with_enetunreach_inside_the_pod() {
    let bed = TestBed::builder()
        .nodes(2)
        .external_client(true)
        .build()
        .unwrap_or_else(|error| panic!("cannot build the test bed: {error}"));
    let pod = bed.add_pod(0, "web").unwrap();
    let probe = probe();
    let before = snmp(pod.netns());
    for target in [
        "10.96.0.1:80",
        "192.0.2.1:80",
        "[2001:db8::1]:80",
        "[fd00:96::1]:80",
    ] {
        let to: SocketAddr = target.parse().unwrap();
        let tcp = probe
            .client(&pod, "tcp", to, 2, &["--timeout-ms", "3000"])
            .unwrap();
        let udp = probe.udp(&pod, to, 1, false).unwrap();
        for attempt in tcp.iter().chain(&udp) {
            assert!(!attempt.ok, "{target} must be unreachable: {attempt:#?}");
            assert_eq!(
                attempt.error.as_deref(),
                Some("ENETUNREACH"),
                "{target}: {attempt:#?}"
            );
            assert!(
                // ENETUNREACH comes from the routing lookup in connect() itself; the
                // bound leaves room for a descheduled client on a loaded machine.
                Duration::from_micros(attempt.elapsed_us) < Duration::from_millis(1000),
                "{target} took {} µs to fail: a route must be missing, not a timeout",
                attempt.elapsed_us
            );
        }
        // From the node and the external client too.
        for place_result in [
            probe.tcp(bed.node(1), to, 1).unwrap(),
            probe.tcp(bed.external().unwrap(), to, 1).unwrap(),
        ] {
            assert_eq!(
                place_result[0].error.as_deref(),
                Some("ENETUNREACH"),
                "{place_result:#?}"
            );
        }
    }
    // Every attempt died at the route lookup inside the pod; no unicast packet left it
    // (the kernel's own IPv6 multicast listener reports may, so they are not counted).
    let after = snmp(pod.netns());
    let delta = |key: &str| after[key] - before[key];
    assert_eq!(delta("IpOutRequests"), 0, "an IPv4 packet left the pod");
    assert_eq!(
        delta("Ip6OutRequests") - delta("Ip6OutMcastPkts"),
        0,
        "an IPv6 unicast packet left the pod"
    );
    assert!(
        delta("IpOutNoRoutes") >= 2 * 3,
        "IPv4 attempts failed for lack of a route: {}",
        delta("IpOutNoRoutes")
    );
    assert!(
        delta("Ip6OutNoRoutes") >= 2 * 3,
        "IPv6 attempts failed for lack of a route: {}",
        delta("Ip6OutNoRoutes")
    );
}

#[test]
fn no_namespace_has_a_default_route_and_loopback_is_up() {
    let bed = TestBed::builder()
        .nodes(2)
        .external_client(true)
        .build()
        .unwrap_or_else(|error| panic!("cannot build the test bed: {error}"));
    bed.add_pod(0, "a").unwrap();
    bed.add_pod(1, "b").unwrap();
    let namespaces = bed.namespaces();
    assert_eq!(
        namespaces.len(),
        1 + 2 + 1 + 2,
        "fabric, nodes, external, pods: {namespaces:?}"
    );
    for netns in &namespaces {
        for family in ["-4", "-6"] {
            let routes = netns
                .ip(&[family, "route", "show", "table", "all"])
                .unwrap();
            assert!(
                !routes.lines().any(|line| line.starts_with("default")),
                "{} has a default route:\n{routes}",
                netns.name()
            );
        }
        let lo = netns.ip(&["-j", "link", "show", "dev", "lo"]).unwrap();
        assert!(
            lo.contains("\"UP\""),
            "loopback of {} is down: {lo}",
            netns.name()
        );
    }
}

#[test]
fn every_link_of_the_bed_stays_inside_the_bed() {
    let root_links = || -> Vec<String> {
        let out = std::process::Command::new("ip")
            .args(["-j", "link", "show"])
            .output()
            .unwrap();
        let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        links
            .as_array()
            .unwrap()
            .iter()
            .map(|link| link["ifname"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = root_links();
    let bed = TestBed::builder()
        .nodes(2)
        .external_client(true)
        .build()
        .unwrap_or_else(|error| panic!("cannot build the test bed: {error}"));
    bed.add_pod(0, "a").unwrap();
    bed.add_pod(1, "b").unwrap();

    // Every veth's peer lives in a namespace of this bed (never the root namespace).
    let mut veths = 0;
    for netns in bed.namespaces() {
        let ids = netns.ip(&["-j", "netns", "list-id"]).unwrap();
        let ids: serde_json::Value =
            serde_json::from_str(if ids.trim().is_empty() { "[]" } else { &ids }).unwrap();
        let links: serde_json::Value =
            serde_json::from_str(&netns.ip(&["-j", "-d", "link", "show"]).unwrap()).unwrap();
        for link in links.as_array().unwrap() {
            if link["linkinfo"]["info_kind"] != "veth" {
                continue;
            }
            veths += 1;
            let nsid = link["link_netnsid"].as_i64().unwrap_or_else(|| {
                panic!(
                    "veth {} in {} has its peer in the same namespace",
                    link["ifname"],
                    netns.name()
                )
            });
            let peer_ns = ids
                .as_array()
                .unwrap()
                .iter()
                .find(|entry| entry["nsid"].as_i64() == Some(nsid))
                .and_then(|entry| entry["name"].as_str())
                .unwrap_or_else(|| {
                    panic!(
                        "veth {} in {} leads to an unnamed namespace (root?)",
                        link["ifname"],
                        netns.name()
                    )
                });
            assert!(
                peer_ns.starts_with(bed.prefix()),
                "veth {} leads to {peer_ns}",
                link["ifname"]
            );
        }
    }
    assert_eq!(veths, 2 * (2 + 1 + 2), "both ends of 5 veth pairs");

    let after = root_links();
    let new: Vec<_> = after.iter().filter(|name| !before.contains(name)).collect();
    assert!(
        new.is_empty(),
        "links appeared in the root namespace: {new:?}"
    );
    let root_routes = std::process::Command::new("ip")
        .args(["route", "show", "table", "all"])
        .output()
        .unwrap();
    let root_routes = String::from_utf8_lossy(&root_routes.stdout);
    for ours in ["10.244.", "10.250.", "fd00:244:", "fd00:250:"] {
        assert!(
            !root_routes.contains(ours),
            "root namespace has a route for {ours}:\n{root_routes}"
        );
    }
}
