//! Watching a node's data path from outside its proxy: the LB maps the proxy pinned,
//! opened read-only by path, polled until a frontend has the expected backend count.
//! This is the moment connect() starts behaving differently, so the time from an API
//! write to here is the control-plane latency of the whole cluster.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddrV4},
    path::Path,
    time::{Duration, Instant},
};

use waggle_datapath::lb_maps::{LbMaps, PinnedLbMaps};
use waggle_ebpf_common::lb::{PROTO_TCP, SCOPE_EXTERNAL};

/// How often the maps are read while waiting.
const POLL: Duration = Duration::from_micros(500);

/// One node's pinned LB maps.
pub struct NodeMaps {
    pub node: String,
    maps: PinnedLbMaps,
}

impl NodeMaps {
    pub fn open(node: &str, pin_dir: &Path) -> Self {
        let maps = PinnedLbMaps::from_pin_dir(pin_dir).unwrap_or_else(|error| {
            panic!(
                "opening {node}'s LB maps under {}: {error}",
                pin_dir.display()
            )
        });
        Self {
            node: node.to_owned(),
            maps,
        }
    }

    /// TCP frontends (external scope) and their backend counts.
    pub fn frontends(&mut self) -> BTreeMap<SocketAddrV4, u16> {
        let entries = self
            .maps
            .services_v4()
            .entries()
            .unwrap_or_else(|error| panic!("reading {}'s services map: {error}", self.node));
        entries
            .into_iter()
            .filter(|(key, _)| key.scope == SCOPE_EXTERNAL && key.protocol == PROTO_TCP)
            .map(|(key, value)| {
                let address = Ipv4Addr::from(u32::from_be(key.address));
                (
                    SocketAddrV4::new(address, u16::from_be(key.port)),
                    value.count,
                )
            })
            .collect()
    }

    /// Waits until `frontend` has `count` backends (`None`: is absent); returns the time
    /// since `since`. Panics after `limit`, showing what the map holds.
    pub fn wait_for(
        &mut self,
        frontend: SocketAddrV4,
        count: Option<u16>,
        since: Instant,
        limit: Duration,
    ) -> Duration {
        self.wait_for_any(&[frontend], count, since, limit)
    }

    /// Like [`NodeMaps::wait_for`] for a frontend that may be keyed in more than one way
    /// (a NodePort by node address, or by `0.0.0.0` for every node address): the first
    /// of `keys` present counts; `None` means none is present.
    pub fn wait_for_any(
        &mut self,
        keys: &[SocketAddrV4],
        count: Option<u16>,
        since: Instant,
        limit: Duration,
    ) -> Duration {
        loop {
            let frontends = self.frontends();
            if keys.iter().find_map(|key| frontends.get(key).copied()) == count {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < limit,
                "{}: {keys:?} not at {count:?} backends within {limit:?}; the map holds {frontends:?}",
                self.node
            );
            std::thread::sleep(POLL);
        }
    }

    /// The keys a NodePort `port` on `node_ip` may have.
    pub fn node_port_keys(node_ip: Ipv4Addr, port: u16) -> [SocketAddrV4; 2] {
        [
            SocketAddrV4::new(node_ip, port),
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
        ]
    }
}
