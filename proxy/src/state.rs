//! The contents of the LB maps as plain data ([`MapState`]), reading it from an
//! [`LbMaps`], and applying a set of changed keys to the maps in an order that never
//! lets the kernel see a slot pointing at a missing backend.

use std::collections::{BTreeMap, BTreeSet};

use waggle_datapath::lb_maps::{LbMapError, LbMaps, MapTable, NodeAddrFlag};
use waggle_ebpf_common::lb::{
    BackendV4, BackendV6, MaglevTable, RevNatV4, RevNatV6, ServiceKeyV4, ServiceKeyV6, ServiceValue,
};

/// One map's entries plus the keys changed since the maps last matched.
#[derive(Clone, Debug)]
pub struct Table<K: Ord + Copy, V: Copy + PartialEq> {
    entries: BTreeMap<K, V>,
    dirty: BTreeSet<K>,
}

impl<K: Ord + Copy, V: Copy + PartialEq> Default for Table<K, V> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Copy, V: Copy + PartialEq> Table<K, V> {
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key)
    }

    /// Sets `key`; marks it dirty only if the value changes.
    pub fn set(&mut self, key: K, value: V) {
        if self.entries.insert(key, value) != Some(value) {
            self.dirty.insert(key);
        }
    }

    pub fn unset(&mut self, key: &K) {
        if self.entries.remove(key).is_some() {
            self.dirty.insert(*key);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn dirty(&self) -> &BTreeSet<K> {
        &self.dirty
    }

    fn from_entries(entries: Vec<(K, V)>) -> Self {
        Self {
            entries: entries.into_iter().collect(),
            dirty: BTreeSet::new(),
        }
    }

    /// The writes that make a map holding `actual` equal to this table.
    fn full_diff(&self, actual: &Table<K, V>) -> Ops<K, V> {
        let mut ops = Ops::default();
        for (k, v) in &self.entries {
            if actual.entries.get(k) != Some(v) {
                ops.upserts.push((*k, *v));
            }
        }
        ops.removes = actual
            .entries
            .keys()
            .filter(|k| !self.entries.contains_key(k))
            .copied()
            .collect();
        ops
    }

    /// The writes for the dirty keys.
    fn dirty_ops(&self) -> Ops<K, V> {
        let mut ops = Ops::default();
        for k in &self.dirty {
            match self.entries.get(k) {
                Some(v) => ops.upserts.push((*k, *v)),
                None => ops.removes.push(*k),
            }
        }
        ops
    }
}

/// Writes for one map.
#[derive(Debug)]
struct Ops<K, V> {
    upserts: Vec<(K, V)>,
    removes: Vec<K>,
}

impl<K, V> Default for Ops<K, V> {
    fn default() -> Self {
        Self {
            upserts: Vec::new(),
            removes: Vec::new(),
        }
    }
}

impl<K, V> Ops<K, V> {
    fn len(&self) -> usize {
        self.upserts.len() + self.removes.len()
    }
}

/// Everything the proxy programs, map by map.
#[derive(Clone, Debug, Default)]
pub struct MapState {
    pub services_v4: Table<ServiceKeyV4, ServiceValue>,
    pub services_v6: Table<ServiceKeyV6, ServiceValue>,
    pub backends_v4: Table<u32, BackendV4>,
    pub backends_v6: Table<u32, BackendV6>,
    pub rev_nat_v4: Table<u32, RevNatV4>,
    pub rev_nat_v6: Table<u32, RevNatV6>,
    pub maglev: Table<u32, MaglevTable>,
    pub node_addrs_v4: Table<u32, NodeAddrFlag>,
    pub node_addrs_v6: Table<[u8; 16], NodeAddrFlag>,
}

/// How many map writes a sync made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub upserts: usize,
    pub removes: usize,
}

struct AllOps {
    services_v4: Ops<ServiceKeyV4, ServiceValue>,
    services_v6: Ops<ServiceKeyV6, ServiceValue>,
    backends_v4: Ops<u32, BackendV4>,
    backends_v6: Ops<u32, BackendV6>,
    rev_nat_v4: Ops<u32, RevNatV4>,
    rev_nat_v6: Ops<u32, RevNatV6>,
    maglev: Ops<u32, MaglevTable>,
    node_addrs_v4: Ops<u32, NodeAddrFlag>,
    node_addrs_v6: Ops<[u8; 16], NodeAddrFlag>,
}

impl MapState {
    /// Reads every LB map.
    pub fn read(maps: &mut dyn LbMaps) -> Result<Self, LbMapError> {
        Ok(Self {
            services_v4: Table::from_entries(maps.services_v4().entries()?),
            services_v6: Table::from_entries(maps.services_v6().entries()?),
            backends_v4: Table::from_entries(maps.backends_v4().entries()?),
            backends_v6: Table::from_entries(maps.backends_v6().entries()?),
            rev_nat_v4: Table::from_entries(maps.rev_nat_v4().entries()?),
            rev_nat_v6: Table::from_entries(maps.rev_nat_v6().entries()?),
            maglev: Table::from_entries(maps.maglev().entries()?),
            node_addrs_v4: Table::from_entries(maps.node_addrs_v4().entries()?),
            node_addrs_v6: Table::from_entries(maps.node_addrs_v6().entries()?),
        })
    }

    /// Number of dirty keys over all maps.
    pub fn dirty_count(&self) -> usize {
        self.services_v4.dirty.len()
            + self.services_v6.dirty.len()
            + self.backends_v4.dirty.len()
            + self.backends_v6.dirty.len()
            + self.rev_nat_v4.dirty.len()
            + self.rev_nat_v6.dirty.len()
            + self.maglev.dirty.len()
            + self.node_addrs_v4.dirty.len()
            + self.node_addrs_v6.dirty.len()
    }

    /// Forgets the dirty marks (after they were applied).
    pub fn clear_dirty(&mut self) {
        self.services_v4.dirty.clear();
        self.services_v6.dirty.clear();
        self.backends_v4.dirty.clear();
        self.backends_v6.dirty.clear();
        self.rev_nat_v4.dirty.clear();
        self.rev_nat_v6.dirty.clear();
        self.maglev.dirty.clear();
        self.node_addrs_v4.dirty.clear();
        self.node_addrs_v6.dirty.clear();
    }

    /// Writes the dirty keys to `maps`, then clears them. On error the dirty marks are
    /// kept; the caller should fall back to [`MapState::apply_full`].
    pub fn apply_dirty(&mut self, maps: &mut dyn LbMaps) -> Result<WriteStats, LbMapError> {
        let ops = AllOps {
            services_v4: self.services_v4.dirty_ops(),
            services_v6: self.services_v6.dirty_ops(),
            backends_v4: self.backends_v4.dirty_ops(),
            backends_v6: self.backends_v6.dirty_ops(),
            rev_nat_v4: self.rev_nat_v4.dirty_ops(),
            rev_nat_v6: self.rev_nat_v6.dirty_ops(),
            maglev: self.maglev.dirty_ops(),
            node_addrs_v4: self.node_addrs_v4.dirty_ops(),
            node_addrs_v6: self.node_addrs_v6.dirty_ops(),
        };
        let stats = ops.apply(maps)?;
        self.clear_dirty();
        Ok(stats)
    }

    /// Reads the maps and rewrites whatever differs from this state, deleting keys
    /// this state does not have (the full resync).
    pub fn apply_full(&mut self, maps: &mut dyn LbMaps) -> Result<WriteStats, LbMapError> {
        let actual = MapState::read(maps)?;
        let ops = AllOps {
            services_v4: self.services_v4.full_diff(&actual.services_v4),
            services_v6: self.services_v6.full_diff(&actual.services_v6),
            backends_v4: self.backends_v4.full_diff(&actual.backends_v4),
            backends_v6: self.backends_v6.full_diff(&actual.backends_v6),
            rev_nat_v4: self.rev_nat_v4.full_diff(&actual.rev_nat_v4),
            rev_nat_v6: self.rev_nat_v6.full_diff(&actual.rev_nat_v6),
            maglev: self.maglev.full_diff(&actual.maglev),
            node_addrs_v4: self.node_addrs_v4.full_diff(&actual.node_addrs_v4),
            node_addrs_v6: self.node_addrs_v6.full_diff(&actual.node_addrs_v6),
        };
        let stats = ops.apply(maps)?;
        self.clear_dirty();
        Ok(stats)
    }
}

/// Is this service key a master entry?
fn master4(k: &ServiceKeyV4) -> bool {
    k.backend_slot == 0
}
fn master6(k: &ServiceKeyV6) -> bool {
    k.backend_slot == 0
}

fn upsert<K, V>(
    table: &mut dyn MapTable<K, V>,
    ops: &[(K, V)],
    filter: impl Fn(&K) -> bool,
) -> Result<usize, LbMapError> {
    let mut n = 0;
    for (k, v) in ops.iter().filter(|(k, _)| filter(k)) {
        table.insert(k, v)?;
        n += 1;
    }
    Ok(n)
}

fn remove<K, V>(
    table: &mut dyn MapTable<K, V>,
    ops: &[K],
    filter: impl Fn(&K) -> bool,
) -> Result<usize, LbMapError> {
    let mut n = 0;
    for k in ops.iter().filter(|k| filter(k)) {
        table.remove(k)?;
        n += 1;
    }
    Ok(n)
}

impl AllOps {
    /// Applies in dependency order: what is referenced is written before what refers to
    /// it (backends → slots → masters), and removed after (masters → slots → backends).
    /// A master's count therefore never covers a slot that is missing, and a slot never
    /// names a backend that is missing.
    fn apply(&self, maps: &mut dyn LbMaps) -> Result<WriteStats, LbMapError> {
        let mut up = 0;
        let mut rm = 0;
        up += upsert(maps.backends_v4(), &self.backends_v4.upserts, |_| true)?;
        up += upsert(maps.backends_v6(), &self.backends_v6.upserts, |_| true)?;
        up += upsert(maps.rev_nat_v4(), &self.rev_nat_v4.upserts, |_| true)?;
        up += upsert(maps.rev_nat_v6(), &self.rev_nat_v6.upserts, |_| true)?;
        up += upsert(maps.maglev(), &self.maglev.upserts, |_| true)?;
        up += upsert(maps.node_addrs_v4(), &self.node_addrs_v4.upserts, |_| true)?;
        up += upsert(maps.node_addrs_v6(), &self.node_addrs_v6.upserts, |_| true)?;
        rm += remove(maps.node_addrs_v4(), &self.node_addrs_v4.removes, |_| true)?;
        rm += remove(maps.node_addrs_v6(), &self.node_addrs_v6.removes, |_| true)?;

        up += upsert(maps.services_v4(), &self.services_v4.upserts, |k| {
            !master4(k)
        })?;
        up += upsert(maps.services_v6(), &self.services_v6.upserts, |k| {
            !master6(k)
        })?;
        up += upsert(maps.services_v4(), &self.services_v4.upserts, master4)?;
        up += upsert(maps.services_v6(), &self.services_v6.upserts, master6)?;
        rm += remove(maps.services_v4(), &self.services_v4.removes, master4)?;
        rm += remove(maps.services_v6(), &self.services_v6.removes, master6)?;
        rm += remove(maps.services_v4(), &self.services_v4.removes, |k| {
            !master4(k)
        })?;
        rm += remove(maps.services_v6(), &self.services_v6.removes, |k| {
            !master6(k)
        })?;

        rm += remove(maps.maglev(), &self.maglev.removes, |_| true)?;
        rm += remove(maps.rev_nat_v4(), &self.rev_nat_v4.removes, |_| true)?;
        rm += remove(maps.rev_nat_v6(), &self.rev_nat_v6.removes, |_| true)?;
        rm += remove(maps.backends_v4(), &self.backends_v4.removes, |_| true)?;
        rm += remove(maps.backends_v6(), &self.backends_v6.removes, |_| true)?;
        debug_assert_eq!(
            up + rm,
            self.services_v4.len()
                + self.services_v6.len()
                + self.backends_v4.len()
                + self.backends_v6.len()
                + self.rev_nat_v4.len()
                + self.rev_nat_v6.len()
                + self.maglev.len()
                + self.node_addrs_v4.len()
                + self.node_addrs_v6.len()
        );
        Ok(WriteStats {
            upserts: up,
            removes: rm,
        })
    }
}
