//! Two Services claiming one frontend (an externalIP, a load-balancer IP, a NodePort):
//! the oldest Service owns it whatever the order of events, the other keeps its other
//! frontends, and the frontend is handed over in the sync that removes the owner's claim.

mod conflicts_support;

use conflicts_support::*;

#[test]
fn the_older_service_owns_the_frontend_whatever_the_order() {
    let both = [new_service(), old_service()].concat();
    let mut together = Proxy::new();
    together.apply(&both);
    let expected = together.frontends();
    assert_eq!(
        expected[CONTESTED],
        "[ExternalIP,Maglev] rev_nat=10.96.0.1:80 slots=[\"10.0.0.1:8080\"] maglev=[\"10.0.0.1:8080\"]",
        "zz-old (older, though later by name) owns the externalIP"
    );
    for first in [old_service(), new_service()] {
        let mut proxy = Proxy::new();
        proxy.apply(&first);
        let stats = proxy.apply(&both);
        assert!(!stats.full);
        assert_eq!(proxy.frontends(), expected);
        assert_eq!(proxy.conflicts(), 1);
    }
}

#[test]
fn the_losing_service_keeps_its_other_frontends() {
    let mut proxy = Proxy::new();
    proxy.apply(&[new_service(), old_service()].concat());
    let frontends = proxy.frontends();
    let own = "rev_nat=10.96.0.2:80 slots=[\"10.0.0.2:8080\"]";
    assert!(frontends["10.96.0.2:80/TCP ext"].contains(own));
    assert!(frontends["0.0.0.0:30080/TCP ext"].contains(own));
    assert!(!frontends[CONTESTED].contains("10.0.0.2"));
    assert_eq!(frontends.len(), 4, "{frontends:#?}");
    assert_eq!(proxy.conflicts(), 1);
}

#[test]
fn deleting_the_owner_hands_the_frontend_over_in_the_same_sync() {
    let mut proxy = Proxy::new();
    proxy.apply(&[new_service(), old_service()].concat());
    let stats = proxy.apply(&new_service());
    assert!(!stats.full);
    assert_eq!(
        stats.services_translated, 2,
        "the deleted owner and the heir"
    );
    let mut alone = Proxy::new();
    alone.apply(&new_service());
    assert_eq!(proxy.frontends(), alone.frontends());
    assert_eq!(proxy.conflicts(), 0);
}

#[test]
fn an_owner_that_drops_the_frontend_hands_it_over() {
    let mut proxy = Proxy::new();
    proxy.apply(&[new_service(), old_service()].concat());
    let old_without = service(
        "zz-old",
        OLD,
        "10.96.0.1",
        "ports: [{port: 80, targetPort: 8080}]",
        "10.0.0.1",
    );
    proxy.apply(&[new_service(), old_without.clone()].concat());
    let mut fresh = Proxy::new();
    fresh.apply(&[new_service(), old_without].concat());
    assert_eq!(proxy.frontends(), fresh.frontends());
    assert!(proxy.frontends()[CONTESTED].contains("rev_nat=10.96.0.2:80"));
    assert_eq!(proxy.conflicts(), 0);
}

#[test]
fn an_older_service_arriving_takes_over_both_scopes() {
    // The newer service is externalTrafficPolicy Local (two scopes); once the older
    // (Cluster policy, one scope) takes over, no internal-scope entry of the newer one
    // may remain for that address.
    let new_local = service(
        "aa-new",
        NEW,
        "10.96.0.2",
        "type: NodePort, externalTrafficPolicy: Local, externalIPs: [198.51.100.7], \
         ports: [{port: 80, targetPort: 8080, nodePort: 30080}]",
        "10.0.0.2",
    );
    let mut proxy = Proxy::new();
    proxy.apply(&new_local);
    assert!(proxy.frontends().contains_key("198.51.100.7:80/TCP int"));
    let stats = proxy.apply(&[new_local.clone(), old_service()].concat());
    assert!(!stats.full);
    let frontends = proxy.frontends();
    assert!(
        !frontends.contains_key("198.51.100.7:80/TCP int"),
        "{frontends:#?}"
    );
    assert!(frontends[CONTESTED].contains("rev_nat=10.96.0.1:80"));
    assert!(frontends["0.0.0.0:30080/TCP int"].contains("rev_nat=10.96.0.2:80"));
    let mut fresh = Proxy::new();
    fresh.apply(&[old_service(), new_local].concat());
    assert_eq!(frontends, fresh.frontends());
    assert_eq!(proxy.conflicts(), 1);
}

#[test]
fn without_timestamps_the_first_name_wins_and_a_timestamp_beats_none() {
    let node_port = |name: &str, created: Option<&str>, ip: &str, backend: &str| {
        service(
            name,
            created,
            ip,
            "type: NodePort, ports: [{port: 80, targetPort: 8080, nodePort: 30500}]",
            backend,
        )
    };
    let a = node_port("a", None, "10.96.0.1", "10.0.0.1");
    let b = node_port("b", None, "10.96.0.2", "10.0.0.2");
    let mut proxy = Proxy::new();
    proxy.apply(&b);
    proxy.apply(&[a.clone(), b.clone()].concat());
    let key = "0.0.0.0:30500/TCP ext";
    assert!(proxy.frontends()[key].contains("rev_nat=10.96.0.1:80"));
    let c = node_port("c", NEW, "10.96.0.3", "10.0.0.3");
    proxy.apply(&[a, b, c].concat());
    assert!(proxy.frontends()[key].contains("rev_nat=10.96.0.3:80"));
    assert_eq!(
        proxy.conflicts(),
        1,
        "one contested frontend, withheld from two"
    );
}

#[test]
fn an_unrelated_change_stays_incremental() {
    let mut proxy = Proxy::new();
    let other = |backend: &str| {
        service(
            "other",
            NEW,
            "10.96.0.9",
            "ports: [{port: 80, targetPort: 8080}]",
            backend,
        )
    };
    proxy.apply(&[new_service(), old_service(), other("10.0.0.9")].concat());
    let before = proxy.frontends();
    let stats = proxy.apply(&[new_service(), old_service(), other("10.0.0.8")].concat());
    assert_eq!(stats.services_translated, 1);
    let after = proxy.frontends();
    assert_eq!(before[CONTESTED], after[CONTESTED]);
    assert_eq!(proxy.conflicts(), 1);
}
