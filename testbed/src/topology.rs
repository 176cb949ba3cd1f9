//! The addressing plan: pure functions from node and pod indices to addresses.
//!
//! | what                 | IPv4              | IPv6                  |
//! |----------------------|-------------------|-----------------------|
//! | fabric subnet        | 10.250.0.0/24     | fd00:250::/64         |
//! | node `i` (uplink)    | 10.250.0.(i+1)    | fd00:250::(i+1)       |
//! | external client      | 10.250.0.200      | fd00:250::200         |
//! | node `i` podCIDR     | 10.244.i.0/24     | fd00:244:i::/64       |
//! | pod `k` on node `i`  | 10.244.i.(k+2)    | fd00:244:i::(k+2)     |
//! | pod gateway (all)    | 169.254.1.1       | fe80::1               |
//!
//! `k` counts the pods ever added to that node (names are not reused).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Most nodes a bed can have (their fabric addresses stay below the external client's).
pub const MAX_NODES: usize = 199;
/// Most pods a node can hold over the bed's life (addresses .2 to .254).
pub const MAX_PODS_PER_NODE: usize = 253;

pub const FABRIC_V4: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 250, 0, 0), 24);
pub const FABRIC_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0xfd00, 0x250, 0, 0, 0, 0, 0, 0), 64);
/// All pod CIDRs (v4) together: what a pod routes via its gateway.
pub const PODS_V4: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 244, 0, 0), 16);
/// All pod CIDRs (v6) together.
pub const PODS_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0xfd00, 0x244, 0, 0, 0, 0, 0, 0), 32);
/// The pod's next hop: present on every host-side veth in a node.
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
pub const EXTERNAL_V4: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 200);
pub const EXTERNAL_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x250, 0, 0, 0, 0, 0, 0x200);

pub fn node_v4(node: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 250, 0, host_octet(node + 1))
}

pub fn node_v6(node: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x250, 0, 0, 0, 0, 0, (node + 1) as u16)
}

pub fn pod_cidr_v4(node: usize) -> (Ipv4Addr, u8) {
    (Ipv4Addr::new(10, 244, host_octet(node), 0), 24)
}

pub fn pod_cidr_v6(node: usize) -> (Ipv6Addr, u8) {
    (Ipv6Addr::new(0xfd00, 0x244, node as u16, 0, 0, 0, 0, 0), 64)
}

pub fn pod_v4(node: usize, index: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, host_octet(node), host_octet(index + 2))
}

pub fn pod_v6(node: usize, index: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x244, node as u16, 0, 0, 0, 0, (index + 2) as u16)
}

fn host_octet(value: usize) -> u8 {
    u8::try_from(value).expect("index checked against MAX_NODES / MAX_PODS_PER_NODE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_matches_the_documented_table() {
        assert_eq!(node_v4(0).to_string(), "10.250.0.1");
        assert_eq!(node_v6(1).to_string(), "fd00:250::2");
        assert_eq!(pod_cidr_v4(3), (Ipv4Addr::new(10, 244, 3, 0), 24));
        assert_eq!(pod_cidr_v6(3).0.to_string(), "fd00:244:3::");
        assert_eq!(pod_v4(1, 0).to_string(), "10.244.1.2");
        assert_eq!(pod_v6(1, 0).to_string(), "fd00:244:1::2");
        assert!(node_v4(MAX_NODES - 1) < EXTERNAL_V4);
        assert_eq!(pod_v4(0, MAX_PODS_PER_NODE - 1).octets()[3], 254);
    }
}
