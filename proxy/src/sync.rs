//! The one sync: apply accumulated changes to the proxy's view of the cluster,
//! re-translate the services they touch, and write the resulting map diff.
//!
//! The first sync (and any sync after a failure) is a *full* sync: it reads the maps,
//! seeds ids and slot orders from them on the first run (so a restarted proxy rewrites
//! nothing that is still right), and rewrites every entry that differs, deleting stale
//! keys. Later syncs write only the entries that changed.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use hashbrown::hash_map::EntryRef;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use waggle_datapath::lb_maps::{LbMapError, LbMaps};

use crate::{
    model::{NameRef, Names, ServiceName},
    plans::{self, Known, KnownMap, View},
    program::Programmer,
    state::{MapState, WriteStats},
    tracker::{Changes, ObjectKey},
    translate::{NodeInfo, ServicePlan},
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
    /// Shared strings of the Service port names in plans.
    names: Names,
    /// Services and their slices, by name (the tracker's shared strings).
    known: KnownMap,
    /// Numbers the syncs (marks what a sync touched).
    generation: u64,
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
            names: Names::default(),
            known: KnownMap::default(),
            generation: 0,
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
            let generation = self.generation;
            for (name, known) in &mut self.known {
                if known.service.is_some() {
                    known.touch(name, generation, &mut touched);
                }
            }
            found = Some(actual);
        }
        // Name order, so ids are allocated in the same order on every node and run.
        touched.sort_unstable();
        stats.services_translated = touched.len();
        let full = self.needs_full;
        if full {
            let services = self.known.values().filter(|k| k.service.is_some());
            let endpoints = services
                .clone()
                .flat_map(|k| k.slices.iter())
                .map(|s| s.endpoints.len())
                .sum();
            self.programmer.reserve(services.count(), endpoints);
            // A full sync diffs whole tables; dirty marks would be dropped unread.
            self.programmer.state_mut().track_dirty(false);
        }
        let view = View {
            known: &self.known,
            node: &self.node,
        };
        let programmer = &mut self.programmer;
        let mut failed = 0;
        plans::for_each_plan(view, &touched, &mut self.names, |name, plan| {
            program(programmer, name, plan, &mut failed);
        });
        // Services that gained or lost a contested frontend through another's change,
        // programmed again in this sync. A round only moves frontends to more senior
        // claimants (or to the next one, when the owner let go), so this ends.
        loop {
            let requeued = programmer.take_requeued();
            if requeued.is_empty() {
                break;
            }
            stats.services_translated += requeued.len();
            plans::for_each_plan(view, &requeued, &mut self.names, |name, plan| {
                program(programmer, name, plan, &mut failed);
            });
        }
        stats.failed_services = failed;
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
                self.programmer.synced();
                // Interned names are one per known name plus a few namespaces and
                // port names: prune when deletions left many unused.
                if self.names.len() > 2 * self.known.len() + 64 {
                    self.names.prune();
                }
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

    /// The entry of the Service `service` in the namespace of the slice `slice`, made
    /// empty if there is none, and its name.
    fn known_mut(&mut self, slice: &ObjectKey, service: &str) -> (ServiceName, &mut Known) {
        let name = NameRef {
            namespace: &slice.namespace,
            name: service,
        };
        // One lookup; a miss inserts an empty entry under the slice's namespace string.
        let entry = match self.known.entry_ref(&name) {
            EntryRef::Occupied(entry) => entry,
            EntryRef::Vacant(entry) => entry.insert_entry(Known::default()),
        };
        (entry.key().clone(), entry.into_mut())
    }

    /// Updates the view; returns the services whose plan may have changed (each once).
    fn apply_changes(&mut self, changes: Changes) -> Vec<ServiceName> {
        self.generation += 1;
        let generation = self.generation;
        let mut touched = Vec::with_capacity(changes.services.len() + changes.slices.len());
        self.known.reserve(changes.services.len());
        for (key, change) in changes.services {
            // The tracker's strings: no copy, no interning.
            let entry = self.known.entry(ServiceName {
                namespace: key.namespace,
                name: key.name,
            });
            let name = entry.key().clone();
            let known = entry.or_default();
            known.service = change.current;
            known.touch(&name, generation, &mut touched);
        }
        for (key, change) in changes.slices {
            if let Some(previous) = &change.previous
                && let Some(service) = owner(previous)
            {
                let (name, known) = self.known_mut(&key, service);
                known.slices.remove(&key.name);
                known.touch(&name, generation, &mut touched);
            }
            if let Some(current) = change.current
                && let Some(service) = owner(&current)
            {
                let (name, known) = self.known_mut(&key, service);
                known.slices.insert(key.name, current);
                known.touch(&name, generation, &mut touched);
            }
        }
        // Names left with neither a Service nor slices are forgotten (after the loops,
        // so a name is never touched twice).
        for name in &touched {
            if self.known.get(name).is_some_and(Known::is_empty) {
                self.known.remove(name);
            }
        }
        touched
    }
}

/// Programs `name`'s `plan`, or removes the service when it has none.
fn program(
    programmer: &mut Programmer,
    name: &ServiceName,
    plan: Option<&ServicePlan>,
    failed: &mut usize,
) {
    match plan {
        Some(plan) => {
            if let Err(error) = programmer.update_service(name, plan) {
                tracing::error!(%error, "service not programmed");
                *failed += 1;
            }
        }
        None => programmer.remove_service(name),
    }
}

/// The name of the Service that owns `slice` (in the slice's namespace).
fn owner(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()?
        .get(SERVICE_NAME_LABEL)
        .map(String::as_str)
}
