//! Services without backends are refused at once, under a named drop reason.

use std::net::SocketAddr;

use waggle_ebpf_common::drop::DROP_NO_BACKEND;
use waggle_testbed::TestBed;

use crate::{
    CLUSTER_IP, PORT,
    support::{self, ClusterLb, Svc, netprobe},
};

#[test]
fn service_without_backends_is_refused_at_once_and_counted() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(1));
    let probe = netprobe();
    let client = bed.add_pod(0, "client").unwrap();
    let lb = ClusterLb::attach(&bed);
    lb.add(&Svc::cluster_ip(CLUSTER_IP.into(), PORT, 7));
    lb.add(&Svc::cluster_ip(CLUSTER_IP.into(), 53, 8).udp());
    let maps = lb.maps(0);
    let before = support::drops(&maps, DROP_NO_BACKEND);

    let attempts = probe
        .tcp(&client, SocketAddr::new(CLUSTER_IP.into(), PORT), 5)
        .unwrap();
    for attempt in &attempts {
        assert_eq!(
            attempt.error.as_deref(),
            Some("ECONNREFUSED"),
            "{attempt:#?}"
        );
        assert!(
            attempt.elapsed_us < 50_000,
            "refused at once, not a timeout: {attempt:#?}"
        );
    }
    let udp = probe
        .udp(&client, SocketAddr::new(CLUSTER_IP.into(), 53), 1, false)
        .unwrap();
    assert_eq!(
        udp[0].error.as_deref(),
        Some("ECONNREFUSED"),
        "sendto(): {udp:#?}"
    );
    assert_eq!(support::drops(&maps, DROP_NO_BACKEND) - before, 6);
}
