//! The node's own addresses, as the data path needs them: the addresses NodePorts
//! answer on (`wg_naddr4_v1`/`wg_naddr6_v1`) and the SNAT source of NodePort traffic
//! forwarded to another node (`NodeConfig`).
//!
//! Like kube-proxy's `--nodeport-addresses`, NodePorts answer on every address of
//! the node unless a list of CIDRs narrows them down; loopback is always added by
//! the programmer, link-local addresses never count. [`watch::AddressWatcher`]
//! follows the addresses through netlink and records each new selection in the
//! [`ChangeTracker`](crate::tracker)'s companion, [`NodeAddressTracker`]; the sync
//! runner applies it with the next sync, like any other change.

pub mod cidr;
pub mod watch;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use waggle_ebpf_common::lb::NodeConfig;

pub use cidr::{Cidr, CidrError};

use crate::{model::v4_to_map, netlink::InterfaceAddress};

/// What the data path is told about the node's addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeAddresses {
    /// Addresses NodePorts answer on (sorted).
    pub node_port: Vec<IpAddr>,
    /// Source address for SNAT'ed NodePort traffic to remote backends.
    pub snat_v4: Option<Ipv4Addr>,
    pub snat_v6: Option<Ipv6Addr>,
}

impl NodeAddresses {
    /// Fixed addresses (`--node-ip`): NodePorts answer on them, and the first of each
    /// family is the SNAT source.
    pub fn fixed(addresses: &[IpAddr]) -> Self {
        let mut node_port = addresses.to_vec();
        node_port.sort();
        node_port.dedup();
        Self {
            node_port,
            snat_v4: addresses.iter().find_map(|ip| match ip {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            }),
            snat_v6: addresses.iter().find_map(|ip| match ip {
                IpAddr::V6(v6) => Some(*v6),
                IpAddr::V4(_) => None,
            }),
        }
    }

    /// Writes the SNAT addresses into `config` (0 / `::` when the node has none of a
    /// family: the kernel then drops what it would have to SNAT, counted).
    pub fn write_to(&self, config: &mut NodeConfig) {
        config.node_address_v4 = self.snat_v4.map_or(0, v4_to_map);
        config.node_address_v6 = self.snat_v6.unwrap_or(Ipv6Addr::UNSPECIFIED).octets();
    }
}

/// Which of the node's addresses count, and which interface is the uplink.
#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    /// `--nodeport-addresses`: empty means every address.
    pub node_port_cidrs: Vec<Cidr>,
    /// The uplink's index: its addresses are preferred as SNAT source.
    pub uplink_index: Option<u32>,
}

impl AddressPolicy {
    /// Chooses the node's addresses from everything the interfaces carry. A SNAT
    /// address in `previous` that still exists is kept (connections in flight keep
    /// their translation); otherwise the uplink's lowest address of the family, else
    /// the lowest of any interface.
    pub fn select(
        &self,
        found: &[InterfaceAddress],
        previous: Option<&NodeAddresses>,
    ) -> NodeAddresses {
        let usable: Vec<InterfaceAddress> = found
            .iter()
            .copied()
            .filter(|a| is_node_address(a.ip))
            .collect();
        let mut node_port: Vec<IpAddr> = usable
            .iter()
            .map(|a| a.ip)
            .filter(|ip| {
                self.node_port_cidrs.is_empty()
                    || self.node_port_cidrs.iter().any(|cidr| cidr.contains(*ip))
            })
            .collect();
        node_port.sort();
        node_port.dedup();
        let snat = |family: fn(IpAddr) -> bool, kept: Option<IpAddr>| -> Option<IpAddr> {
            let of_family = usable.iter().filter(|a| family(a.ip));
            if let Some(kept) = kept
                && usable.iter().any(|a| a.ip == kept)
            {
                return Some(kept);
            }
            let on_uplink = of_family
                .clone()
                .filter(|a| Some(a.index) == self.uplink_index)
                .map(|a| a.ip)
                .min();
            on_uplink.or_else(|| of_family.map(|a| a.ip).min())
        };
        let previous_v4 = previous.and_then(|p| p.snat_v4).map(IpAddr::V4);
        let previous_v6 = previous.and_then(|p| p.snat_v6).map(IpAddr::V6);
        NodeAddresses {
            node_port,
            snat_v4: match snat(|ip| ip.is_ipv4(), previous_v4) {
                Some(IpAddr::V4(v4)) => Some(v4),
                _ => None,
            },
            snat_v6: match snat(|ip| ip.is_ipv6(), previous_v6) {
                Some(IpAddr::V6(v6)) => Some(v6),
                _ => None,
            },
        }
    }
}

/// Whether an interface address is one of the node's: not loopback (added on its
/// own), not link-local (the pod gateway `169.254.1.1`/`fe80::1` on every pod veth),
/// not multicast or unspecified.
pub fn is_node_address(ip: IpAddr) -> bool {
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    !(ip.is_loopback() || ip.is_multicast() || ip.is_unspecified() || link_local)
}

/// The node-address side of the change tracker: the selection the last sync took
/// and the latest one. A change undone before the next sync disappears.
#[derive(Debug, Default)]
pub struct NodeAddressTracker {
    taken: Option<NodeAddresses>,
    current: Option<NodeAddresses>,
}

impl NodeAddressTracker {
    /// Records the latest selection; returns whether it differs from what the last
    /// sync took (the runner needs a nudge).
    pub fn record(&mut self, addresses: NodeAddresses) -> bool {
        let changed = self.taken.as_ref() != Some(&addresses);
        self.current = Some(addresses);
        changed
    }

    /// The selection to apply, if it changed since the last take.
    pub fn take(&mut self) -> Option<NodeAddresses> {
        let current = self.current.take()?;
        if self.taken.as_ref() == Some(&current) {
            return None;
        }
        self.taken = Some(current.clone());
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPLINK: u32 = 2;
    const VETH: u32 = 7;

    fn at(index: u32, ip: &str) -> InterfaceAddress {
        InterfaceAddress {
            index,
            ip: ip.parse().unwrap(),
        }
    }

    fn policy(cidrs: &[&str]) -> AddressPolicy {
        AddressPolicy {
            node_port_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            uplink_index: Some(UPLINK),
        }
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn every_node_address_but_loopback_and_link_local_by_default() {
        let found = [
            at(1, "127.0.0.1"),
            at(1, "::1"),
            at(UPLINK, "10.250.0.1"),
            at(UPLINK, "fd00:250::1"),
            at(UPLINK, "fe80::2"),
            at(VETH, "169.254.1.1"),
            at(VETH, "fe80::1"),
            at(VETH, "10.0.9.1"),
        ];
        let got = policy(&[]).select(&found, None);
        assert_eq!(
            got.node_port,
            ips(&["10.0.9.1", "10.250.0.1", "fd00:250::1"])
        );
        // The uplink's address wins over the lower one of the veth.
        assert_eq!(got.snat_v4, Some("10.250.0.1".parse().unwrap()));
        assert_eq!(got.snat_v6, Some("fd00:250::1".parse().unwrap()));
    }

    #[test]
    fn nodeport_addresses_narrow_node_ports_but_not_snat() {
        let found = [
            at(UPLINK, "10.250.0.1"),
            at(VETH, "10.0.9.1"),
            at(UPLINK, "fd00:250::1"),
        ];
        let got = policy(&["10.0.0.0/16"]).select(&found, None);
        assert_eq!(got.node_port, ips(&["10.0.9.1"]));
        assert_eq!(got.snat_v4, Some("10.250.0.1".parse().unwrap()));
        assert_eq!(got.snat_v6, Some("fd00:250::1".parse().unwrap()));
    }

    #[test]
    fn snat_address_is_kept_while_it_exists() {
        let before = policy(&[]).select(&[at(UPLINK, "10.250.0.5")], None);
        // A lower address appears on the uplink: the SNAT source stays.
        let both = [at(UPLINK, "10.250.0.1"), at(UPLINK, "10.250.0.5")];
        let after = policy(&[]).select(&both, Some(&before));
        assert_eq!(after.snat_v4, Some("10.250.0.5".parse().unwrap()));
        assert_eq!(after.node_port, ips(&["10.250.0.1", "10.250.0.5"]));
        // It goes: the remaining one takes over; none left: no SNAT address.
        let moved = policy(&[]).select(&[at(UPLINK, "10.250.0.1")], Some(&after));
        assert_eq!(moved.snat_v4, Some("10.250.0.1".parse().unwrap()));
        let none = policy(&[]).select(&[], Some(&moved));
        assert_eq!(none, NodeAddresses::default());
        let mut config = NodeConfig {
            node_address_v4: 9,
            flags: 1,
            ..NodeConfig::default()
        };
        none.write_to(&mut config);
        assert_eq!((config.node_address_v4, config.flags), (0, 1));
    }

    #[test]
    fn fixed_addresses_snat_from_the_first_of_each_family() {
        let fixed = NodeAddresses::fixed(&ips(&["fd00::2", "10.0.0.2", "10.0.0.1"]));
        assert_eq!(fixed.node_port, ips(&["10.0.0.1", "10.0.0.2", "fd00::2"]));
        assert_eq!(fixed.snat_v4, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(fixed.snat_v6, Some("fd00::2".parse().unwrap()));
    }

    #[test]
    fn tracker_reports_a_change_once_and_forgets_an_undone_one() {
        let a = NodeAddresses::fixed(&ips(&["10.0.0.1"]));
        let b = NodeAddresses::fixed(&ips(&["10.0.0.2"]));
        let mut t = NodeAddressTracker::default();
        assert!(t.record(a.clone()));
        assert_eq!(t.take(), Some(a.clone()));
        assert_eq!(t.take(), None);
        assert!(t.record(b.clone()));
        assert!(!t.record(a.clone()));
        assert_eq!(t.take(), None, "a → b → a before a sync is no change");
        assert!(t.record(b.clone()));
        assert_eq!(t.take(), Some(b));
    }
}
