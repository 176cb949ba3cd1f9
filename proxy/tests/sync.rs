//! Behaviour of the sync loop over in-memory maps: idempotence, restart from existing
//! maps, full resync after a failed write, stale-key cleanup, slot stability.

use std::net::IpAddr;

use waggle_datapath::lb_maps::LbMaps;
use waggle_ebpf_common::lb::{ServiceKeyV4, ServiceValue};
use waggle_proxy::{
    dump::dump,
    mem_maps::MemMaps,
    source::{TrackerHandle, file},
    state::MapState,
    sync::Syncer,
    translate::NodeInfo,
};

fn node() -> NodeInfo {
    NodeInfo {
        name: "node-a".into(),
        addresses: vec!["192.168.0.10".parse::<IpAddr>().unwrap()],
    }
}

fn service(name: &str, ip: &str, backends: &[&str]) -> String {
    let endpoints: String = backends
        .iter()
        .map(|b| format!("  - addresses: [{b}]\n    nodeName: node-a\n"))
        .collect();
    let node_port = 30_000 + ip.rsplit('.').next().unwrap().parse::<u16>().unwrap();
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n\
         spec: {{type: NodePort, clusterIP: {ip}, clusterIPs: [{ip}], ports: [{{port: 80, targetPort: 8080, nodePort: {node_port}}}]}}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {name}-1, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}\n\
         addressType: IPv4\nports: [{{port: 8080, protocol: TCP}}]\nendpoints:\n{endpoints}---\n"
    )
}

fn feed(handle: &TrackerHandle, yaml: &str) {
    let objects = file::parse(yaml, std::path::Path::new("test.yaml")).unwrap();
    file::relist(handle, objects);
}

fn sync(syncer: &mut Syncer<MemMaps>, handle: &TrackerHandle) -> waggle_proxy::sync::SyncStats {
    let changes = handle.lock().take();
    syncer.sync(changes).unwrap()
}

#[test]
fn a_sync_without_changes_writes_nothing() {
    let handle = TrackerHandle::new();
    let mut syncer = Syncer::new(MemMaps::default(), node());
    feed(
        &handle,
        &service("a", "10.96.0.1", &["10.0.0.1", "10.0.0.2"]),
    );
    let first = sync(&mut syncer, &handle);
    assert!(first.full);
    assert!(first.writes.upserts > 0);
    feed(
        &handle,
        &service("a", "10.96.0.1", &["10.0.0.1", "10.0.0.2"]),
    );
    let second = sync(&mut syncer, &handle);
    assert!(!second.full);
    assert_eq!(second.writes.upserts + second.writes.removes, 0);
}

#[test]
fn a_restarted_proxy_rewrites_nothing_and_keeps_ids_and_slots() {
    let handle = TrackerHandle::new();
    let mut syncer = Syncer::new(MemMaps::default(), node());
    let yaml = [
        service("a", "10.96.0.1", &["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        service("b", "10.96.0.2", &["10.0.0.3", "10.0.0.4"]),
    ]
    .concat();
    feed(&handle, &yaml);
    sync(&mut syncer, &handle);
    // Churn so ids and slots are no longer in a fresh proxy's natural order.
    feed(
        &handle,
        &[
            service("a", "10.96.0.1", &["10.0.0.3", "10.0.0.5"]),
            service("b", "10.96.0.2", &["10.0.0.4", "10.0.0.1"]),
        ]
        .concat(),
    );
    sync(&mut syncer, &handle);
    let before = dump(&MapState::read(syncer.maps_mut()).unwrap());

    // "Restart": a new proxy over the same maps, with the same objects.
    let maps = syncer.into_maps();
    let handle = TrackerHandle::new();
    feed(
        &handle,
        &[
            service("a", "10.96.0.1", &["10.0.0.3", "10.0.0.5"]),
            service("b", "10.96.0.2", &["10.0.0.4", "10.0.0.1"]),
        ]
        .concat(),
    );
    let mut restarted = Syncer::new(maps, node());
    let stats = sync(&mut restarted, &handle);
    assert!(stats.full);
    assert_eq!(
        stats.writes.upserts + stats.writes.removes,
        0,
        "restart rewrote entries"
    );
    assert_eq!(before, dump(&MapState::read(restarted.maps_mut()).unwrap()));
}

#[test]
fn a_failed_sync_is_repaired_by_a_full_resync() {
    let handle = TrackerHandle::new();
    let mut syncer = Syncer::new(MemMaps::default(), node());
    feed(&handle, &service("a", "10.96.0.1", &["10.0.0.1"]));
    sync(&mut syncer, &handle);
    feed(
        &handle,
        &[
            service("a", "10.96.0.1", &["10.0.0.1", "10.0.0.2"]),
            service("c", "10.96.0.3", &["10.0.0.9"]),
        ]
        .concat(),
    );
    syncer.maps_mut().fail_services_v4_after(1);
    let changes = handle.lock().take();
    assert!(syncer.sync(changes).is_err());
    // Someone also leaves a stale key in the map meanwhile.
    let stale = ServiceKeyV4 {
        address: 0x0102_0304,
        port: 80u16.to_be(),
        protocol: 6,
        ..Default::default()
    };
    syncer
        .maps_mut()
        .services_v4()
        .insert(&stale, &ServiceValue::default())
        .unwrap();
    let stats = sync(&mut syncer, &handle);
    assert!(stats.full, "the sync after a failure must be full");
    assert!(
        syncer
            .maps_mut()
            .services_v4()
            .get(&stale)
            .unwrap()
            .is_none(),
        "stale key not deleted"
    );
    assert_eq!(
        dump(syncer.desired()),
        dump(&MapState::read(syncer.maps_mut()).unwrap())
    );
}

#[test]
fn a_frontend_that_outgrows_its_slot_range_moves_in_order_and_frees_the_old_one() {
    let handle = TrackerHandle::new();
    let mut syncer = Syncer::new(MemMaps::default(), node());
    let three = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    feed(&handle, &service("a", "10.96.0.1", &three));
    sync(&mut syncer, &handle);
    let entry = |syncer: &mut Syncer<MemMaps>| {
        let state = MapState::read(syncer.maps_mut()).unwrap();
        let (_, value) = state
            .services_v4
            .iter()
            .find(|(k, _)| k.address == u32::from_ne_bytes([10, 96, 0, 1]))
            .map(|(k, v)| (*k, *v))
            .unwrap();
        let ids: Vec<u32> = state.slot_ids(&value).map(Option::unwrap).collect();
        (value.slot_base, ids, state)
    };
    let (small_base, small_ids, _) = entry(&mut syncer);
    assert_eq!(small_ids.len(), 3);

    // Six backends do not fit the range of four: the order moves to a range of eight,
    // the three kept backends first, in their slots.
    let six = [&three[..], &["10.0.0.4", "10.0.0.5", "10.0.0.6"]].concat();
    feed(&handle, &service("a", "10.96.0.1", &six));
    sync(&mut syncer, &handle);
    let (base, ids, state) = entry(&mut syncer);
    assert_ne!(base, small_base);
    assert_eq!(ids.len(), 6);
    assert_eq!(ids[..3], small_ids[..]);
    assert_eq!(
        state.slots.len(),
        2 * 6,
        "ClusterIP and NodePort, no stale slot"
    );
    let text = dump(&state);
    assert!(!text.contains("STRAY"), "{text}");
    assert_eq!(dump(syncer.desired()), text);

    // The freed range is reused by the next service that needs one (after the sync).
    feed(
        &handle,
        &[
            service("a", "10.96.0.1", &six),
            service("b", "10.96.0.2", &["10.0.0.7"]),
        ]
        .concat(),
    );
    sync(&mut syncer, &handle);
    let state = MapState::read(syncer.maps_mut()).unwrap();
    let bases: Vec<u32> = state.services_v4.iter().map(|(_, v)| v.slot_base).collect();
    assert!(bases.contains(&small_base), "{bases:?}");
    assert!(!dump(&state).contains("STRAY"));
}

#[test]
fn removing_a_service_removes_all_its_keys_and_unshared_backends() {
    let handle = TrackerHandle::new();
    let mut syncer = Syncer::new(MemMaps::default(), node());
    feed(
        &handle,
        &[
            service("a", "10.96.0.1", &["10.0.0.1", "10.0.0.2"]),
            service("b", "10.96.0.2", &["10.0.0.2"]),
        ]
        .concat(),
    );
    sync(&mut syncer, &handle);
    feed(&handle, &service("b", "10.96.0.2", &["10.0.0.2"]));
    sync(&mut syncer, &handle);
    let state = MapState::read(syncer.maps_mut()).unwrap();
    let text = dump(&state);
    assert!(!text.contains("10.96.0.1"), "{text}");
    assert!(!text.contains("10.0.0.1"), "{text}");
    assert!(text.contains("10.0.0.2:8080"), "{text}");
    assert!(
        state.maglev.len() == 1 && state.rev_nat_v4.len() == 1,
        "{text}"
    );
}

#[test]
fn nothing_is_programmed_before_both_initial_lists() {
    let handle = TrackerHandle::new();
    handle.update(|t| {
        t.services.begin_relist();
        t.services.end_relist();
    });
    assert!(!handle.lock().is_synced());
    handle.update(|t| {
        t.slices.begin_relist();
        t.slices.end_relist();
    });
    assert!(handle.lock().is_synced());
}
