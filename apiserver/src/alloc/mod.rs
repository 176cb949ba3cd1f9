//! ClusterIP and NodePort allocation for Services.
//!
//! The allocation state is derived from the stored Services when the server starts
//! (so it survives restarts without a separate record) and kept in memory after:
//! a create reserves before it writes and releases if the write fails; a delete or a
//! type change releases.

pub mod cidr;
mod service;

use std::collections::HashSet;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use parking_lot::Mutex;
use rand::Rng;

pub use cidr::Cidr;
pub use service::Reservation;

/// The default NodePort range, as upstream.
pub const NODE_PORTS: RangeInclusive<u16> = 30000..=32767;

/// Which addresses and ports are in use.
#[derive(Debug)]
pub struct Allocator {
    /// Service CIDRs, the primary family first.
    cidrs: Vec<Cidr>,
    node_ports: RangeInclusive<u16>,
    ips: Mutex<HashSet<IpAddr>>,
    ports: Mutex<HashSet<u16>>,
}

impl Allocator {
    pub fn new(cidrs: Vec<Cidr>, node_ports: RangeInclusive<u16>) -> Self {
        Allocator {
            cidrs,
            node_ports,
            ips: Mutex::default(),
            ports: Mutex::default(),
        }
    }

    pub fn cidrs(&self) -> &[Cidr] {
        &self.cidrs
    }

    pub fn cidr_for(&self, family: &str) -> Option<Cidr> {
        self.cidrs.iter().copied().find(|c| c.family() == family)
    }

    /// Marks an address as used (when loading existing Services); false if it was.
    pub fn take_ip(&self, ip: IpAddr) -> bool {
        self.ips.lock().insert(ip)
    }

    pub fn ip_in_use(&self, ip: IpAddr) -> bool {
        self.ips.lock().contains(&ip)
    }

    /// A free address in `cidr`, reserved. As upstream (KEP-3070), the first
    /// addresses form a band kept for static choices: random picks come from above
    /// it and fall back to it only when the rest is full.
    pub fn next_ip(&self, cidr: &Cidr) -> Option<IpAddr> {
        let mut used = self.ips.lock();
        let size = cidr.usable();
        let band = static_band(size, 16, 256);
        dynamic_order(size, band)
            .map(|i| cidr.nth(i))
            .find(|ip| used.insert(*ip))
    }

    pub fn release_ip(&self, ip: IpAddr) {
        self.ips.lock().remove(&ip);
    }

    pub fn node_port_range(&self) -> &RangeInclusive<u16> {
        &self.node_ports
    }

    pub fn take_port(&self, port: u16) -> bool {
        self.ports.lock().insert(port)
    }

    /// A free node port, reserved; the lowest ports are a static band as for
    /// addresses (KEP-3668).
    pub fn next_port(&self) -> Option<u16> {
        let mut used = self.ports.lock();
        let (lo, hi) = (*self.node_ports.start(), *self.node_ports.end());
        let size = u128::from(hi - lo) + 1;
        let band = static_band(size, 32, 128);
        dynamic_order(size, band)
            .map(|i| lo + i as u16)
            .find(|p| used.insert(*p))
    }

    pub fn release_port(&self, port: u16) {
        self.ports.lock().remove(&port);
    }
}

/// How many of a range's first values are kept for static choices: one `step`th of
/// the range, at least 16 and at most `max`; none for a range smaller than 16.
/// Upstream uses a sixteenth up to 256 for addresses, a thirty-second up to 128 for ports.
fn static_band(size: u128, step: u128, max: u128) -> u128 {
    const MIN: u128 = 16;
    if size < MIN {
        0
    } else {
        (size / step).clamp(MIN, max)
    }
}

/// Every index of `0..size`, the dynamic band `band..size` first from a random
/// start, then the static band from a random start.
fn dynamic_order(size: u128, band: u128) -> impl Iterator<Item = u128> {
    let mut rng = rand::rng();
    let upper = size - band;
    let upper_start = if upper > 0 {
        rng.random_range(0..upper)
    } else {
        0
    };
    let lower_start = if band > 0 {
        rng.random_range(0..band)
    } else {
        0
    };
    let dynamic = (0..upper).map(move |i| band + (upper_start + i) % upper);
    let reserved = (0..band).map(move |i| (lower_start + i) % band);
    dynamic.chain(reserved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_bands_match_upstream_sizes() {
        // ClusterIPs: a /24 (254 usable) keeps 16, a /16 is capped at 256.
        assert_eq!(static_band(254, 16, 256), 16);
        assert_eq!(static_band(65_534, 16, 256), 256);
        assert_eq!(static_band(10, 16, 256), 0);
        // NodePorts: the default 2768 ports keep 86.
        assert_eq!(static_band(2768, 32, 128), 86);
    }

    #[test]
    fn random_picks_fill_the_dynamic_band_before_the_static_one() {
        let allocator = Allocator::new(vec![Cidr::parse("10.96.0.0/24").unwrap()], 30000..=30099);
        let cidr = allocator.cidrs()[0];
        let picks: Vec<IpAddr> = (0..254)
            .map(|_| allocator.next_ip(&cidr).unwrap())
            .collect();
        let static_band: Vec<IpAddr> = (0..16).map(|i| cidr.nth(i)).collect();
        assert!(
            picks[..238].iter().all(|ip| !static_band.contains(ip)),
            "{picks:?}"
        );
        assert!(
            picks[238..].iter().all(|ip| static_band.contains(ip)),
            "{picks:?}"
        );
        assert_eq!(allocator.next_ip(&cidr), None);

        let ports: Vec<u16> = (0..100).map(|_| allocator.next_port().unwrap()).collect();
        assert!(ports[..84].iter().all(|p| *p >= 30016), "{ports:?}");
        assert!(ports[84..].iter().all(|p| *p < 30016), "{ports:?}");
        assert_eq!(allocator.next_port(), None);
    }
}
