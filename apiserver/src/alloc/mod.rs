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
        Allocator { cidrs, node_ports, ips: Mutex::default(), ports: Mutex::default() }
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

    /// A free address in `cidr`, reserved.
    pub fn next_ip(&self, cidr: &Cidr) -> Option<IpAddr> {
        let mut used = self.ips.lock();
        let size = cidr.usable();
        let start = rand::rng().random_range(0..size);
        (0..size).map(|i| cidr.nth((start + i) % size)).find(|ip| used.insert(*ip))
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

    pub fn next_port(&self) -> Option<u16> {
        let mut used = self.ports.lock();
        let (lo, hi) = (*self.node_ports.start(), *self.node_ports.end());
        let size = u32::from(hi - lo) + 1;
        let start = rand::rng().random_range(0..size);
        (0..size).map(|i| lo + ((start + i) % size) as u16).find(|p| used.insert(*p))
    }

    pub fn release_port(&self, port: u16) {
        self.ports.lock().remove(&port);
    }
}
