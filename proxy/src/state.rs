//! The contents of the LB maps as plain data ([`MapState`]), reading it from an
//! [`LbMaps`], and applying a set of changed keys to the maps in an order that never
//! lets the kernel see a slot pointing at a missing backend.

use std::hash::Hash;

use rustc_hash::{FxHashMap, FxHashSet};
use waggle_datapath::lb_maps::{LbMapError, LbMaps, MapTable, NodeAddrFlag};
use waggle_ebpf_common::lb::{
    BackendV4, BackendV6, MaglevTable, RevNatV4, RevNatV6, ServiceKeyV4, ServiceKeyV6, ServiceValue,
};

/// Bounds of a map key: plain data, hashable, and ordered (for deterministic write order
/// of incremental syncs and for dumps).
pub trait Key: Copy + Ord + Hash {}
impl<K: Copy + Ord + Hash> Key for K {}

/// One map's entries plus the keys changed since the maps last matched.
///
/// Hash-based: a full sync of 100,000 entries does one hash insert per entry. Iteration
/// order is arbitrary; [`Table::sorted`] gives key order.
#[derive(Clone, Debug)]
pub struct Table<K: Key, V: Copy + PartialEq> {
    entries: FxHashMap<K, V>,
    dirty: FxHashSet<K>,
    /// Dirty marks are not recorded (while a full sync, which diffs whole tables and
    /// then drops the marks, is being prepared).
    untracked: bool,
}

impl<K: Key, V: Copy + PartialEq> Default for Table<K, V> {
    fn default() -> Self {
        Self {
            entries: FxHashMap::default(),
            dirty: FxHashSet::default(),
            untracked: false,
        }
    }
}

impl<K: Key, V: Copy + PartialEq> Table<K, V> {
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key)
    }

    /// Sets `key`; marks it dirty only if the value changes.
    pub fn set(&mut self, key: K, value: V) {
        if self.entries.insert(key, value) != Some(value) && !self.untracked {
            self.dirty.insert(key);
        }
    }

    pub fn unset(&mut self, key: &K) {
        if self.entries.remove(key).is_some() && !self.untracked {
            self.dirty.insert(*key);
        }
    }

    /// Makes room for `len` entries in all.
    pub fn reserve(&mut self, len: usize) {
        self.entries.reserve(len.saturating_sub(self.entries.len()));
    }

    /// Entries in arbitrary order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter()
    }

    /// Entries in key order.
    pub fn sorted(&self) -> Vec<(&K, &V)> {
        let mut entries: Vec<(&K, &V)> = self.entries.iter().collect();
        entries.sort_unstable_by_key(|(k, _)| **k);
        entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys changed since the maps last matched, in key order.
    pub fn dirty(&self) -> Vec<K> {
        self.dirty_keys()
    }

    fn from_entries(entries: Vec<(K, V)>) -> Self {
        Self {
            entries: entries.into_iter().collect(),
            dirty: FxHashSet::default(),
            untracked: false,
        }
    }
}

/// [`Table`] for the array maps, whose keys are small dense indexes (slot indexes,
/// backend ids, reverse-NAT indexes): entries are stored by index, so setting one is a
/// store, not a hash insert. Same interface and semantics as [`Table`].
#[derive(Clone, Debug)]
pub struct IndexTable<V: Copy + PartialEq> {
    /// Entry `i` is key `i`'s (the key is kept so iteration lends `&u32`s).
    entries: Vec<Option<(u32, V)>>,
    len: usize,
    dirty: FxHashSet<u32>,
    untracked: bool,
}

impl<V: Copy + PartialEq> Default for IndexTable<V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            len: 0,
            dirty: FxHashSet::default(),
            untracked: false,
        }
    }
}

impl<V: Copy + PartialEq> IndexTable<V> {
    pub fn get(&self, key: &u32) -> Option<&V> {
        self.entries.get(*key as usize)?.as_ref().map(|(_, v)| v)
    }

    /// Sets `key`; marks it dirty only if the value changes.
    pub fn set(&mut self, key: u32, value: V) {
        let i = key as usize;
        if i >= self.entries.len() {
            self.entries.resize(i + 1, None);
        }
        let old = self.entries[i].replace((key, value));
        if old.is_none() {
            self.len += 1;
        }
        if old.map(|(_, v)| v) != Some(value) && !self.untracked {
            self.dirty.insert(key);
        }
    }

    pub fn unset(&mut self, key: &u32) {
        let Some(entry) = self.entries.get_mut(*key as usize) else {
            return;
        };
        if entry.take().is_some() {
            self.len -= 1;
            if !self.untracked {
                self.dirty.insert(*key);
            }
        }
    }

    /// Makes room for `len` entries in all (keys are dense from 1).
    pub fn reserve(&mut self, len: usize) {
        self.entries
            .reserve((len + 1).saturating_sub(self.entries.len()));
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&u32, &V)> {
        self.entries
            .iter()
            .filter_map(|e| e.as_ref().map(|(k, v)| (k, v)))
    }

    /// Entries in key order (as [`Table::sorted`]).
    pub fn sorted(&self) -> Vec<(&u32, &V)> {
        self.iter().collect()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keys changed since the maps last matched, in key order.
    pub fn dirty(&self) -> Vec<u32> {
        self.dirty_keys()
    }

    fn from_entries(entries: Vec<(u32, V)>) -> Self {
        let mut table = Self::default();
        table.untracked = true;
        for (k, v) in entries {
            table.set(k, v);
        }
        table.untracked = false;
        table
    }
}

/// What the map writes need of a table, whichever way it stores its entries: the
/// diffs are computed once, here, for [`Table`] and [`IndexTable`] alike.
trait Entries<K: Key, V: Copy + PartialEq> {
    fn lookup(&self, key: &K) -> Option<&V>;
    fn each<'a>(&'a self) -> impl Iterator<Item = (&'a K, &'a V)>
    where
        K: 'a,
        V: 'a;
    fn count(&self) -> usize;
    fn dirty_marks(&self) -> &FxHashSet<K>;

    /// Keys changed since the maps last matched, in key order.
    fn dirty_keys(&self) -> Vec<K> {
        let mut keys: Vec<K> = self.dirty_marks().iter().copied().collect();
        keys.sort_unstable();
        keys
    }

    /// The writes that make a map holding `actual` equal to this table.
    fn full_diff(&self, actual: &Self) -> Ops<K, V> {
        let mut ops = Ops::default();
        if actual.count() == 0 {
            // An empty map (first start): everything is written, nothing to compare.
            ops.upsert_keys.reserve(self.count());
            ops.upsert_values.reserve(self.count());
        }
        for (k, v) in self.each() {
            if actual.lookup(k) != Some(v) {
                ops.upsert_keys.push(*k);
                ops.upsert_values.push(*v);
            }
        }
        ops.removes = actual
            .each()
            .filter(|(k, _)| self.lookup(k).is_none())
            .map(|(k, _)| *k)
            .collect();
        ops
    }

    /// The writes for the dirty keys, in key order.
    fn dirty_ops(&self) -> Ops<K, V> {
        let mut ops = Ops::default();
        for k in self.dirty_keys() {
            match self.lookup(&k) {
                Some(v) => {
                    ops.upsert_keys.push(k);
                    ops.upsert_values.push(*v);
                }
                None => ops.removes.push(k),
            }
        }
        ops
    }
}

impl<K: Key, V: Copy + PartialEq> Entries<K, V> for Table<K, V> {
    fn lookup(&self, key: &K) -> Option<&V> {
        self.get(key)
    }
    fn each<'a>(&'a self) -> impl Iterator<Item = (&'a K, &'a V)>
    where
        K: 'a,
        V: 'a,
    {
        self.iter()
    }
    fn count(&self) -> usize {
        self.len()
    }
    fn dirty_marks(&self) -> &FxHashSet<K> {
        &self.dirty
    }
}

impl<V: Copy + PartialEq> Entries<u32, V> for IndexTable<V> {
    fn lookup(&self, key: &u32) -> Option<&V> {
        self.get(key)
    }
    fn each<'a>(&'a self) -> impl Iterator<Item = (&'a u32, &'a V)>
    where
        V: 'a,
    {
        self.iter()
    }
    fn count(&self) -> usize {
        self.len()
    }
    fn dirty_marks(&self) -> &FxHashSet<u32> {
        &self.dirty
    }
}

/// Writes for one map: upserts as parallel key and value arrays (the layout of a
/// batched map update), then removals.
#[derive(Debug)]
struct Ops<K, V> {
    upsert_keys: Vec<K>,
    upsert_values: Vec<V>,
    removes: Vec<K>,
}

impl<K, V> Default for Ops<K, V> {
    fn default() -> Self {
        Self {
            upsert_keys: Vec::new(),
            upsert_values: Vec::new(),
            removes: Vec::new(),
        }
    }
}

impl<K: Copy, V: Copy> Ops<K, V> {
    fn len(&self) -> usize {
        self.upsert_keys.len() + self.removes.len()
    }

    fn upsert(&self, table: &mut dyn MapTable<K, V>) -> Result<usize, LbMapError> {
        // Entries of one step never refer to one another (see `AllOps::apply`).
        table.insert_batch_unordered(&self.upsert_keys, &self.upsert_values)?;
        Ok(self.upsert_keys.len())
    }

    fn remove(&self, table: &mut dyn MapTable<K, V>) -> Result<usize, LbMapError> {
        table.remove_batch(&self.removes)?;
        Ok(self.removes.len())
    }
}

/// Everything the proxy programs, map by map.
#[derive(Clone, Debug, Default)]
pub struct MapState {
    pub services_v4: Table<ServiceKeyV4, ServiceValue>,
    pub services_v6: Table<ServiceKeyV6, ServiceValue>,
    /// Slot index → backend id.
    pub slots: IndexTable<u32>,
    pub backends_v4: IndexTable<BackendV4>,
    pub backends_v6: IndexTable<BackendV6>,
    pub rev_nat_v4: IndexTable<RevNatV4>,
    pub rev_nat_v6: IndexTable<RevNatV6>,
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
    slots: Ops<u32, u32>,
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
            slots: IndexTable::from_entries(maps.slots().entries()?),
            backends_v4: IndexTable::from_entries(maps.backends_v4().entries()?),
            backends_v6: IndexTable::from_entries(maps.backends_v6().entries()?),
            rev_nat_v4: IndexTable::from_entries(maps.rev_nat_v4().entries()?),
            rev_nat_v6: IndexTable::from_entries(maps.rev_nat_v6().entries()?),
            maglev: Table::from_entries(maps.maglev().entries()?),
            node_addrs_v4: Table::from_entries(maps.node_addrs_v4().entries()?),
            node_addrs_v6: Table::from_entries(maps.node_addrs_v6().entries()?),
        })
    }

    /// The backend ids in the slots of the services entry `value`, in slot order
    /// (`None` for an empty slot).
    pub fn slot_ids(&self, value: &ServiceValue) -> impl Iterator<Item = Option<u32>> + '_ {
        let base = value.slot_base;
        (0..u32::from(value.count)).map(move |i| {
            self.slots
                .get(&base.saturating_add(i))
                .copied()
                .filter(|id| *id != 0)
        })
    }

    /// Number of dirty keys over all maps.
    pub fn dirty_count(&self) -> usize {
        self.services_v4.dirty.len()
            + self.services_v6.dirty.len()
            + self.slots.dirty.len()
            + self.backends_v4.dirty.len()
            + self.backends_v6.dirty.len()
            + self.rev_nat_v4.dirty.len()
            + self.rev_nat_v6.dirty.len()
            + self.maglev.dirty.len()
            + self.node_addrs_v4.dirty.len()
            + self.node_addrs_v6.dirty.len()
    }

    /// Stops (`false`) or resumes recording dirty marks. Only for building the state a
    /// full sync writes: [`MapState::apply_full`] diffs whole tables and ignores them.
    pub fn track_dirty(&mut self, track: bool) {
        self.services_v4.untracked = !track;
        self.services_v6.untracked = !track;
        self.slots.untracked = !track;
        self.backends_v4.untracked = !track;
        self.backends_v6.untracked = !track;
        self.rev_nat_v4.untracked = !track;
        self.rev_nat_v6.untracked = !track;
        self.maglev.untracked = !track;
        self.node_addrs_v4.untracked = !track;
        self.node_addrs_v6.untracked = !track;
    }

    /// Forgets the dirty marks (after they were applied).
    pub fn clear_dirty(&mut self) {
        self.services_v4.dirty.clear();
        self.services_v6.dirty.clear();
        self.slots.dirty.clear();
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
            slots: self.slots.dirty_ops(),
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
        self.apply_full_against(maps, &actual)
    }

    /// [`MapState::apply_full`] with the maps' contents `actual` already read.
    pub fn apply_full_against(
        &mut self,
        maps: &mut dyn LbMaps,
        actual: &MapState,
    ) -> Result<WriteStats, LbMapError> {
        let ops = AllOps {
            services_v4: self.services_v4.full_diff(&actual.services_v4),
            services_v6: self.services_v6.full_diff(&actual.services_v6),
            slots: self.slots.full_diff(&actual.slots),
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

impl AllOps {
    /// Applies in dependency order: what is referenced is written before what refers to
    /// it (backends → slots → services), and removed after (services → slots →
    /// backends). A service's count therefore never covers a slot that is not written
    /// yet, and a slot never names a backend that is missing. Each step is one batch per map; the entries
    /// of one step do not refer to each other, so a large batch may be written by
    /// several threads at once (the kernel's hash maps lock per bucket).
    fn apply(self, maps: &mut dyn LbMaps) -> Result<WriteStats, LbMapError> {
        let expected = self.services_v4.len()
            + self.services_v6.len()
            + self.slots.len()
            + self.backends_v4.len()
            + self.backends_v6.len()
            + self.rev_nat_v4.len()
            + self.rev_nat_v6.len()
            + self.maglev.len()
            + self.node_addrs_v4.len()
            + self.node_addrs_v6.len();
        let mut up = 0;
        let mut rm = 0;
        up += self.backends_v4.upsert(maps.backends_v4())?;
        up += self.backends_v6.upsert(maps.backends_v6())?;
        up += self.rev_nat_v4.upsert(maps.rev_nat_v4())?;
        up += self.rev_nat_v6.upsert(maps.rev_nat_v6())?;
        up += self.maglev.upsert(maps.maglev())?;
        up += self.node_addrs_v4.upsert(maps.node_addrs_v4())?;
        up += self.node_addrs_v6.upsert(maps.node_addrs_v6())?;
        rm += self.node_addrs_v4.remove(maps.node_addrs_v4())?;
        rm += self.node_addrs_v6.remove(maps.node_addrs_v6())?;

        up += self.slots.upsert(maps.slots())?;
        up += self.services_v4.upsert(maps.services_v4())?;
        up += self.services_v6.upsert(maps.services_v6())?;
        rm += self.services_v4.remove(maps.services_v4())?;
        rm += self.services_v6.remove(maps.services_v6())?;
        rm += self.slots.remove(maps.slots())?;

        rm += self.maglev.remove(maps.maglev())?;
        rm += self.rev_nat_v4.remove(maps.rev_nat_v4())?;
        rm += self.rev_nat_v6.remove(maps.rev_nat_v6())?;
        rm += self.backends_v4.remove(maps.backends_v4())?;
        rm += self.backends_v6.remove(maps.backends_v6())?;
        debug_assert_eq!(up + rm, expected);
        Ok(WriteStats {
            upserts: up,
            removes: rm,
        })
    }
}
