//! An in-memory [`LbMaps`] (BTreeMaps) for golden and unit tests: records every write
//! so tests can check exactly which keys a sync touched, and can be told to fail.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use crate::dump::DumpKey;

use aya::maps::MapError;
use waggle_datapath::lb_maps::{LbMapError, MapTable, NodeAddrFlag};
use waggle_ebpf_common::{
    lb::{
        BackendV4, BackendV6, MaglevTable, RevNatV4, RevNatV6, ServiceKeyV4, ServiceKeyV6,
        ServiceValue,
    },
    maps,
};

/// One recorded write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    Insert { map: &'static str, key: String },
    Remove { map: &'static str, key: String },
}

/// A map held in memory.
#[derive(Debug)]
pub struct MemTable<K, V> {
    name: &'static str,
    entries: BTreeMap<K, V>,
    log: Log,
    /// Fail the write after this many more successful writes (for failure tests).
    fail_after: Option<usize>,
}

/// The write log shared by all tables of one [`MemMaps`], in write order.
type Log = Arc<Mutex<Vec<Write>>>;

impl<K: Ord, V> MemTable<K, V> {
    fn new(name: &'static str, log: &Log) -> Self {
        Self {
            name,
            entries: BTreeMap::new(),
            log: log.clone(),
            fail_after: None,
        }
    }

    fn record(&self, write: Write) {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(write);
    }

    fn check_fail(&mut self) -> Result<(), LbMapError> {
        match &mut self.fail_after {
            Some(0) => {
                self.fail_after = None;
                Err(LbMapError::Map {
                    name: self.name,
                    source: MapError::KeyNotFound,
                })
            }
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl<K: Ord + Copy + DumpKey, V: Copy> MapTable<K, V> for MemTable<K, V> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn get(&self, key: &K) -> Result<Option<V>, LbMapError> {
        Ok(self.entries.get(key).copied())
    }

    fn insert(&mut self, key: &K, value: &V) -> Result<(), LbMapError> {
        self.check_fail()?;
        self.entries.insert(*key, *value);
        self.record(Write::Insert {
            map: self.name,
            key: key.dump_key(),
        });
        Ok(())
    }

    fn remove(&mut self, key: &K) -> Result<(), LbMapError> {
        self.check_fail()?;
        self.entries.remove(key);
        self.record(Write::Remove {
            map: self.name,
            key: key.dump_key(),
        });
        Ok(())
    }

    fn entries(&self) -> Result<Vec<(K, V)>, LbMapError> {
        Ok(self.entries.iter().map(|(k, v)| (*k, *v)).collect())
    }
}

/// All LB maps in memory.
#[derive(Debug)]
pub struct MemMaps {
    log: Log,
    pub services_v4: MemTable<ServiceKeyV4, ServiceValue>,
    pub services_v6: MemTable<ServiceKeyV6, ServiceValue>,
    pub slots: MemTable<u32, u32>,
    pub backends_v4: MemTable<u32, BackendV4>,
    pub backends_v6: MemTable<u32, BackendV6>,
    pub rev_nat_v4: MemTable<u32, RevNatV4>,
    pub rev_nat_v6: MemTable<u32, RevNatV6>,
    pub maglev: MemTable<u32, MaglevTable>,
    pub node_addrs_v4: MemTable<u32, NodeAddrFlag>,
    pub node_addrs_v6: MemTable<[u8; 16], NodeAddrFlag>,
}

impl Default for MemMaps {
    fn default() -> Self {
        let log = Log::default();
        Self {
            services_v4: MemTable::new(maps::SERVICES_V4, &log),
            services_v6: MemTable::new(maps::SERVICES_V6, &log),
            slots: MemTable::new(maps::SLOTS, &log),
            backends_v4: MemTable::new(maps::BACKENDS_V4, &log),
            backends_v6: MemTable::new(maps::BACKENDS_V6, &log),
            rev_nat_v4: MemTable::new(maps::REV_NAT_V4, &log),
            rev_nat_v6: MemTable::new(maps::REV_NAT_V6, &log),
            maglev: MemTable::new(maps::MAGLEV, &log),
            node_addrs_v4: MemTable::new(maps::NODE_ADDRS_V4, &log),
            node_addrs_v6: MemTable::new(maps::NODE_ADDRS_V6, &log),
            log,
        }
    }
}

impl MemMaps {
    /// Every write since the last call, in order, and forgets them.
    pub fn take_writes(&mut self) -> Vec<Write> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Makes the IPv4 services map fail its write after `n` more successful writes.
    pub fn fail_services_v4_after(&mut self, n: usize) {
        self.services_v4.fail_after = Some(n);
    }
}

waggle_datapath::impl_lb_maps!(MemMaps);
