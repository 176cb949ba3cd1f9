//! The key and value sizes every pinned map must have, from the ABI types in
//! `waggle_ebpf_common`, so that a daemon never reuses a pinned map whose layout an
//! older (or newer) version defined differently: aya would silently reuse it.
//! A layout change must come with a new map name (`*_v1` → `*_v2`); a stale pin is
//! reported, not reinterpreted.

use std::{mem::size_of, path::Path};

use aya::maps::MapInfo;
use waggle_ebpf_common::{
    conntrack::{CtEntryV4, CtEntryV6, CtKeyV4, CtKeyV6},
    lb::{
        AffinityKey, AffinityValue, BackendV4, BackendV6, MaglevTable, NodeConfig, RevNatV4,
        RevNatV6, ServiceKeyV4, ServiceKeyV6, ServiceValue, SockLbRecord, SockRevNatKeyV4,
        SockRevNatKeyV6, SockRevNatV4, SockRevNatV6,
    },
    maps,
    metrics::ServiceCounters,
};

use crate::DatapathError;

const fn sizes<K, V>() -> (u32, u32) {
    (size_of::<K>() as u32, size_of::<V>() as u32)
}

/// `(map name, (key size, value size))` of every map in `maps::PINNED`.
pub(crate) const LAYOUTS: [(&str, (u32, u32)); 19] = [
    (maps::SERVICES_V4, sizes::<ServiceKeyV4, ServiceValue>()),
    (maps::SERVICES_V6, sizes::<ServiceKeyV6, ServiceValue>()),
    (maps::SLOTS, sizes::<u32, u32>()),
    (maps::BACKENDS_V4, sizes::<u32, BackendV4>()),
    (maps::BACKENDS_V6, sizes::<u32, BackendV6>()),
    (maps::REV_NAT_V4, sizes::<u32, RevNatV4>()),
    (maps::REV_NAT_V6, sizes::<u32, RevNatV6>()),
    (
        maps::SOCK_REV_NAT_V4,
        sizes::<SockRevNatKeyV4, SockRevNatV4>(),
    ),
    (
        maps::SOCK_REV_NAT_V6,
        sizes::<SockRevNatKeyV6, SockRevNatV6>(),
    ),
    // Socket storage: the key is the socket's fd (an i32) from userspace.
    (maps::SOCK_LB, sizes::<i32, SockLbRecord>()),
    (maps::AFFINITY, sizes::<AffinityKey, AffinityValue>()),
    (maps::MAGLEV, sizes::<u32, MaglevTable>()),
    (maps::CONNTRACK_V4, sizes::<CtKeyV4, CtEntryV4>()),
    (maps::CONNTRACK_V6, sizes::<CtKeyV6, CtEntryV6>()),
    (maps::DROPS, sizes::<u32, u64>()),
    (maps::SERVICE_METRICS, sizes::<u32, ServiceCounters>()),
    (maps::NODE_CONFIG, sizes::<u32, NodeConfig>()),
    (maps::NODE_ADDRS_V4, sizes::<u32, u8>()),
    (maps::NODE_ADDRS_V6, sizes::<[u8; 16], u8>()),
];

/// Checks every map already pinned under `pin_dir` against [`LAYOUTS`].
pub(crate) fn check_pins(pin_dir: &Path) -> Result<(), DatapathError> {
    for (name, expected) in LAYOUTS {
        let path = pin_dir.join(name);
        if !path.exists() {
            continue;
        }
        let info = MapInfo::from_pin(&path).map_err(|source| DatapathError::Map {
            name: name.to_owned(),
            source,
        })?;
        let found = (info.key_size(), info.value_size());
        if found != expected {
            return Err(DatapathError::StalePin {
                path,
                found,
                expected,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pinned_map_has_a_layout() {
        let names: Vec<&str> = LAYOUTS.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, maps::PINNED);
    }

    #[test]
    fn layouts_match_the_abi_types() {
        // Spot checks of sizes the kernel side relies on (padding is explicit).
        let get = |n: &str| LAYOUTS.iter().find(|(name, _)| *name == n).unwrap().1;
        assert_eq!(get(maps::SERVICES_V4), (8, 16));
        assert_eq!(get(maps::SERVICES_V6), (20, 16));
        assert_eq!(get(maps::SLOTS), (4, 4));
        assert_eq!(get(maps::SOCK_REV_NAT_V4), (16, 8));
        assert_eq!(get(maps::SOCK_REV_NAT_V6), (32, 20));
        assert_eq!(get(maps::SOCK_LB), (4, 40));
        assert_eq!(get(maps::AFFINITY), (24, 8));
    }
}
