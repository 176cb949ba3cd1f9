//! Stable id allocation with reference counts: backend ids (per address/port/protocol)
//! and reverse-NAT indexes (per service port and family).
//!
//! An id lives while anything references it, so a backend shared by several services,
//! or kept across an update, keeps its id. After a restart the proxy seeds *hints*
//! from the pinned maps, so each key gets back the id it had and nothing is rewritten.

use std::hash::Hash;

use rustc_hash::FxHashMap;

/// Ran out of ids (more live keys than the id space or map holds).
#[derive(Debug, thiserror::Error)]
#[error("no free {kind} id: all {limit} ids (1..={limit}) are in use; the kernel map has no more slots")]
pub struct Exhausted {
    pub kind: &'static str,
    pub limit: u32,
}

#[derive(Debug)]
struct Slot {
    id: u32,
    refs: u32,
}

/// A set of ids in `0..=limit` as a bitmap (8 KiB for 65,536 ids).
#[derive(Debug, Default)]
struct IdSet(Vec<u64>);

impl IdSet {
    fn new(limit: u32) -> Self {
        Self(vec![0; limit as usize / 64 + 1])
    }

    fn contains(&self, id: u32) -> bool {
        self.0
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// Adds `id`; false if it was present.
    fn insert(&mut self, id: u32) -> bool {
        let word = &mut self.0[id as usize / 64];
        let bit = 1 << (id % 64);
        let fresh = *word & bit == 0;
        *word |= bit;
        fresh
    }

    fn remove(&mut self, id: u32) {
        if let Some(word) = self.0.get_mut(id as usize / 64) {
            *word &= !(1 << (id % 64));
        }
    }

    fn clear(&mut self) {
        self.0.fill(0);
    }
}

/// Allocates ids in `1..slots` for keys of type `K`: an id always indexes an array map
/// of `slots` entries, and 0 (the array's first slot) is never handed out.
#[derive(Debug)]
pub struct IdAllocator<K: Hash + Eq + Clone> {
    kind: &'static str,
    limit: u32,
    by_key: FxHashMap<K, Slot>,
    used: IdSet,
    hints: FxHashMap<K, u32>,
    hinted: IdSet,
    next: u32,
}

impl<K: Hash + Eq + Clone> IdAllocator<K> {
    pub fn new(kind: &'static str, slots: u32) -> Self {
        let limit = slots.saturating_sub(1);
        Self {
            kind,
            limit,
            by_key: FxHashMap::default(),
            used: IdSet::new(limit),
            hints: FxHashMap::default(),
            hinted: IdSet::new(limit),
            next: 1,
        }
    }

    /// Makes room for `keys` live keys in all (a full sync, before it acquires them).
    pub fn reserve(&mut self, keys: usize) {
        self.by_key.reserve(keys.saturating_sub(self.by_key.len()));
    }

    /// Prefers `id` for `key` on its next allocation (seeded from existing maps).
    pub fn hint(&mut self, key: K, id: u32) {
        if (1..=self.limit).contains(&id) && self.hinted.insert(id) {
            self.hints.insert(key, id);
        }
    }

    /// Drops hints that were not claimed (after the first sync).
    pub fn clear_hints(&mut self) {
        self.hints.clear();
        self.hinted.clear();
    }

    /// The id of `key`, if allocated.
    pub fn get(&self, key: &K) -> Option<u32> {
        self.by_key.get(key).map(|s| s.id)
    }

    /// Takes a reference on `key`'s id, allocating one if needed.
    pub fn acquire(&mut self, key: &K) -> Result<u32, Exhausted> {
        if let Some(slot) = self.by_key.get_mut(key) {
            slot.refs += 1;
            return Ok(slot.id);
        }
        let id = match self.hints.remove(key).filter(|id| !self.used.contains(*id)) {
            Some(id) => id,
            None => self.fresh()?,
        };
        self.used.insert(id);
        self.by_key.insert(key.clone(), Slot { id, refs: 1 });
        Ok(id)
    }

    /// Drops a reference; returns the id when it became free.
    pub fn release(&mut self, key: &K) -> Option<u32> {
        let slot = self.by_key.get_mut(key)?;
        slot.refs -= 1;
        if slot.refs > 0 {
            return None;
        }
        let id = slot.id;
        self.by_key.remove(key);
        self.used.remove(id);
        Some(id)
    }

    /// Number of live ids.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    fn fresh(&mut self) -> Result<u32, Exhausted> {
        let limit = self.limit;
        for _ in 0..2 {
            while self.next <= limit {
                let id = self.next;
                self.next += 1;
                if !self.used.contains(id) && !self.hinted.contains(id) {
                    return Ok(id);
                }
            }
            self.next = 1; // wrap once and reuse freed ids
        }
        // Last resort: an id reserved by an unclaimed hint.
        let id = (1..=limit).find(|id| !self.used.contains(*id));
        id.ok_or(Exhausted {
            kind: self.kind,
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_while_referenced_and_reused_after() {
        let mut a = IdAllocator::new("test", 4);
        assert_eq!(a.acquire(&"x").unwrap(), 1);
        assert_eq!(a.acquire(&"y").unwrap(), 2);
        assert_eq!(a.acquire(&"x").unwrap(), 1);
        assert_eq!(a.release(&"x"), None);
        assert_eq!(a.release(&"x"), Some(1));
        assert_eq!(a.acquire(&"z").unwrap(), 3);
        assert_eq!(a.acquire(&"w").unwrap(), 1);
        let error = a.acquire(&"v").unwrap_err();
        assert_eq!(error.limit, 3);
        assert!(error.to_string().contains("no free test id"), "{error}");
    }

    #[test]
    fn ids_stay_below_the_slot_count() {
        let slots = 100;
        let mut a = IdAllocator::new("test", slots);
        a.hint("hinted".to_string(), slots);
        let ids: Vec<u32> = (0..slots - 1).map(|i| a.acquire(&i.to_string()).unwrap()).collect();
        assert!(ids.iter().all(|id| (1..slots).contains(id)), "{ids:?}");
        assert!(a.acquire(&"one too many".to_string()).is_err());
        assert!(a.acquire(&"hinted".to_string()).is_err());
    }

    #[test]
    fn hints_restore_ids_and_are_not_handed_to_others() {
        let mut a = IdAllocator::new("test", 10);
        a.hint("b", 1);
        assert_eq!(a.acquire(&"a").unwrap(), 2);
        assert_eq!(a.acquire(&"b").unwrap(), 1);
    }
}
