//! Typed read/write access to the service load-balancing maps.
//!
//! [`LbMaps`] is the one interface the proxy programs through; [`PinnedLbMaps`] is its
//! implementation over the kernel maps, opened either from a loaded [`crate::Datapath`]
//! (duplicating each map's fd, so the loader keeps its own handle) or from the pin
//! directory of a running proxy (`<pin-dir>/<map name>`, what `waggle bpf lb list`
//! reads). Map names and types come from `waggle_ebpf_common::maps`.

use std::{
    os::fd::{AsFd, OwnedFd},
    path::{Path, PathBuf},
};

use crate::{
    array_table::ArrayTable,
    batch::{self, BatchError},
};
use aya::{
    Ebpf,
    maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray, PerCpuHashMap},
};
use waggle_ebpf_common::{
    drop::DROP_REASON_COUNT,
    lb::{
        BackendV4, BackendV6, MaglevTable, NodeConfig, RevNatV4, RevNatV6, ServiceKeyV4,
        ServiceKeyV6, ServiceValue,
    },
    maps,
    metrics::ServiceCounters,
};

/// A failed map operation, naming the map.
#[derive(Debug, thiserror::Error)]
pub enum LbMapError {
    #[error("map `{name}` is not in the BPF object")]
    Missing { name: &'static str },
    #[error("opening pinned map {path}: {source} (is a proxy running with this --pin-dir?)")]
    Pin {
        path: PathBuf,
        #[source]
        source: MapError,
    },
    #[error("map `{name}`: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("map `{name}`: duplicating its fd: {source}")]
    Dup {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("map `{name}`: {source}")]
    Batch {
        name: &'static str,
        #[source]
        source: crate::batch::BatchError,
    },
}

/// One key/value map, as the proxy sees it.
pub trait MapTable<K, V> {
    /// The map's name (for errors and dumps).
    fn name(&self) -> &'static str;
    fn get(&self, key: &K) -> Result<Option<V>, LbMapError>;
    fn insert(&mut self, key: &K, value: &V) -> Result<(), LbMapError>;
    /// Removes `key`; removing an absent key succeeds.
    fn remove(&mut self, key: &K) -> Result<(), LbMapError>;
    /// Every entry, in the map's iteration order.
    fn entries(&self) -> Result<Vec<(K, V)>, LbMapError>;

    /// Writes `keys[i] → values[i]` for every `i`, in this order (so that an entry
    /// written earlier is visible before a later one is).
    fn insert_batch(&mut self, keys: &[K], values: &[V]) -> Result<(), LbMapError> {
        keys.iter()
            .zip(values)
            .try_for_each(|(k, v)| self.insert(k, v))
    }

    /// Writes `keys[i] → values[i]` for every `i`, where no entry depends on another
    /// of the batch being written first: a large batch may be written concurrently,
    /// in no particular order. Returns when all are written.
    fn insert_batch_unordered(&mut self, keys: &[K], values: &[V]) -> Result<(), LbMapError> {
        self.insert_batch(keys, values)
    }

    /// Removes every key of `keys`, in this order; absent keys are skipped.
    fn remove_batch(&mut self, keys: &[K]) -> Result<(), LbMapError> {
        keys.iter().try_for_each(|k| self.remove(k))
    }
}

/// Value type of the node address maps (an address is present when mapped to 1).
pub type NodeAddrFlag = u8;

/// Implements [`LbMaps`] for a struct whose fields are named after the maps
/// (`services_v4` ... `node_addrs_v6`) and each implement [`MapTable`]: the real
/// pinned maps here, the in-memory maps of the proxy's golden tests.
#[macro_export]
macro_rules! impl_lb_maps {
    ($ty:ty) => {
        impl $crate::lb_maps::LbMaps for $ty {
            $crate::impl_lb_maps!(@table services_v4, $crate::lb_maps::abi::lb::ServiceKeyV4, $crate::lb_maps::abi::lb::ServiceValue);
            $crate::impl_lb_maps!(@table services_v6, $crate::lb_maps::abi::lb::ServiceKeyV6, $crate::lb_maps::abi::lb::ServiceValue);
            $crate::impl_lb_maps!(@table slots, u32, u32);
            $crate::impl_lb_maps!(@table backends_v4, u32, $crate::lb_maps::abi::lb::BackendV4);
            $crate::impl_lb_maps!(@table backends_v6, u32, $crate::lb_maps::abi::lb::BackendV6);
            $crate::impl_lb_maps!(@table rev_nat_v4, u32, $crate::lb_maps::abi::lb::RevNatV4);
            $crate::impl_lb_maps!(@table rev_nat_v6, u32, $crate::lb_maps::abi::lb::RevNatV6);
            $crate::impl_lb_maps!(@table maglev, u32, $crate::lb_maps::abi::lb::MaglevTable);
            $crate::impl_lb_maps!(@table node_addrs_v4, u32, $crate::lb_maps::NodeAddrFlag);
            $crate::impl_lb_maps!(@table node_addrs_v6, [u8; 16], $crate::lb_maps::NodeAddrFlag);
        }
    };
    (@table $field:ident, $key:ty, $value:ty) => {
        fn $field(&mut self) -> &mut dyn $crate::lb_maps::MapTable<$key, $value> {
            &mut self.$field
        }
    };
}

/// The ABI crate, for [`impl_lb_maps!`] expansions in other crates.
#[doc(hidden)]
pub use waggle_ebpf_common as abi;

/// The maps the proxy programs. Keys and values are the ABI types of
/// `waggle_ebpf_common::lb`; slot, backend, reverse-NAT and Maglev maps are keyed by
/// a `u32` index (slot index, backend id, `rev_nat_index` widened to u32).
pub trait LbMaps {
    fn services_v4(&mut self) -> &mut dyn MapTable<ServiceKeyV4, ServiceValue>;
    fn services_v6(&mut self) -> &mut dyn MapTable<ServiceKeyV6, ServiceValue>;
    /// Backend ids of the services' slots (a zero id is an empty slot).
    fn slots(&mut self) -> &mut dyn MapTable<u32, u32>;
    fn backends_v4(&mut self) -> &mut dyn MapTable<u32, BackendV4>;
    fn backends_v6(&mut self) -> &mut dyn MapTable<u32, BackendV6>;
    fn rev_nat_v4(&mut self) -> &mut dyn MapTable<u32, RevNatV4>;
    fn rev_nat_v6(&mut self) -> &mut dyn MapTable<u32, RevNatV6>;
    fn maglev(&mut self) -> &mut dyn MapTable<u32, MaglevTable>;
    /// Node addresses (network order) on which NodePorts answer.
    fn node_addrs_v4(&mut self) -> &mut dyn MapTable<u32, NodeAddrFlag>;
    fn node_addrs_v6(&mut self) -> &mut dyn MapTable<[u8; 16], NodeAddrFlag>;
}

/// A services-map key of either family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontendKey {
    V4(ServiceKeyV4),
    V6(ServiceKeyV6),
}

/// Writes one frontend by hand (test beds, tools): `backend_ids` into the slots from
/// `value.slot_base` first, then the services entry with `count` set to their number,
/// so a program never sees a count covering an unwritten slot.
pub fn write_frontend(
    maps: &mut dyn LbMaps,
    key: FrontendKey,
    value: ServiceValue,
    backend_ids: &[u32],
) -> Result<(), LbMapError> {
    for (i, id) in (value.slot_base..).zip(backend_ids) {
        maps.slots().insert(&i, id)?;
    }
    let value = ServiceValue {
        count: u16::try_from(backend_ids.len()).unwrap_or(u16::MAX),
        ..value
    };
    match key {
        FrontendKey::V4(k) => maps.services_v4().insert(&k, &value),
        FrontendKey::V6(k) => maps.services_v6().insert(&k, &value),
    }
}

/// The typed map of `data` (`convert`: e.g. `HashMap::try_from`) and a duplicate of its
/// fd, for the batch syscalls aya does not wrap.
pub(crate) fn typed_with_fd<T>(
    name: &'static str,
    data: MapData,
    convert: impl FnOnce(Map) -> Result<T, MapError>,
) -> Result<(T, OwnedFd), LbMapError> {
    let fd = data
        .fd()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|source| LbMapError::Dup { name, source })?;
    let map = Map::from_map_data(data)
        .and_then(convert)
        .map_err(|source| LbMapError::Map { name, source })?;
    Ok((map, fd))
}

/// A batched upsert: [`batch::update`] or [`batch::update_split`].
type BatchWrite<K, V> = fn(std::os::fd::BorrowedFd<'_>, &[K], &[V]) -> Result<(), BatchError>;

/// A BPF hash map as a [`MapTable`]. Batches use one syscall per
/// [`batch::CHUNK`](crate::batch::CHUNK) elements (Linux 5.6+), falling back to one
/// per element on kernels without batch operations.
pub struct HashTable<K: aya::Pod, V: aya::Pod> {
    name: &'static str,
    map: HashMap<MapData, K, V>,
    /// The map's fd again, for the batch syscalls aya does not wrap.
    fd: OwnedFd,
    /// Cleared when the kernel refused a batch command.
    batch: bool,
}

impl<K: aya::Pod, V: aya::Pod> HashTable<K, V> {
    fn new(name: &'static str, data: MapData) -> Result<Self, LbMapError> {
        let (map, fd) = typed_with_fd(name, data, HashMap::try_from)?;
        Ok(Self {
            name,
            map,
            fd,
            batch: true,
        })
    }

    /// Runs `op` as a batch unless the kernel lacks batches; `Ok(false)` means "do it
    /// element by element".
    fn try_batch(
        &mut self,
        op: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> Result<(), BatchError>,
    ) -> Result<bool, LbMapError> {
        if !self.batch {
            return Ok(false);
        }
        match op(self.fd.as_fd()) {
            Ok(()) => Ok(true),
            Err(BatchError::Unsupported { source }) => {
                tracing::info!(map = self.name, %source, "batched map writes unavailable; writing one element per syscall");
                self.batch = false;
                Ok(false)
            }
            Err(source) => Err(LbMapError::Batch {
                name: self.name,
                source,
            }),
        }
    }

    /// Writes `keys[i] → values[i]` with the batch writer `write`, or element by
    /// element where the kernel lacks batches.
    fn upsert_with(
        &mut self,
        write: BatchWrite<K, V>,
        keys: &[K],
        values: &[V],
    ) -> Result<(), LbMapError> {
        assert_eq!(keys.len(), values.len(), "one value per key");
        if keys.is_empty() || self.try_batch(|fd| write(fd, keys, values))? {
            return Ok(());
        }
        keys.iter()
            .zip(values)
            .try_for_each(|(k, v)| self.map.insert(k, v, 0))
            .map_err(|source| LbMapError::Map {
                name: self.name,
                source,
            })
    }

    /// Every entry, one `get_next_key` + lookup per element.
    fn entries_one_by_one(&self) -> Result<Vec<(K, V)>, LbMapError> {
        let mut out = Vec::new();
        for entry in self.map.iter() {
            match entry {
                Ok(kv) => out.push(kv),
                // A key deleted between get_next_key and lookup: skip it.
                Err(MapError::KeyNotFound) => continue,
                Err(source) => {
                    return Err(LbMapError::Map {
                        name: self.name,
                        source,
                    });
                }
            }
        }
        Ok(out)
    }
}

impl<K: aya::Pod + Sync, V: aya::Pod + Sync> MapTable<K, V> for HashTable<K, V> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn get(&self, key: &K) -> Result<Option<V>, LbMapError> {
        match self.map.get(key, 0) {
            Ok(value) => Ok(Some(value)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(LbMapError::Map {
                name: self.name,
                source,
            }),
        }
    }

    fn insert(&mut self, key: &K, value: &V) -> Result<(), LbMapError> {
        self.map
            .insert(key, value, 0)
            .map_err(|source| LbMapError::Map {
                name: self.name,
                source,
            })
    }

    fn remove(&mut self, key: &K) -> Result<(), LbMapError> {
        match self.map.remove(key) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(())
            }
            Err(source) => Err(LbMapError::Map {
                name: self.name,
                source,
            }),
        }
    }

    fn entries(&self) -> Result<Vec<(K, V)>, LbMapError> {
        if self.batch {
            match batch::lookup_all(self.fd.as_fd()) {
                Ok(entries) => return Ok(entries),
                // Unsupported, or a bucket larger than a batch (ENOSPC): read one by one.
                Err(error) => tracing::debug!(map = self.name, %error, "batched read failed"),
            }
        }
        self.entries_one_by_one()
    }

    fn insert_batch(&mut self, keys: &[K], values: &[V]) -> Result<(), LbMapError> {
        self.upsert_with(batch::update, keys, values)
    }

    fn insert_batch_unordered(&mut self, keys: &[K], values: &[V]) -> Result<(), LbMapError> {
        self.upsert_with(batch::update_split, keys, values)
    }

    fn remove_batch(&mut self, keys: &[K]) -> Result<(), LbMapError> {
        if keys.is_empty() || self.try_batch(|fd| batch::delete(fd, keys))? {
            return Ok(());
        }
        keys.iter().try_for_each(|k| self.remove(k))
    }
}

/// Where to open the maps from.
enum MapSource<'a> {
    Ebpf(&'a Ebpf),
    PinDir(&'a Path),
}

impl MapSource<'_> {
    fn open(&self, name: &'static str) -> Result<MapData, LbMapError> {
        match self {
            MapSource::Ebpf(ebpf) => {
                let map = ebpf.map(name).ok_or(LbMapError::Missing { name })?;
                let fd = map_data(map)
                    .ok_or(LbMapError::Map {
                        name,
                        source: MapError::InvalidName {
                            name: name.to_owned(),
                        },
                    })?
                    .fd()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|source| LbMapError::Dup { name, source })?;
                MapData::from_fd(fd).map_err(|source| LbMapError::Map { name, source })
            }
            MapSource::PinDir(dir) => {
                let path = dir.join(name);
                MapData::from_pin(&path).map_err(|source| LbMapError::Pin { path, source })
            }
        }
    }
}

fn map_data(map: &Map) -> Option<&MapData> {
    match map {
        Map::HashMap(d)
        | Map::LruHashMap(d)
        | Map::PerCpuHashMap(d)
        | Map::PerCpuLruHashMap(d)
        | Map::Array(d)
        | Map::PerCpuArray(d) => Some(d),
        _ => None,
    }
}

/// The kernel's LB maps (plus the counters the proxy exports as metrics).
pub struct PinnedLbMaps {
    services_v4: HashTable<ServiceKeyV4, ServiceValue>,
    services_v6: HashTable<ServiceKeyV6, ServiceValue>,
    slots: ArrayTable<u32>,
    backends_v4: ArrayTable<BackendV4>,
    backends_v6: ArrayTable<BackendV6>,
    rev_nat_v4: ArrayTable<RevNatV4>,
    rev_nat_v6: ArrayTable<RevNatV6>,
    maglev: HashTable<u32, MaglevTable>,
    node_addrs_v4: HashTable<u32, NodeAddrFlag>,
    node_addrs_v6: HashTable<[u8; 16], NodeAddrFlag>,
    service_metrics: PerCpuHashMap<MapData, u32, ServiceCounters>,
    drops: PerCpuArray<MapData, u64>,
    node_config: Array<MapData, NodeConfig>,
}

impl PinnedLbMaps {
    /// Opens the maps of a loaded object (the fds are duplicated).
    pub fn from_ebpf(ebpf: &Ebpf) -> Result<Self, LbMapError> {
        Self::open(&MapSource::Ebpf(ebpf))
    }

    /// Opens the maps pinned under `pin_dir` by a running proxy.
    pub fn from_pin_dir(pin_dir: &Path) -> Result<Self, LbMapError> {
        Self::open(&MapSource::PinDir(pin_dir))
    }

    fn open(source: &MapSource<'_>) -> Result<Self, LbMapError> {
        fn typed<T>(
            source: &MapSource<'_>,
            name: &'static str,
            convert: impl FnOnce(Map) -> Result<T, MapError>,
        ) -> Result<T, LbMapError> {
            let data = source.open(name)?;
            Map::from_map_data(data)
                .and_then(convert)
                .map_err(|source| LbMapError::Map { name, source })
        }
        Ok(Self {
            services_v4: HashTable::new(maps::SERVICES_V4, source.open(maps::SERVICES_V4)?)?,
            services_v6: HashTable::new(maps::SERVICES_V6, source.open(maps::SERVICES_V6)?)?,
            slots: ArrayTable::new(maps::SLOTS, source.open(maps::SLOTS)?)?,
            backends_v4: ArrayTable::new(maps::BACKENDS_V4, source.open(maps::BACKENDS_V4)?)?,
            backends_v6: ArrayTable::new(maps::BACKENDS_V6, source.open(maps::BACKENDS_V6)?)?,
            rev_nat_v4: ArrayTable::new(maps::REV_NAT_V4, source.open(maps::REV_NAT_V4)?)?,
            rev_nat_v6: ArrayTable::new(maps::REV_NAT_V6, source.open(maps::REV_NAT_V6)?)?,
            maglev: HashTable::new(maps::MAGLEV, source.open(maps::MAGLEV)?)?,
            node_addrs_v4: HashTable::new(maps::NODE_ADDRS_V4, source.open(maps::NODE_ADDRS_V4)?)?,
            node_addrs_v6: HashTable::new(maps::NODE_ADDRS_V6, source.open(maps::NODE_ADDRS_V6)?)?,
            service_metrics: typed(source, maps::SERVICE_METRICS, PerCpuHashMap::try_from)?,
            drops: typed(source, maps::DROPS, PerCpuArray::try_from)?,
            node_config: typed(source, maps::NODE_CONFIG, Array::try_from)?,
        })
    }

    /// Per-service counters summed over CPUs, keyed by `rev_nat_index`.
    pub fn service_counters(&self) -> Result<Vec<(u32, ServiceCounters)>, LbMapError> {
        let name = maps::SERVICE_METRICS;
        let mut out = Vec::new();
        for entry in self.service_metrics.iter() {
            let (key, per_cpu) = match entry {
                Ok(kv) => kv,
                Err(MapError::KeyNotFound) => continue,
                Err(source) => return Err(LbMapError::Map { name, source }),
            };
            let mut sum = ServiceCounters::default();
            for c in per_cpu.iter() {
                sum.packets += c.packets;
                sum.bytes += c.bytes;
                sum.connections += c.connections;
            }
            out.push((key, sum));
        }
        Ok(out)
    }

    /// Drop counters summed over CPUs, indexed by drop reason (`DROP_*`).
    pub fn drop_counters(&self) -> Result<Vec<(u32, u64)>, LbMapError> {
        let name = maps::DROPS;
        let len = self.drops.len().min(DROP_REASON_COUNT);
        (0..len)
            .map(|reason| {
                let values = self
                    .drops
                    .get(&reason, 0)
                    .map_err(|source| LbMapError::Map { name, source })?;
                Ok((reason, values.iter().sum()))
            })
            .collect()
    }

    /// The per-node settings (index 0 of the node config array).
    pub fn node_config(&self) -> Result<NodeConfig, LbMapError> {
        self.node_config
            .get(&0, 0)
            .map_err(|source| LbMapError::Map {
                name: maps::NODE_CONFIG,
                source,
            })
    }

    pub fn set_node_config(&mut self, config: &NodeConfig) -> Result<(), LbMapError> {
        self.node_config
            .set(0, config, 0)
            .map_err(|source| LbMapError::Map {
                name: maps::NODE_CONFIG,
                source,
            })
    }
}

crate::impl_lb_maps!(PinnedLbMaps);
