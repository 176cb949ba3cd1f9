//! UDP services, connected (connect4/6 + getpeername) and unconnected (sendmsg4/6 +
//! recvmsg4/6).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use waggle_testbed::TestBed;

use crate::support::{ClusterLb, Svc, netprobe, spread};

#[test]
fn udp_connected_and_unconnected_see_the_vip() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(2));
    let probe = netprobe();
    let pods = [
        bed.add_pod(0, "dns-0").unwrap(),
        bed.add_pod(1, "dns-1").unwrap(),
    ];
    let _servers: Vec<_> = pods
        .iter()
        .map(|pod| {
            probe
                .serve(&bed, pod, pod.name(), None, Some(5353))
                .unwrap()
        })
        .collect();
    let client = bed.add_pod(0, "client").unwrap();
    let lb = ClusterLb::attach(&bed);
    let vip_addr = Ipv4Addr::new(10, 96, 0, 53);
    lb.add(
        &Svc::cluster_ip(vip_addr.into(), 53, 3).udp().backends(
            pods.iter()
                .map(|p| SocketAddr::new(p.address().into(), 5353)),
        ),
    );
    let vip = SocketAddr::new(vip_addr.into(), 53);

    let connected = probe.udp(&client, vip, 30, true).unwrap();
    assert_eq!(spread(&connected).len(), 2, "{connected:#?}");
    for attempt in &connected {
        assert_eq!(
            attempt.peer_addr(),
            Some(vip),
            "getpeername() of a connected UDP socket"
        );
    }
    // Connected sockets keep their reverse translation in socket storage.
    assert_eq!(lb.datagram_records_v4(0), 0, "records of connected sockets");

    let unconnected = probe.udp(&client, vip, 30, false).unwrap();
    assert_eq!(spread(&unconnected).len(), 2, "{unconnected:#?}");
    for attempt in &unconnected {
        assert_eq!(attempt.from_addr(), Some(vip), "recvfrom() reports the VIP");
    }
    // One record per unconnected socket (each sends once, to one backend).
    assert_eq!(
        lb.datagram_records_v4(0),
        30,
        "records of unconnected sends"
    );

    // Each unconnected send counts a packet; every socket here is a new flow.
    let counters = lb.maps(0).service_counters().unwrap();
    let (_, c) = counters
        .iter()
        .find(|(k, _)| *k == 3)
        .expect("counters of the service");
    assert_eq!((c.connections, c.packets), (60, 30), "{c:?}");
}

#[test]
fn udp_v6_connected_and_unconnected_see_the_vip() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(1));
    let probe = netprobe();
    let server = bed.add_pod(0, "dns").unwrap();
    let _server = probe.serve(&bed, &server, "dns", None, Some(5353)).unwrap();
    let client = bed.add_pod(0, "client").unwrap();
    let lb = ClusterLb::attach(&bed);
    let vip_addr: Ipv6Addr = "fd00:96::53".parse().unwrap();
    lb.add(
        &Svc::cluster_ip(vip_addr.into(), 53, 4)
            .udp()
            .backends([SocketAddr::new(server.address_v6().into(), 5353)]),
    );
    let vip = SocketAddr::new(vip_addr.into(), 53);
    let unconnected = probe.udp(&client, vip, 3, false).unwrap();
    assert_eq!(spread(&unconnected).len(), 1, "{unconnected:#?}");
    assert!(
        unconnected.iter().all(|a| a.from_addr() == Some(vip)),
        "recvfrom(): {unconnected:#?}"
    );
    let connected = probe.udp(&client, vip, 3, true).unwrap();
    assert_eq!(spread(&connected).len(), 1, "{connected:#?}");
    assert!(
        connected.iter().all(|a| a.peer_addr() == Some(vip)),
        "getpeername(): {connected:#?}"
    );
}
