//! The first real eBPF test: `tc_count` on a pod's host-side veth counts exactly the
//! packets the kernel received there, and a second instance on an idle pod's veth
//! stays (nearly) still.

use std::net::SocketAddr;

use aya::programs::TcAttachType;
use waggle_datapath::{Datapath, load::InterfaceCounters};
use waggle_testbed::{NetNs, Netprobe, TestBed};

const DATAGRAMS: u64 = 50;

fn load() -> Datapath {
    Datapath::load().unwrap_or_else(|error| {
        panic!("loading Waggle's BPF object failed (this test needs root or CAP_BPF + CAP_NET_ADMIN, and the BPF object built by `cargo xtask build`): {error}")
    })
}

/// Received packets of `iface` as the kernel counts them (`ip -s -j link`).
fn kernel_rx_packets(netns: &NetNs, iface: &str) -> u64 {
    let json = netns
        .ip(&["-s", "-j", "link", "show", "dev", iface])
        .expect("ip -s link");
    let value: serde_json::Value = serde_json::from_str(&json).expect("ip -j output is JSON");
    value[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("no rx stats in {json}"))
}

fn delta(after: InterfaceCounters, before: InterfaceCounters) -> InterfaceCounters {
    InterfaceCounters {
        packets: after.packets - before.packets,
        bytes: after.bytes - before.bytes,
    }
}

#[test]
fn tc_count_counts_a_pods_packets_on_its_host_veth_and_nothing_elsewhere() {
    // Two independent loads: each has its own counter map.
    let mut busy = load();
    let mut quiet = load();

    let bed: TestBed = waggle_tests::bed(TestBed::builder().nodes(1));
    let client = bed.add_pod(0, "client").unwrap();
    let server = bed.add_pod(0, "server").unwrap();
    let idle = bed.add_pod(0, "idle").unwrap();
    let node = bed.node(0);
    node.netns().run(|| {
        busy.attach_tc("tc_count", client.host_veth(), TcAttachType::Ingress)
            .expect("attach tc_count to the client's host veth");
        quiet
            .attach_tc("tc_count", idle.host_veth(), TcAttachType::Ingress)
            .expect("attach tc_count to the idle pod's host veth");
    });

    let probe = Netprobe::at(env!("CARGO_BIN_EXE_test-netprobe"));
    let _server = probe
        .serve(&bed, &server, "server", None, Some(9000))
        .unwrap();
    // Resolve neighbours first so the counted window holds our datagrams only.
    let warm = probe
        .udp(
            &client,
            SocketAddr::new(server.address().into(), 9000),
            1,
            false,
        )
        .unwrap();
    assert!(warm[0].ok, "warm-up datagram: {warm:#?}");

    let busy_before = busy.interface_counters().unwrap();
    let quiet_before = quiet.interface_counters().unwrap();
    let rx_before = kernel_rx_packets(node.netns(), client.host_veth());

    let attempts = probe
        .udp(
            &client,
            SocketAddr::new(server.address().into(), 9000),
            DATAGRAMS as u32,
            false,
        )
        .unwrap();
    assert!(attempts.iter().all(|attempt| attempt.ok), "{attempts:#?}");

    let busy_delta = delta(busy.interface_counters().unwrap(), busy_before);
    let quiet_delta = delta(quiet.interface_counters().unwrap(), quiet_before);
    let rx_delta = kernel_rx_packets(node.netns(), client.host_veth()) - rx_before;

    eprintln!(
        "tc_count on the client veth: {busy_delta:?}; kernel rx {rx_delta}; idle veth: {quiet_delta:?}"
    );
    assert!(
        busy_delta.packets >= DATAGRAMS,
        "tc_count saw {} packets on {}, expected at least {DATAGRAMS}",
        busy_delta.packets,
        client.host_veth()
    );
    // The program sees every packet the kernel received on that veth (a neighbour
    // probe may slip between the two readings).
    assert!(
        busy_delta.packets.abs_diff(rx_delta) <= 2,
        "tc_count counted {} packets, the kernel received {rx_delta}",
        busy_delta.packets
    );
    // Each datagram is one frame: Ethernet + IPv4 + UDP headers (42 bytes) and the
    // payload netprobe sends ("netprobe <seq>").
    let expected_bytes: u64 = (0..DATAGRAMS)
        .map(|seq| 42 + format!("netprobe {seq}").len() as u64)
        .sum();
    // Frames beyond the datagrams are the kernel's own (MLD reports and neighbour
    // probes of freshly created links, under 200 bytes each).
    let strays = busy_delta.packets.saturating_sub(DATAGRAMS);
    assert!(
        (expected_bytes..=expected_bytes + strays * 200).contains(&busy_delta.bytes),
        "tc_count counted {busy_delta:?}, expected {expected_bytes} bytes for {DATAGRAMS} datagrams"
    );
    // Only the kernel's own few frames of a new link, none of the client's datagrams.
    assert!(
        quiet_delta.packets <= 5,
        "the idle pod's veth counted {quiet_delta:?} while the client sent {DATAGRAMS} datagrams"
    );
}
