//! The proxy driven against in-memory maps, and views of those maps, for the
//! frontend-conflict tests.
#![allow(dead_code)]

use std::{collections::BTreeMap, net::IpAddr};

use waggle_ebpf_common::lb::{SCOPE_EXTERNAL, service_flags as sf};
use waggle_proxy::{
    dump::{DumpKey, dump, service_flag_names},
    mem_maps::MemMaps,
    model::{port_from_map, v4_from_map},
    source::{TrackerHandle, file},
    state::MapState,
    sync::{SyncStats, Syncer},
    translate::NodeInfo,
};

pub fn node() -> NodeInfo {
    NodeInfo {
        name: "node-a".into(),
        addresses: vec!["192.168.0.10".parse::<IpAddr>().unwrap()],
    }
}

/// A Service with one port 80 → 8080, one endpoint, `spec` fields added to the spec.
pub fn service(
    name: &str,
    created: Option<&str>,
    cluster_ip: &str,
    spec: &str,
    backend: &str,
) -> String {
    let created = created.map_or(String::new(), |c| format!(", creationTimestamp: \"{c}\""));
    format!(
        "apiVersion: v1\nkind: Service\n\
         metadata: {{name: {name}, namespace: default{created}}}\n\
         spec: {{clusterIP: {cluster_ip}, clusterIPs: [{cluster_ip}], {spec}}}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {name}-1, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}\n\
         addressType: IPv4\nports: [{{port: 8080, protocol: TCP}}]\n\
         endpoints:\n  - addresses: [{backend}]\n    nodeName: node-a\n---\n"
    )
}

pub const OLD: Option<&str> = Some("2024-01-01T00:00:00Z");
pub const NEW: Option<&str> = Some("2025-06-01T00:00:00Z");

/// `old` (created first, named last) and `new` both list externalIP 198.51.100.7:80.
pub fn old_service() -> String {
    service(
        "zz-old",
        OLD,
        "10.96.0.1",
        "externalIPs: [198.51.100.7], ports: [{port: 80, targetPort: 8080}]",
        "10.0.0.1",
    )
}

pub fn new_service() -> String {
    service(
        "aa-new",
        NEW,
        "10.96.0.2",
        "type: NodePort, externalIPs: [198.51.100.7], \
         ports: [{port: 80, targetPort: 8080, nodePort: 30080}]",
        "10.0.0.2",
    )
}

pub struct Proxy {
    handle: TrackerHandle,
    syncer: Syncer<MemMaps>,
}

impl Proxy {
    pub fn new() -> Self {
        Self {
            handle: TrackerHandle::new(),
            syncer: Syncer::new(MemMaps::default(), node()),
        }
    }

    /// Makes `yaml` the whole state of the cluster and syncs.
    pub fn apply(&mut self, yaml: &str) -> SyncStats {
        let objects = file::parse(yaml, std::path::Path::new("test.yaml")).unwrap();
        file::relist(&self.handle, objects);
        let changes = self.handle.lock().take();
        let stats = self.syncer.sync(changes).expect("sync");
        let actual = MapState::read(self.syncer.maps_mut()).unwrap();
        assert_eq!(
            dump(self.syncer.desired()),
            dump(&actual),
            "maps match the desired state"
        );
        assert_consistent(&actual);
        stats
    }

    /// The maps by meaning (ids resolved to addresses).
    pub fn frontends(&mut self) -> BTreeMap<String, String> {
        frontends(&MapState::read(self.syncer.maps_mut()).unwrap())
    }

    pub fn conflicts(&self) -> usize {
        self.syncer.programmer().frontend_conflicts()
    }
}

pub fn backend(state: &MapState, id: u32) -> String {
    let b = state
        .backends_v4
        .get(&id)
        .expect("referenced backend exists");
    format!("{}:{}", v4_from_map(b.address), port_from_map(b.port))
}

/// Each master entry rendered with its ids resolved: flags, reverse-NAT address,
/// backends in slot order and the Maglev table's backends.
pub fn frontends(state: &MapState) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in state.services_v4.iter() {
        let rev = state
            .rev_nat_v4
            .get(&u32::from(v.rev_nat_index))
            .expect("referenced rev_nat exists");
        let slots: Vec<String> = state
            .slot_ids(v)
            .map(|id| backend(state, id.expect("slot within count holds a backend")))
            .collect();
        let mut maglev: Vec<String> = Vec::new();
        if v.flags & sf::MAGLEV != 0 && k.scope == SCOPE_EXTERNAL {
            let table = state
                .maglev
                .get(&u32::from(v.rev_nat_index))
                .expect("maglev table of a Maglev frontend exists");
            maglev = table
                .backend_ids
                .iter()
                .filter(|id| **id != 0)
                .map(|id| backend(state, *id))
                .collect();
            maglev.sort();
            maglev.dedup();
        }
        out.insert(
            k.dump_key(),
            format!(
                "[{}] rev_nat={}:{} slots={slots:?} maglev={maglev:?}",
                service_flag_names(v.flags).join(","),
                v4_from_map(rev.address),
                port_from_map(rev.port),
            ),
        );
    }
    out
}

/// Nothing stale: every non-empty slot is within a frontend's count, and every
/// backend, reverse NAT entry and Maglev table is referenced.
pub fn assert_consistent(state: &MapState) {
    let mut used_backends = std::collections::BTreeSet::new();
    let mut used_rev_nat = std::collections::BTreeSet::new();
    let mut used_slots = std::collections::BTreeSet::new();
    for (k, v) in state.services_v4.iter() {
        used_rev_nat.insert(u32::from(v.rev_nat_index));
        for (i, id) in state.slot_ids(v).enumerate() {
            let id = id.unwrap_or_else(|| panic!("{}: slot {} empty", k.dump_key(), i + 1));
            used_slots.insert(v.slot_base + i as u32);
            used_backends.insert(id);
        }
    }
    for (index, id) in state.slots.iter() {
        assert!(
            used_slots.contains(index),
            "slot {index} (#{id}) beyond every count"
        );
    }
    for (id, table) in state.maglev.iter() {
        assert!(used_rev_nat.contains(id), "maglev table {id} unused");
        used_backends.extend(table.backend_ids.iter().filter(|b| **b != 0));
    }
    for (id, _) in state.backends_v4.iter() {
        assert!(used_backends.contains(id), "backend #{id} unused");
    }
    for (id, _) in state.rev_nat_v4.iter() {
        assert!(used_rev_nat.contains(id), "rev_nat {id} unused");
    }
}

pub const CONTESTED: &str = "198.51.100.7:80/TCP ext";
