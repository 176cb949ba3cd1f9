//! The one sync: apply accumulated changes to the proxy's view of the cluster,
//! re-translate the services they touch, and write the resulting map diff.
//!
//! The first sync (and any sync after a failure) is a *full* sync: it reads the maps,
//! seeds ids and slot orders from them on the first run (so a restarted proxy rewrites
//! nothing that is still right), and rewrites every entry that differs, deleting stale
//! keys. Later syncs write only the entries that changed.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use rustc_hash::{FxHashMap, FxHashSet};
use waggle_datapath::lb_maps::{LbMapError, LbMaps};

use crate::{
    model::ServiceName,
    program::Programmer,
    state::{MapState, WriteStats},
    tracker::{Changes, ObjectKey},
    translate::{self, NodeInfo},
};

/// Label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What a sync did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    pub full: bool,
    pub services_translated: usize,
    pub writes: WriteStats,
    pub duration: Duration,
    /// Part of `duration` spent translating services and computing the diff.
    pub translate: Duration,
    /// Services that could not be programmed (ids exhausted); logged.
    pub failed_services: usize,
}

/// The proxy's view of the cluster plus the programmer and the maps it writes.
pub struct Syncer<M: LbMaps> {
    maps: M,
    node: NodeInfo,
    programmer: Programmer,
    services: FxHashMap<ServiceName, Arc<Service>>,
    /// Slices by owning service, then by name (name order: the order endpoints are
    /// merged in).
    slices: FxHashMap<ServiceName, BTreeMap<String, Arc<EndpointSlice>>>,
    seeded: bool,
    needs_full: bool,
}

impl<M: LbMaps> Syncer<M> {
    pub fn new(maps: M, node: NodeInfo) -> Self {
        let mut programmer = Programmer::new();
        programmer.set_node_addresses(&node.addresses);
        Self {
            maps,
            node,
            programmer,
            services: FxHashMap::default(),
            slices: FxHashMap::default(),
            seeded: false,
            needs_full: true,
        }
    }

    pub fn maps(&self) -> &M {
        &self.maps
    }

    pub fn maps_mut(&mut self) -> &mut M {
        &mut self.maps
    }

    /// Gives the maps back (a restart test hands them to a new syncer).
    pub fn into_maps(self) -> M {
        self.maps
    }

    pub fn programmer(&self) -> &Programmer {
        &self.programmer
    }

    /// The desired state (what the maps hold after a successful sync).
    pub fn desired(&self) -> &MapState {
        self.programmer.state()
    }

    /// Forces the next sync to be a full one.
    pub fn force_full(&mut self) {
        self.needs_full = true;
    }

    /// Changes the node addresses on which NodePorts answer.
    pub fn set_node_addresses(&mut self, addresses: Vec<IpAddr>) {
        self.programmer.set_node_addresses(&addresses);
        self.node.addresses = addresses;
    }

    /// Applies `changes` and writes the map diff.
    pub fn sync(&mut self, changes: Changes) -> Result<SyncStats, LbMapError> {
        let start = Instant::now();
        let mut stats = SyncStats::default();
        let mut touched = self.apply_changes(changes);
        // The maps as found, on the first sync (seeding ids, then diffed against).
        let mut found = None;
        if !self.seeded {
            let actual = MapState::read(&mut self.maps)?;
            self.programmer.seed(&actual);
            for name in self.services.keys() {
                if !touched.contains(name) {
                    touched.insert(name.clone());
                }
            }
            found = Some(actual);
        }
        // Name order, so ids are allocated in the same order on every node and run.
        let mut touched: Vec<ServiceName> = touched.into_iter().collect();
        touched.sort_unstable();
        stats.services_translated = touched.len();
        let full = self.needs_full;
        if full {
            let endpoints = self
                .slices
                .values()
                .flat_map(|m| m.values())
                .map(|s| s.endpoints.len())
                .sum();
            self.programmer.reserve(self.services.len(), endpoints);
            // A full sync diffs whole tables; dirty marks would be dropped unread.
            self.programmer.state_mut().track_dirty(false);
        }
        for name in &touched {
            match self.services.get(name) {
                Some(service) => {
                    let slices = self.slices.get(name);
                    let plan = translate::translate(
                        service,
                        slices.into_iter().flat_map(|m| m.values().map(|s| &**s)),
                        &self.node,
                    );
                    if let Err(error) = self.programmer.update_service(name, &plan) {
                        tracing::error!(%error, "service not programmed");
                        stats.failed_services += 1;
                    }
                }
                None => self.programmer.remove_service(name),
            }
        }
        self.programmer.state_mut().track_dirty(true);
        stats.translate = start.elapsed();
        let result = if let Some(actual) = found.filter(|_| full) {
            self.programmer
                .state_mut()
                .apply_full_against(&mut self.maps, &actual)
        } else if full {
            self.programmer.state_mut().apply_full(&mut self.maps)
        } else {
            self.programmer.state_mut().apply_dirty(&mut self.maps)
        };
        match result {
            Ok(writes) => {
                if !self.seeded {
                    self.programmer.clear_hints();
                    self.seeded = true;
                }
                self.needs_full = false;
                stats.full = full;
                stats.writes = writes;
                stats.duration = start.elapsed();
                Ok(stats)
            }
            Err(error) => {
                self.needs_full = true;
                Err(error)
            }
        }
    }

    /// Updates the view; returns the services whose plan may have changed.
    fn apply_changes(&mut self, changes: Changes) -> FxHashSet<ServiceName> {
        let mut touched = FxHashSet::with_capacity_and_hasher(
            changes.services.len() + changes.slices.len(),
            Default::default(),
        );
        self.services.reserve(changes.services.len());
        self.slices.reserve(changes.slices.len());
        for (key, change) in changes.services {
            let name = ServiceName::new(key.namespace, key.name);
            match change.current {
                Some(service) => self.services.insert(name.clone(), service),
                None => self.services.remove(&name),
            };
            touched.insert(name);
        }
        for (key, change) in changes.slices {
            if let Some(previous) = &change.previous
                && let Some(owner) = owner(&key, previous)
            {
                if let Some(slices) = self.slices.get_mut(&owner) {
                    slices.remove(&key.name);
                    if slices.is_empty() {
                        self.slices.remove(&owner);
                    }
                }
                touched.insert(owner);
            }
            if let Some(current) = change.current
                && let Some(owner) = owner(&key, &current)
            {
                self.slices
                    .entry(owner.clone())
                    .or_default()
                    .insert(key.name, current);
                touched.insert(owner);
            }
        }
        touched
    }
}

fn owner(key: &ObjectKey, slice: &EndpointSlice) -> Option<ServiceName> {
    let service = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some(ServiceName::new(key.namespace.as_str(), service.as_str()))
}
