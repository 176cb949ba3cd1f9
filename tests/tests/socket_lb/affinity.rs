//! sessionAffinity: ClientIP, keyed by the client's network namespace.

use std::net::SocketAddr;

use waggle_datapath::lb_maps::LbMaps;
use waggle_testbed::TestBed;

use crate::{
    BACKEND_PORT, CLUSTER_IP, PORT,
    support::{ClusterLb, Svc, netprobe, spread},
};

#[test]
fn affinity_sticks_until_the_timeout_then_chooses_again() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(1));
    let probe = netprobe();
    let pods: Vec<_> = (0..3)
        .map(|i| bed.add_pod(0, &format!("sticky-{i}")).unwrap())
        .collect();
    let _servers: Vec<_> = pods
        .iter()
        .map(|pod| {
            probe
                .serve(&bed, pod, pod.name(), Some(BACKEND_PORT), None)
                .unwrap()
        })
        .collect();
    let client = bed.add_pod(0, "client").unwrap();
    let lb = ClusterLb::attach(&bed);
    // The kernel keeps whole seconds, so an entry lives between TIMEOUT_SECS - 1 and
    // TIMEOUT_SECS seconds: 4 keeps back-to-back connects (milliseconds apart) sticky
    // across second boundaries even when a loaded machine stalls the client for a few
    // seconds between two of them.
    const TIMEOUT_SECS: u32 = 4;
    lb.add(
        &Svc::cluster_ip(CLUSTER_IP.into(), PORT, 6)
            .affinity(TIMEOUT_SECS)
            .backends(
                pods.iter()
                    .map(|p| SocketAddr::new(p.address().into(), BACKEND_PORT)),
            ),
    );
    let vip = SocketAddr::new(CLUSTER_IP.into(), PORT);

    // Back-to-back connects (each well inside the timeout of the previous) stick.
    let first = probe.tcp(&client, vip, 30).unwrap();
    let seen = spread(&first);
    assert_eq!(
        seen.len(),
        1,
        "one backend while the affinity entry is fresh: {seen:?}"
    );

    // The sticky backend leaves the service and, used by no other service, the backends
    // map (what the proxy does when its endpoint goes): the fresh entry is not reused.
    let sticky = seen.keys().next().unwrap().clone();
    let sticky_pod = pods.iter().find(|p| p.name() == sticky).unwrap();
    let mut maps = lb.maps(0);
    let sticky_id = maps
        .backends_v4()
        .entries()
        .unwrap()
        .into_iter()
        .find(|(_, b)| b.address == u32::from_ne_bytes(sticky_pod.address().octets()))
        .map(|(id, _)| id)
        .expect("the sticky backend is in the map");
    maps.backends_v4().remove(&sticky_id).unwrap();
    let remaining: Vec<_> = pods.iter().filter(|p| p.name() != sticky).collect();
    lb.add(
        &Svc::cluster_ip(CLUSTER_IP.into(), PORT, 6)
            .affinity(TIMEOUT_SECS)
            .backends(
                remaining
                    .iter()
                    .map(|p| SocketAddr::new(p.address().into(), BACKEND_PORT)),
            ),
    );
    let moved = spread(&probe.tcp(&client, vip, 10).unwrap());
    assert_eq!(moved.len(), 1, "sticks to the new choice: {moved:?}");
    assert!(
        !moved.contains_key(&sticky),
        "the removed backend is not reused: {moved:?}"
    );

    // After the timeout a new choice is made each time; over a few rounds (each one
    // sticky again right away) more than one backend must turn up. Each round picks
    // one of the two remaining backends at random: 30 rounds all landing on the same
    // one has odds of 2^-30 (10 rounds would fail about once in a thousand runs); it
    // usually takes one or two rounds.
    let mut chosen = std::collections::BTreeSet::new();
    chosen.extend(moved.into_keys());
    for _ in 0..30 {
        std::thread::sleep(std::time::Duration::from_millis(
            u64::from(TIMEOUT_SECS) * 1_000 + 1_200,
        ));
        let round = probe.tcp(&client, vip, 3).unwrap();
        let ids = spread(&round);
        assert_eq!(ids.len(), 1, "sticky within a round: {ids:?}");
        chosen.extend(ids.into_keys());
        if chosen.len() > 1 {
            return;
        }
    }
    panic!("affinity never expired: always {chosen:?}");
}
