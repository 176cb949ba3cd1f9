//! Newtypes for what crosses the proxy's boundaries: service names, protocols,
//! backend addresses, and the conversions to the kernel ABI (network byte order).

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use rustc_hash::FxHashSet;
use waggle_ebpf_common::lb::{PROTO_SCTP, PROTO_TCP, PROTO_UDP};

/// `namespace/name` of a Service. Shared strings: a sync clones names into plans, ids
/// and reports for every service, and a clone must not allocate. Names made through
/// one [`Names`] share their strings, so comparing them mostly compares pointers.
#[derive(Clone, Debug)]
pub struct ServiceName {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

/// Hashes the strings (as the derived impl would), consistent with `eq`.
impl std::hash::Hash for ServiceName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.namespace.hash(state);
        self.name.hash(state);
    }
}

/// A borrowed `namespace/name`, to look a [`ServiceName`] up without allocating (an
/// EndpointSlice names its Service in a label; the namespace is the slice's shared
/// string). Hashes as a `ServiceName` does, and becomes one (sharing the namespace)
/// when inserted.
#[derive(Clone, Copy, Debug)]
pub struct NameRef<'a> {
    pub namespace: &'a Arc<str>,
    pub name: &'a str,
}

impl From<&NameRef<'_>> for ServiceName {
    fn from(name: &NameRef<'_>) -> Self {
        ServiceName {
            namespace: name.namespace.clone(),
            name: name.name.into(),
        }
    }
}

impl std::hash::Hash for NameRef<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.namespace.hash(state);
        self.name.hash(state);
    }
}

impl hashbrown::Equivalent<ServiceName> for NameRef<'_> {
    fn equivalent(&self, key: &ServiceName) -> bool {
        *key.name == *self.name && same(&key.namespace, self.namespace)
    }
}

/// Compares shared strings, by pointer first.
fn same(a: &Arc<str>, b: &Arc<str>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

impl PartialEq for ServiceName {
    fn eq(&self, other: &Self) -> bool {
        same(&self.name, &other.name) && same(&self.namespace, &other.namespace)
    }
}

impl Eq for ServiceName {}

impl Ord for ServiceName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let namespace = if Arc::ptr_eq(&self.namespace, &other.namespace) {
            std::cmp::Ordering::Equal
        } else {
            self.namespace.cmp(&other.namespace)
        };
        namespace.then_with(|| self.name.cmp(&other.name))
    }
}

impl PartialOrd for ServiceName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Interns namespace and name strings, so the names of one object held in several
/// places (the Service, its EndpointSlices' owner label, ids and reports) share one
/// allocation each and a lookup of a known name allocates nothing.
#[derive(Debug, Default)]
pub struct Names {
    strings: FxHashSet<Arc<str>>,
}

impl Names {
    pub fn service(&mut self, namespace: &str, name: &str) -> ServiceName {
        ServiceName {
            namespace: self.intern(namespace),
            name: self.intern(name),
        }
    }

    /// Makes room for `more` strings.
    pub fn reserve(&mut self, more: usize) {
        self.strings.reserve(more);
    }

    pub fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(s) {
            return shared.clone();
        }
        let shared: Arc<str> = s.into();
        self.strings.insert(shared.clone());
        shared
    }

    /// Forgets the strings nothing else holds any more.
    pub fn prune(&mut self) {
        self.strings.retain(|s| Arc::strong_count(s) > 1);
    }

    pub fn len(&self) -> usize {
        self.strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

impl ServiceName {
    pub fn new(namespace: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A Service's `metadata.creationTimestamp` (nanoseconds since the epoch), ordered
/// oldest first. A missing timestamp (a YAML file may omit it) orders after every
/// real one: [`Created::UNKNOWN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Created(i128);

impl Created {
    pub const UNKNOWN: Self = Self(i128::MAX);

    pub fn from_nanos(nanos: i128) -> Self {
        // `UNKNOWN` is out of any timestamp's range; clamp just below it.
        Self(nanos.min(i128::MAX - 1))
    }
}

impl Default for Created {
    fn default() -> Self {
        Self::UNKNOWN
    }
}

/// One port of a Service: `namespace/name:port-name/PROTO`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePortName {
    pub service: ServiceName,
    /// The Service port's `name` (empty for a single unnamed port).
    pub port: Arc<str>,
    pub protocol: Protocol,
}

impl fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.service, self.port, self.protocol)
    }
}

/// L4 protocols a Service port can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// Parses the Kubernetes spelling (`TCP`, `UDP`, `SCTP`; absent means TCP).
    pub fn from_k8s(value: Option<&str>) -> Option<Self> {
        match value.unwrap_or("TCP") {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            "SCTP" => Some(Self::Sctp),
            _ => None,
        }
    }

    /// The IANA protocol number used in map keys.
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => PROTO_TCP,
            Self::Udp => PROTO_UDP,
            Self::Sctp => PROTO_SCTP,
        }
    }

    pub fn from_number(number: u8) -> Option<Self> {
        match number {
            PROTO_TCP => Some(Self::Tcp),
            PROTO_UDP => Some(Self::Udp),
            PROTO_SCTP => Some(Self::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Sctp => "SCTP",
        })
    }
}

/// IP family of a frontend or endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    /// The "any address" of this family (NodePort frontends).
    pub fn unspecified(self) -> IpAddr {
        match self {
            Self::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Self::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// A backend's identity: the backend id is stable for as long as this triple is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendAddr {
    pub ip: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
}

impl fmt::Display for BackendAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}/{}", self.port, self.protocol),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}/{}", self.port, self.protocol),
        }
    }
}

/// IPv4 address as stored in maps (`sin_addr`, network order).
pub fn v4_to_map(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

pub fn v4_from_map(address: u32) -> Ipv4Addr {
    Ipv4Addr::from(address.to_ne_bytes())
}

/// Port as stored in maps (network order).
pub fn port_to_map(port: u16) -> u16 {
    port.to_be()
}

pub fn port_from_map(port: u16) -> u16 {
    u16::from_be(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_names_share_strings_and_compare_like_strings() {
        let mut names = Names::default();
        let a = names.service("ns", "web");
        let b = names.service("ns", "web");
        assert!(Arc::ptr_eq(&a.name, &b.name) && Arc::ptr_eq(&a.namespace, &b.namespace));
        assert_eq!(a, ServiceName::new("ns", "web"));
        assert!(names.service("ns", "api") < a);
        assert!(a < ServiceName::new("nt", "a"));
        assert_eq!(names.len(), 3);
        drop(b);
        names.prune();
        assert_eq!(names.len(), 2, "only `ns` and `web` are still held");
        assert_eq!(a.name.as_ref(), "web");
    }

    #[test]
    fn a_borrowed_name_finds_the_service_name() {
        let mut map: hashbrown::HashMap<ServiceName, u8, rustc_hash::FxBuildHasher> =
            Default::default();
        map.insert(ServiceName::new("ns", "web"), 1);
        let found = |namespace: &str, name| {
            let namespace: Arc<str> = namespace.into();
            map.get(&NameRef {
                namespace: &namespace,
                name,
            })
            .copied()
        };
        assert_eq!(found("ns", "web"), Some(1));
        assert_eq!(found("ns", "we"), None);
        assert_eq!(found("nsw", "eb"), None, "the parts are hashed apart");
    }

    #[test]
    fn map_encoding_is_network_order() {
        let ip = Ipv4Addr::new(10, 96, 0, 1);
        assert_eq!(v4_to_map(ip).to_ne_bytes(), [10, 96, 0, 1]);
        assert_eq!(v4_from_map(v4_to_map(ip)), ip);
        assert_eq!(port_to_map(80).to_ne_bytes(), [0, 80]);
        assert_eq!(port_from_map(port_to_map(8080)), 8080);
    }
}
