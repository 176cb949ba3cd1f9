//! Turns [`ServicePlan`]s into map entries, keeping them stable across updates.
//!
//! The [`Programmer`] owns the desired [`MapState`] and, per service, the
//! [`Fragment`] of entries it contributed. Updating a service builds its new fragment
//! (taking id references first), then drops whatever the old one had that the new one
//! lacks, so:
//! - a backend keeps its id while any service port uses it;
//! - a backend keeps its slot: a removed backend's slot is filled by the last slot and
//!   the count shrinks, new backends are appended — connections through unchanged
//!   backends never see their slot change. A frontend's slots are one range of the
//!   slots array ([`SlotRanges`]); one that outgrows its range is copied, in the same
//!   order, to a larger one;
//! - only entries whose value changes are marked dirty for the next map write.
//!
//! A frontend two services claim is programmed for its owner only ([`Claims`]); a
//! service that gains or loses a frontend because of another's change is requeued
//! ([`Programmer::take_requeued`]) and programmed again in the same sync.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use waggle_ebpf_common::{
    lb::{
        BackendV4, BackendV6, RevNatV4, RevNatV6, SCOPE_EXTERNAL, ServiceKeyV4, ServiceKeyV6,
        ServiceValue, service_flags as sf,
    },
    maps::{MAX_BACKENDS, MAX_REV_NAT, MAX_SLOTS},
};

use crate::{
    claims::{Claims, Frontend},
    endpoints::Endpoint,
    ids::{Exhausted, IdAllocator},
    maglev::{self, MaglevBackend},
    model::{
        BackendAddr, Created, Family, Protocol, ServiceName, ServicePortName, port_to_map,
        v4_to_map,
    },
    slot_ranges::{SlotRange, SlotRanges, SlotsExhausted, range_size},
    state::MapState,
    translate::{MasterPlan, ServicePlan},
};

/// A frontend's services-map key (its "master" entry, in Cilium's words), either family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MasterKey {
    V4(ServiceKeyV4),
    V6(ServiceKeyV6),
}

impl MasterKey {
    fn new(ip: IpAddr, port: u16, protocol: Protocol, scope: u8) -> Self {
        match ip {
            IpAddr::V4(ip) => Self::V4(ServiceKeyV4 {
                address: v4_to_map(ip),
                port: port_to_map(port),
                protocol: protocol.number(),
                scope,
            }),
            IpAddr::V6(ip) => Self::V6(ServiceKeyV6 {
                address: ip.octets(),
                port: port_to_map(port),
                protocol: protocol.number(),
                scope,
            }),
        }
    }

    fn set(&self, state: &mut MapState, value: ServiceValue) {
        match *self {
            Self::V4(k) => state.services_v4.set(k, value),
            Self::V6(k) => state.services_v6.set(k, value),
        }
    }

    fn scope(&self) -> u8 {
        match self {
            Self::V4(k) => k.scope,
            Self::V6(k) => k.scope,
        }
    }

    fn unset(&self, state: &mut MapState) {
        match *self {
            Self::V4(k) => state.services_v4.unset(&k),
            Self::V6(k) => state.services_v6.unset(&k),
        }
    }
}

/// A frontend's backends in slot order and the range of the slots array holding them
/// (none until it first has a backend).
#[derive(Debug, Default)]
struct Slots {
    ids: Vec<u32>,
    range: Option<SlotRange>,
}

/// Ids or slots ran out.
#[derive(Debug, thiserror::Error)]
pub enum OutOfRoom {
    #[error(transparent)]
    Ids(#[from] Exhausted),
    #[error(transparent)]
    Slots(#[from] SlotsExhausted),
}

/// Identity of a reverse-NAT index.
pub type RevNatKey = (ServicePortName, Family);

/// The entries one service contributed (to release them when it changes).
#[derive(Debug, Default)]
struct Fragment {
    /// Master keys it programmed (it owns their frontends).
    masters: Vec<MasterKey>,
    backends: Vec<BackendAddr>,
    rev_nats: Vec<RevNatKey>,
    maglev: Vec<u32>,
    /// Frontends it claims that another service owns (usually none).
    withheld: Vec<Frontend>,
    /// The service's age, which decides contested frontends.
    created: Created,
}

impl Fragment {
    /// An empty fragment with room for what `plan` contributes.
    fn sized_for(plan: &ServicePlan) -> Self {
        let masters = plan.ports.iter().map(|p| p.masters.len()).sum();
        let backends = plan
            .ports
            .iter()
            .flat_map(|p| p.masters.iter().map(|m| m.backends.len()))
            .chain(
                plan.ports
                    .iter()
                    .filter_map(|p| Some(p.maglev.as_ref()?.len())),
            )
            .sum();
        Self {
            masters: Vec::with_capacity(masters),
            backends: Vec::with_capacity(backends),
            rev_nats: Vec::with_capacity(plan.ports.len()),
            maglev: Vec::new(),
            withheld: Vec::new(),
            created: plan.created,
        }
    }
}

/// Health-check state of an `externalTrafficPolicy: Local` service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub node_port: u16,
    pub local_endpoints: usize,
}

/// A service could not be programmed.
#[derive(Debug, thiserror::Error)]
#[error("service {service}: {source}")]
pub struct ProgramError {
    pub service: ServiceName,
    #[source]
    pub source: OutOfRoom,
}

/// Owns the desired map state and the stable ids and slot orders behind it.
#[derive(Debug)]
pub struct Programmer {
    state: MapState,
    backend_ids: IdAllocator<BackendAddr>,
    rev_nat_ids: IdAllocator<RevNatKey>,
    /// Reverse-NAT index hints by ClusterIP master key (restart).
    rev_nat_hints: HashMap<MasterKey, u16>,
    slots: HashMap<MasterKey, Slots>,
    ranges: SlotRanges,
    fragments: HashMap<ServiceName, Fragment>,
    /// Which service owns each frontend.
    claims: Claims,
    /// Shared with the sync reports: copied (cheaply, the names are shared strings)
    /// only when a sync changes it while a report still holds the previous one.
    rev_nat_names: Arc<BTreeMap<u16, ServicePortName>>,
    health: BTreeMap<ServiceName, HealthCheck>,
    /// Reused buffer of backend ids (one master at a time).
    scratch: Vec<u32>,
}

impl Default for Programmer {
    fn default() -> Self {
        Self::new()
    }
}

impl Programmer {
    pub fn new() -> Self {
        Self {
            state: MapState::default(),
            backend_ids: IdAllocator::new("backend", MAX_BACKENDS),
            // Ids index the backend and reverse-NAT arrays; `rev_nat_index` is a u16.
            rev_nat_ids: IdAllocator::new("rev_nat", MAX_REV_NAT.min(u32::from(u16::MAX) + 1)),
            rev_nat_hints: HashMap::default(),
            slots: HashMap::default(),
            ranges: SlotRanges::new(MAX_SLOTS),
            fragments: HashMap::default(),
            claims: Claims::default(),
            rev_nat_names: Arc::default(),
            health: BTreeMap::new(),
            scratch: Vec::new(),
        }
    }

    /// The desired state of every map.
    pub fn state(&self) -> &MapState {
        &self.state
    }

    pub fn state_mut(&mut self) -> &mut MapState {
        &mut self.state
    }

    /// Which service port each `rev_nat_index` belongs to (metrics labels).
    pub fn rev_nat_names(&self) -> &Arc<BTreeMap<u16, ServicePortName>> {
        &self.rev_nat_names
    }

    /// Health-check ports and local endpoint counts of ETP Local services.
    pub fn health_checks(&self) -> &BTreeMap<ServiceName, HealthCheck> {
        &self.health
    }

    /// Number of programmed frontends (services-map entries, any scope).
    pub fn programmed_masters(&self) -> usize {
        self.slots.len()
    }

    pub fn programmed_backends(&self) -> usize {
        self.backend_ids.len()
    }

    /// Frontends withheld from at least one service because another owns them.
    pub fn frontend_conflicts(&self) -> usize {
        self.claims.contested()
    }

    /// Services that gained or lost a frontend since they were last programmed
    /// (another service's change decided it): program them again, in name order.
    pub fn take_requeued(&mut self) -> Vec<ServiceName> {
        self.claims.take_requeued()
    }

    /// Makes room for `services` services with `endpoints` endpoints in all (before a
    /// full sync), so the tables do not grow step by step. Sized for IPv4, the usual
    /// family; IPv6 tables grow as needed.
    pub fn reserve(&mut self, services: usize, endpoints: usize) {
        self.state.services_v4.reserve(services);
        self.state.slots.reserve(endpoints);
        self.state.backends_v4.reserve(endpoints);
        self.state.rev_nat_v4.reserve(services);
        self.backend_ids.reserve(endpoints);
        self.rev_nat_ids.reserve(services);
        self.slots
            .reserve(services.saturating_sub(self.slots.len()));
        self.fragments
            .reserve(services.saturating_sub(self.fragments.len()));
        self.claims.reserve(services);
    }

    /// Seeds ids and slot orders from maps a previous proxy programmed, so a restart
    /// finds every entry already correct and rewrites nothing.
    pub fn seed(&mut self, actual: &MapState) {
        for (id, b) in actual.backends_v4.iter() {
            if let Some(protocol) = Protocol::from_number(b.protocol) {
                let ip = IpAddr::V4(crate::model::v4_from_map(b.address));
                let addr = BackendAddr {
                    ip,
                    port: crate::model::port_from_map(b.port),
                    protocol,
                };
                self.backend_ids.hint(addr, *id);
            }
        }
        for (id, b) in actual.backends_v6.iter() {
            if let Some(protocol) = Protocol::from_number(b.protocol) {
                let ip = IpAddr::V6(b.address.into());
                let addr = BackendAddr {
                    ip,
                    port: crate::model::port_from_map(b.port),
                    protocol,
                };
                self.backend_ids.hint(addr, *id);
            }
        }
        let mut seeded: Vec<(MasterKey, &ServiceValue)> = Vec::new();
        for (k, v) in actual.services_v4.iter() {
            seeded.push((MasterKey::V4(*k), v));
        }
        for (k, v) in actual.services_v6.iter() {
            seeded.push((MasterKey::V6(*k), v));
        }
        let mut ranges = Vec::new();
        for (key, v) in seeded {
            if v.flags & sf::CLUSTER_IP != 0 && key.scope() == SCOPE_EXTERNAL {
                self.rev_nat_hints.insert(key, v.rev_nat_index);
            }
            // The backends in slot order, if every slot holds one.
            let ids: Option<Vec<u32>> = actual.slot_ids(v).collect();
            let Some(ids) = ids.filter(|ids| !ids.is_empty()) else {
                continue;
            };
            let range = SlotRange {
                base: v.slot_base,
                size: range_size(ids.len()),
            };
            ranges.push(range);
            self.slots.insert(
                key,
                Slots {
                    ids,
                    range: Some(range),
                },
            );
        }
        // Ranges that overlap another (a corrupt map) are dropped: those frontends get
        // fresh ranges when programmed.
        let kept: HashSet<SlotRange> = self.ranges.seed(ranges).into_iter().collect();
        self.slots
            .retain(|_, s| s.range.is_some_and(|r| kept.contains(&r)));
    }

    /// Forgets restart hints that no service claimed, and frees the slot ranges of
    /// seeded frontends that no service programmed.
    pub fn clear_hints(&mut self) {
        self.backend_ids.clear_hints();
        self.rev_nat_ids.clear_hints();
        self.rev_nat_hints.clear();
        let state = &self.state;
        let ranges = &mut self.ranges;
        self.slots.retain(|key, slots| {
            let programmed = match key {
                MasterKey::V4(k) => state.services_v4.get(k).is_some(),
                MasterKey::V6(k) => state.services_v6.get(k).is_some(),
            };
            if !programmed && let Some(range) = slots.range {
                ranges.free(range);
            }
            programmed
        });
    }

    /// The sync's writes reached the maps: slot ranges freed by it may be reused.
    pub fn synced(&mut self) {
        self.ranges.recycle();
    }

    /// Sets the node addresses on which NodePorts answer (loopback added).
    pub fn set_node_addresses(&mut self, addresses: &[IpAddr]) {
        let mut v4: HashSet<u32> = [v4_to_map(std::net::Ipv4Addr::LOCALHOST)]
            .into_iter()
            .collect();
        let mut v6: HashSet<[u8; 16]> = [std::net::Ipv6Addr::LOCALHOST.octets()]
            .into_iter()
            .collect();
        for ip in addresses {
            match ip {
                IpAddr::V4(ip) => v4.insert(v4_to_map(*ip)),
                IpAddr::V6(ip) => v6.insert(ip.octets()),
            };
        }
        let stale4: Vec<u32> = self
            .state
            .node_addrs_v4
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !v4.contains(k))
            .collect();
        let stale6: Vec<[u8; 16]> = self
            .state
            .node_addrs_v6
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !v6.contains(k))
            .collect();
        stale4
            .iter()
            .for_each(|k| self.state.node_addrs_v4.unset(k));
        stale6
            .iter()
            .for_each(|k| self.state.node_addrs_v6.unset(k));
        v4.into_iter()
            .for_each(|k| self.state.node_addrs_v4.set(k, 1));
        v6.into_iter()
            .for_each(|k| self.state.node_addrs_v6.set(k, 1));
    }

    /// Programs `plan` for `name`, replacing what the service had before.
    pub fn update_service(
        &mut self,
        name: &ServiceName,
        plan: &ServicePlan,
    ) -> Result<(), ProgramError> {
        self.claims.unrequeue(name);
        let mut fragment = Fragment::sized_for(plan);
        if let Err(source) = self.build(name, plan, &mut fragment) {
            // Undo the partial build and leave the service unprogrammed.
            let old = self.fragments.remove(name);
            self.release_old(name, fragment);
            if let Some(old) = old {
                self.release_old(name, old);
            }
            self.health.remove(name);
            return Err(ProgramError {
                service: name.clone(),
                source,
            });
        }
        if let Some(old) = self.fragments.insert(name.clone(), fragment) {
            self.release_old(name, old);
        }
        match plan.health_check_node_port {
            Some(node_port) => {
                let local_endpoints = plan
                    .ports
                    .iter()
                    .map(|p| p.local_endpoints)
                    .max()
                    .unwrap_or(0);
                self.health.insert(
                    name.clone(),
                    HealthCheck {
                        node_port,
                        local_endpoints,
                    },
                );
            }
            None => {
                self.health.remove(name);
            }
        }
        Ok(())
    }

    /// Removes everything `name` programmed.
    pub fn remove_service(&mut self, name: &ServiceName) {
        self.claims.unrequeue(name);
        if let Some(old) = self.fragments.remove(name) {
            self.release_old(name, old);
        }
        self.health.remove(name);
    }

    /// Releases what `old`, a previous fragment of `name`, holds and the current one
    /// (none after a removal) does not: its references, the entries of frontends it
    /// still owns, and its claims (handing contested frontends over).
    fn release_old(&mut self, name: &ServiceName, old: Fragment) {
        let new = self.fragments.get(name);
        let new_masters: HashSet<MasterKey> = new
            .map(|n| n.masters.iter().copied().collect())
            .unwrap_or_default();
        let gone: Vec<MasterKey> = old
            .masters
            .iter()
            .copied()
            .filter(|k| !new_masters.contains(k))
            .collect();
        // Frontends still claimed; only needed when some master or claim went away.
        let claimed: HashSet<Frontend> = match new {
            Some(n) if !gone.is_empty() || !old.withheld.is_empty() => n
                .masters
                .iter()
                .map(|k| Frontend::of(*k))
                .chain(n.withheld.iter().copied())
                .collect(),
            _ => HashSet::default(),
        };
        let maglev = match new {
            Some(n) if !old.maglev.is_empty() => {
                let new_maglev: HashSet<u32> = n.maglev.iter().copied().collect();
                old.maglev
                    .iter()
                    .copied()
                    .filter(|id| !new_maglev.contains(id))
                    .collect()
            }
            Some(_) => Vec::new(),
            None => old.maglev,
        };
        let claims = &self.claims;
        let stale = Fragment {
            // Entries of a frontend another service took over are already gone.
            masters: gone
                .iter()
                .copied()
                .filter(|k| claims.owns(Frontend::of(*k), name))
                .collect(),
            maglev,
            backends: old.backends,
            rev_nats: old.rev_nats,
            ..Fragment::default()
        };
        self.release(&stale);
        let fragments = &self.fragments;
        let age = |n: &ServiceName| fragments.get(n).map_or(Created::UNKNOWN, |f| f.created);
        for frontend in gone
            .iter()
            .map(|k| Frontend::of(*k))
            .chain(old.withheld.iter().copied())
        {
            if !claimed.contains(&frontend) {
                self.claims.release(frontend, name, age);
            }
        }
    }

    /// Claims the frontend of `key` for `name`; whether `name` owns it. A previous
    /// owner that lost it has its entries for it removed now.
    fn claim(&mut self, name: &ServiceName, key: MasterKey, fragment: &mut Fragment) -> bool {
        let frontend = Frontend::of(key);
        let fragments = &self.fragments;
        let age = |n: &ServiceName| fragments.get(n).map_or(Created::UNKNOWN, |f| f.created);
        let claim = self.claims.claim(frontend, name, fragment.created, age);
        if let Some(loser) = claim.evict {
            // Its (previous) fragment still lists the keys; releasing it later skips
            // them, as it no longer owns the frontend.
            let keys: Vec<MasterKey> = self.fragments.get(&loser).map_or_else(Vec::new, |f| {
                f.masters
                    .iter()
                    .copied()
                    .filter(|k| Frontend::of(*k) == frontend)
                    .collect()
            });
            keys.iter().for_each(|k| self.unset_master(k));
        }
        if !claim.owned && !fragment.withheld.contains(&frontend) {
            fragment.withheld.push(frontend);
        }
        claim.owned
    }

    fn build(
        &mut self,
        name: &ServiceName,
        plan: &ServicePlan,
        fragment: &mut Fragment,
    ) -> Result<(), OutOfRoom> {
        for port in &plan.ports {
            let rev_key: RevNatKey = (port.name.clone(), port.family);
            if self.rev_nat_ids.get(&rev_key).is_none() {
                let cluster_key = MasterKey::new(
                    port.rev_nat.0,
                    port.rev_nat.1,
                    port.name.protocol,
                    SCOPE_EXTERNAL,
                );
                if let Some(hint) = self.rev_nat_hints.remove(&cluster_key) {
                    self.rev_nat_ids.hint(rev_key.clone(), u32::from(hint));
                }
            }
            let rev_nat = self.rev_nat_ids.acquire(&rev_key)?;
            fragment.rev_nats.push(rev_key);
            let rev_nat = u16::try_from(rev_nat).expect("rev_nat ids are limited to u16");
            if self.rev_nat_names.get(&rev_nat) != Some(&port.name) {
                Arc::make_mut(&mut self.rev_nat_names).insert(rev_nat, port.name.clone());
            }
            let (ip, rport) = port.rev_nat;
            match ip {
                IpAddr::V4(ip) => self.state.rev_nat_v4.set(
                    u32::from(rev_nat),
                    RevNatV4 {
                        address: v4_to_map(ip),
                        port: port_to_map(rport),
                        _pad: 0,
                    },
                ),
                IpAddr::V6(ip) => self.state.rev_nat_v6.set(
                    u32::from(rev_nat),
                    RevNatV6 {
                        address: ip.octets(),
                        port: port_to_map(rport),
                        _pad: 0,
                    },
                ),
            }
            let mut external = false;
            for master in &port.masters {
                let key = MasterKey::new(master.ip, master.port, port.name.protocol, master.scope);
                if !self.claim(name, key, fragment) {
                    continue;
                }
                // Listed first, so a failed build releases the claim too.
                fragment.masters.push(key);
                self.program_master(key, master, rev_nat, port.affinity_timeout, fragment)?;
                external |= master.kind.is_external();
            }
            // The per-packet path's table, unless every external frontend is withheld.
            if let Some(endpoints) = port.maglev.as_ref().filter(|_| external) {
                self.program_maglev(rev_nat, endpoints, fragment)?;
            }
        }
        Ok(())
    }

    /// Builds the Maglev table of `rev_nat` over `endpoints`. Out of line: a table is
    /// 64 KiB, and a caller that inlined it would probe that much stack on every call,
    /// Maglev or not.
    #[inline(never)]
    fn program_maglev(
        &mut self,
        rev_nat: u16,
        endpoints: &[Endpoint],
        fragment: &mut Fragment,
    ) -> Result<(), OutOfRoom> {
        let mut members = Vec::with_capacity(endpoints.len());
        for e in endpoints {
            let id = self.acquire_backend(e, fragment)?;
            members.push(MaglevBackend::new(id, e.addr.to_string()));
        }
        self.state
            .maglev
            .set(u32::from(rev_nat), maglev::build_table(&members));
        fragment.maglev.push(u32::from(rev_nat));
        Ok(())
    }

    fn acquire_backend(&mut self, e: &Endpoint, fragment: &mut Fragment) -> Result<u32, OutOfRoom> {
        let id = self.backend_ids.acquire(&e.addr)?;
        fragment.backends.push(e.addr);
        let port = port_to_map(e.addr.port);
        let protocol = e.addr.protocol.number();
        match e.addr.ip {
            IpAddr::V4(ip) => self.state.backends_v4.set(
                id,
                BackendV4 {
                    address: v4_to_map(ip),
                    port,
                    protocol,
                    flags: e.flags,
                },
            ),
            IpAddr::V6(ip) => self.state.backends_v6.set(
                id,
                BackendV6 {
                    address: ip.octets(),
                    port,
                    protocol,
                    flags: e.flags,
                },
            ),
        }
        Ok(id)
    }

    fn program_master(
        &mut self,
        key: MasterKey,
        master: &MasterPlan,
        rev_nat: u16,
        affinity_timeout: u32,
        fragment: &mut Fragment,
    ) -> Result<(), OutOfRoom> {
        let mut ids = std::mem::take(&mut self.scratch);
        ids.clear();
        for e in &master.backends {
            match self.acquire_backend(e, fragment) {
                Ok(id) => ids.push(id),
                Err(error) => {
                    self.scratch = ids;
                    return Err(error);
                }
            }
        }
        let slots = self.slots.entry(key).or_default();
        let old_len = slots.ids.len();
        reconcile_slots(&mut slots.ids, &ids);
        self.scratch = ids;
        let new_len = slots.ids.len();
        let state = &mut self.state;
        match slots.range {
            Some(range) if new_len <= range.size as usize => {
                // In place: only slots whose backend changed are marked dirty.
                for (i, id) in slots.ids.iter().enumerate() {
                    state.slots.set(range.index(i), *id);
                }
                for i in new_len..old_len {
                    state.slots.unset(&range.index(i));
                }
            }
            _ if new_len == 0 => {}
            old => {
                // Outgrown (or first backends): the whole order moves to a new range;
                // the old one is cleared after the entry points to the new one, and
                // reused only after this sync is written.
                let range = self.ranges.allocate(new_len)?;
                for (i, id) in slots.ids.iter().enumerate() {
                    state.slots.set(range.index(i), *id);
                }
                if let Some(old) = old {
                    for i in 0..old_len {
                        state.slots.unset(&old.index(i));
                    }
                    self.ranges.free(old);
                }
                slots.range = Some(range);
            }
        }
        let value = ServiceValue {
            slot_base: slots.range.map_or(0, |r| r.base),
            count: slot_count(new_len),
            rev_nat_index: rev_nat,
            flags: master.flags,
            _pad: 0,
            affinity_timeout,
        };
        key.set(state, value);
        Ok(())
    }

    /// Removes the entry of `key` and clears its slots.
    fn unset_master(&mut self, key: &MasterKey) {
        key.unset(&mut self.state);
        if let Some(slots) = self.slots.remove(key)
            && let Some(range) = slots.range
        {
            // Clamped: a build that failed to allocate a larger range left an order
            // longer than the range it has.
            for i in 0..slots.ids.len().min(range.size as usize) {
                self.state.slots.unset(&range.index(i));
            }
            self.ranges.free(range);
        }
    }

    /// Drops the references and entries of `stale`.
    fn release(&mut self, stale: &Fragment) {
        for key in &stale.masters {
            self.unset_master(key);
        }
        for id in &stale.maglev {
            self.state.maglev.unset(id);
        }
        for key in &stale.rev_nats {
            if let Some(id) = self.rev_nat_ids.release(key) {
                let rev_nat = u16::try_from(id).expect("rev_nat ids are limited to u16");
                if self.rev_nat_names.contains_key(&rev_nat) {
                    Arc::make_mut(&mut self.rev_nat_names).remove(&rev_nat);
                }
                match key.1 {
                    Family::V4 => self.state.rev_nat_v4.unset(&id),
                    Family::V6 => self.state.rev_nat_v6.unset(&id),
                }
                self.state.maglev.unset(&id);
            }
        }
        for addr in &stale.backends {
            if let Some(id) = self.backend_ids.release(addr) {
                match addr.ip {
                    IpAddr::V4(_) => self.state.backends_v4.unset(&id),
                    IpAddr::V6(_) => self.state.backends_v6.unset(&id),
                }
            }
        }
    }
}

fn slot_count(n: usize) -> u16 {
    // A frontend has at most MAX_BACKENDS (65_536) backends; a count beyond u16 is cut
    // to the kernel's u16 count, so clamp rather than wrap.
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Updates a slot list in place to hold exactly `desired`: a removed backend's slot
/// takes the last slot's backend (then the list shrinks), new backends are appended.
/// Slots of backends present before and after never move except to fill a hole.
pub fn reconcile_slots(slots: &mut Vec<u32>, desired: &[u32]) {
    if slots.as_slice() == desired {
        return; // the common case: nothing changed
    }
    // Membership tests: a linear scan for the usual handful of backends, a hash set
    // beyond that.
    const LINEAR: usize = 32;
    let want: Option<HashSet<u32>> =
        (desired.len() > LINEAR).then(|| desired.iter().copied().collect());
    let wanted = |id: u32| match &want {
        Some(set) => set.contains(&id),
        None => desired.contains(&id),
    };
    let mut i = 0;
    while i < slots.len() {
        if wanted(slots[i]) {
            i += 1;
        } else {
            slots.swap_remove(i);
        }
    }
    let big = slots.len() + desired.len() > LINEAR;
    let mut have: HashSet<u32> = if big {
        slots.iter().copied().collect()
    } else {
        HashSet::default()
    };
    for &id in desired {
        // `insert` is false for an id already in a slot (or listed twice).
        let present = if big {
            !have.insert(id)
        } else {
            slots.contains(&id)
        };
        if !present {
            slots.push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_moves_only_the_last_slot() {
        let mut slots = vec![1, 2, 3, 4, 5];
        reconcile_slots(&mut slots, &[1, 3, 4, 5]);
        assert_eq!(slots, [1, 5, 3, 4]);
        reconcile_slots(&mut slots, &[1, 3, 4, 5, 6, 7]);
        assert_eq!(slots, [1, 5, 3, 4, 6, 7]);
        reconcile_slots(&mut slots, &[7, 6]);
        assert_eq!(slots, [7, 6]);
        reconcile_slots(&mut slots, &[]);
        assert!(slots.is_empty());
    }

    #[test]
    fn many_backends_follow_the_same_rules() {
        // Beyond the linear-scan size the hash-set path must behave identically.
        let mut slots: Vec<u32> = (1..=100).collect();
        let mut desired: Vec<u32> = (2..=100).collect();
        desired.extend([200, 201, 200]);
        reconcile_slots(&mut slots, &desired);
        let mut expected: Vec<u32> = (1..=100).collect();
        expected.swap_remove(0);
        expected.extend([200, 201]);
        assert_eq!(slots, expected);
        assert_eq!(slots[0], 100, "the last slot filled the hole");
    }

    #[test]
    fn removing_the_last_slot_moves_nothing() {
        let mut slots = vec![1, 2, 3];
        reconcile_slots(&mut slots, &[1, 2]);
        assert_eq!(slots, [1, 2]);
    }
}
