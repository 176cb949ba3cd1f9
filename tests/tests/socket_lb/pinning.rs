//! Loading and attaching: pinned maps and links across a daemon restart, stale pins,
//! and clear errors.

use std::net::SocketAddr;

use waggle_datapath::{
    Datapath, DatapathError,
    lb_maps::{LbMaps, PinnedLbMaps},
    socket_lb::AttachOutcome,
};
use waggle_testbed::TestBed;

use crate::{
    BACKEND_PORT, CLUSTER_IP, PORT,
    support::{self, Svc, netprobe, spread},
};

#[test]
fn pinned_state_and_links_survive_a_daemon_restart() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(1));
    let probe = netprobe();
    let server = bed.add_pod(0, "web").unwrap();
    let _server = probe
        .serve(&bed, &server, "web", Some(BACKEND_PORT), None)
        .unwrap();
    let client = bed.add_pod(0, "client").unwrap();
    let node = bed.node(0);
    let pins = support::PinDir::new(&bed);
    let vip = SocketAddr::new(CLUSTER_IP.into(), PORT);
    let svc = Svc::cluster_ip(CLUSTER_IP.into(), PORT, 9)
        .backends([SocketAddr::new(server.address().into(), BACKEND_PORT)]);

    // First daemon: load with pinned maps, attach with pinned links, program.
    {
        let mut first = Datapath::load_pinned(pins.path()).expect("load with pinned maps");
        let (_lb, outcomes) = first
            .attach_socket_lb_pinned(node.cgroup())
            .expect("attach");
        assert!(
            outcomes.iter().all(|(_, o)| *o == AttachOutcome::Attached),
            "{outcomes:?}"
        );
        support::program(&mut PinnedLbMaps::from_ebpf(first.ebpf()).unwrap(), &svc);
        assert_eq!(spread(&probe.tcp(&client, vip, 3).unwrap()).len(), 1);
    }

    // No daemon: the pinned links keep the programs attached, the pins keep the maps.
    let attempts = probe.tcp(&client, vip, 3).unwrap();
    assert_eq!(
        spread(&attempts).len(),
        1,
        "still translated with no daemon: {attempts:#?}"
    );

    // Second daemon: finds the maps (state survived) and takes over the links.
    let mut second = Datapath::load_pinned(pins.path()).expect("reload from pins");
    let mut maps = PinnedLbMaps::from_ebpf(second.ebpf()).unwrap();
    let services = maps.services_v4().entries().unwrap();
    assert_eq!(services.len(), 1, "the service survived: {services:?}");
    let slot = maps.slots().get(&services[0].1.slot_base).unwrap();
    assert!(slot.is_some(), "its backend slot survived: {services:?}");
    let (_lb, outcomes) = second
        .attach_socket_lb_pinned(node.cgroup())
        .expect("re-attach");
    assert!(
        outcomes.iter().all(|(_, o)| *o == AttachOutcome::Replaced),
        "{outcomes:?}"
    );
    let attempts = probe.tcp(&client, vip, 3).unwrap();
    assert_eq!(spread(&attempts).len(), 1, "{attempts:#?}");
    // The counters kept counting across the restart: 3 + 3 + 3 connects.
    let counters = maps_counter(&second, 9);
    assert_eq!(counters, 9);

    // Detaching removes the link pins: the VIP is unreachable again.
    waggle_datapath::socket_lb::detach_pinned(pins.path()).expect("detach");
    let attempts = probe.tcp(&client, vip, 1).unwrap();
    assert_eq!(
        attempts[0].error.as_deref(),
        Some("ENETUNREACH"),
        "{attempts:#?}"
    );
}

fn maps_counter(datapath: &Datapath, rev_nat_index: u32) -> u64 {
    PinnedLbMaps::from_ebpf(datapath.ebpf())
        .unwrap()
        .service_counters()
        .unwrap()
        .into_iter()
        .find(|(k, _)| *k == rev_nat_index)
        .map_or(0, |(_, c)| c.connections)
}

#[test]
fn clear_errors_for_a_wrong_cgroup_or_pin_directory() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(1));
    let mut datapath = support::load();
    let not_cgroup = bed.run_dir().to_owned();
    let error = datapath.attach_socket_lb(&not_cgroup).unwrap_err();
    assert!(matches!(error, DatapathError::NotCgroup2 { .. }), "{error}");
    let not_bpffs = bed.run_dir().join("not-bpffs");
    let error = Datapath::load_pinned(&not_bpffs)
        .err()
        .expect("a pin dir off bpffs fails");
    assert!(matches!(error, DatapathError::NotBpfFs { .. }), "{error}");
    assert!(error.to_string().contains("mount -t bpf"), "{error}");
}

#[test]
fn object_declares_every_pinned_map_and_socket_lb_program() {
    let datapath = support::load();
    for name in waggle_ebpf_common::maps::PINNED {
        assert!(datapath.ebpf().map(name).is_some(), "map {name} missing");
    }
    for program in waggle_datapath::socket_lb::PROGRAMS {
        assert!(
            datapath.ebpf().program(program.name).is_some(),
            "program {} missing",
            program.name
        );
    }
}

#[test]
fn a_pinned_map_with_another_layout_is_refused_not_reused() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(1));
    let pins = support::PinDir::new(&bed);
    std::fs::create_dir_all(pins.path()).unwrap();
    // Pin a backends map (4-byte keys) under the services map's name (12-byte keys),
    // as an incompatible older layout would have left it.
    let other = support::load();
    let services = pins.path().join(waggle_ebpf_common::maps::SERVICES_V4);
    other
        .ebpf()
        .map(waggle_ebpf_common::maps::BACKENDS_V4)
        .unwrap()
        .pin(&services)
        .unwrap();
    let error = Datapath::load_pinned(pins.path())
        .err()
        .expect("stale pin refused");
    assert!(
        matches!(error, DatapathError::StalePin { ref path, .. } if *path == services),
        "{error}"
    );
}
