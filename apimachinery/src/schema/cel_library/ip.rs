//! Upstream's `library.IP` and `library.CIDR`: `ip`, `isIP`, `ip.isCanonical`, the
//! predicates of an address, `cidr`, `isCIDR`, containment, and `string` of both.
//!
//! Addresses parse as Go's `netip.ParseAddr` does (dotted quads without leading zeros,
//! RFC 4291 IPv6), less what upstream refuses: zones and IPv4-mapped IPv6 addresses. A
//! CIDR keeps the address as written (`cidr('10.0.0.1/8')` is not masked; `masked()`
//! is), so two CIDRs are equal when both address and length are.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cel::common::types::{CelBool, CelInt, CelString, Type};
use cel::{DeclarationError, Env, ExecutionError};
use thiserror::Error;

use super::{failure, opaque_value};

static IP_TYPE: Type = Type::new_unspecified_type("net.IP");
static CIDR_TYPE: Type = Type::new_unspecified_type("net.CIDR");

/// An IPv4 or IPv6 address.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Ip(IpAddr);

opaque_value!(Ip, IP_TYPE);

/// An address and a prefix length.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Cidr {
    addr: IpAddr,
    bits: u8,
}

opaque_value!(Cidr, CIDR_TYPE);

/// Why a string is not an address or a CIDR; the texts are upstream's.
#[derive(Debug, Error)]
enum AddressError {
    #[error("IP Address {0:?} parse error during conversion from string: ParseAddr({0:?}): {1}")]
    Address(String, &'static str),
    #[error("IP address {0:?} with zone value is not allowed")]
    Zone(String),
    #[error("IPv4-mapped IPv6 address {0:?} is not allowed")]
    Mapped(String),
    #[error("network address parse error during conversion from string: netip.ParsePrefix({0:?}): {1}")]
    Prefix(String, String),
    #[error("network address parse error during conversion from string: IPv4-mapped IPv6 address {0:?} is not allowed")]
    MappedPrefix(String),
}

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    cel::add_overload!(env, fn ip: (CelString) -> Result<Ip>, id = "string_to_ip")?;
    cel::add_overload!(env, fn is_ip: (CelString) -> CelBool, name = "isIP", id = "is_ip")?;
    cel::add_overload!(env, fn is_canonical: (CelString) -> Result<CelBool>, name = "ip.isCanonical",
        id = "ip_is_canonical")?;
    cel::add_overload!(env, fn ip_to_string: (Ip) -> CelString, name = "string", id = "ip_to_string")?;
    cel::add_member_overload!(env, fn family: (Ip) -> CelInt, id = "ip_family")?;
    cel::add_member_overload!(env, fn is_unspecified: (Ip) -> CelBool, id = "ip_is_unspecified")?;
    cel::add_member_overload!(env, fn is_loopback: (Ip) -> CelBool, id = "ip_is_loopback")?;
    cel::add_member_overload!(env, fn is_link_local_multicast: (Ip) -> CelBool, id = "ip_is_link_local_multicast")?;
    cel::add_member_overload!(env, fn is_link_local_unicast: (Ip) -> CelBool, id = "ip_is_link_local_unicast")?;
    cel::add_member_overload!(env, fn is_global_unicast: (Ip) -> CelBool, id = "ip_is_global_unicast")?;

    cel::add_overload!(env, fn cidr: (CelString) -> Result<Cidr>, id = "string_to_cidr")?;
    cel::add_overload!(env, fn is_cidr: (CelString) -> CelBool, name = "isCIDR", id = "is_cidr")?;
    cel::add_overload!(env, fn cidr_to_string: (Cidr) -> CelString, name = "string", id = "cidr_to_string")?;
    cel::add_member_overload!(env, fn contains_ip: (Cidr, Ip) -> CelBool, name = "containsIP",
        id = "cidr_contains_ip_ip")?;
    cel::add_member_overload!(env, fn contains_ip_string: (Cidr, CelString) -> Result<CelBool>, name = "containsIP",
        id = "cidr_contains_ip_string")?;
    cel::add_member_overload!(env, fn contains_cidr: (Cidr, Cidr) -> CelBool, name = "containsCIDR",
        id = "cidr_contains_cidr")?;
    cel::add_member_overload!(env, fn contains_cidr_string: (Cidr, CelString) -> Result<CelBool>,
        name = "containsCIDR", id = "cidr_contains_cidr_string")?;
    cel::add_member_overload!(env, fn cidr_ip: (Cidr) -> Ip, name = "ip", id = "cidr_ip")?;
    cel::add_member_overload!(env, fn masked: (Cidr) -> Cidr, id = "cidr_masked")?;
    cel::add_member_overload!(env, fn prefix_length: (Cidr) -> CelInt, id = "cidr_prefix_length")?;
    Ok(())
}

/// Go's `netip.ParseAddr`, refusing zones and IPv4-mapped IPv6 addresses.
fn parse_addr(raw: &str) -> Result<IpAddr, AddressError> {
    let unparsable = |why| AddressError::Address(raw.to_owned(), why);
    if let Some((addr, zone)) = raw.split_once('%') {
        // Go parses a zone on an IPv6 address only, and not an empty one.
        return match addr.parse::<Ipv6Addr>() {
            Ok(_) if zone.is_empty() => Err(unparsable("zone must be a non-empty string")),
            Ok(_) => Err(AddressError::Zone(raw.to_owned())),
            Err(_) => Err(unparsable("unable to parse IP")),
        };
    }
    let addr: IpAddr = raw.parse().map_err(|_| unparsable("unable to parse IP"))?;
    if is_4in6(&addr) {
        return Err(AddressError::Mapped(raw.to_owned()));
    }
    Ok(addr)
}

fn is_4in6(addr: &IpAddr) -> bool {
    matches!(addr, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

/// Go's `netip.ParsePrefix`, refusing IPv4-mapped IPv6 addresses.
fn parse_cidr(raw: &str) -> Result<Cidr, AddressError> {
    let invalid = |why: String| AddressError::Prefix(raw.to_owned(), why);
    let (addr, bits) = raw.rsplit_once('/').ok_or_else(|| invalid("no '/'".to_owned()))?;
    let addr: IpAddr = match addr.split_once('%') {
        Some((v6, _)) if v6.parse::<Ipv6Addr>().is_ok() => {
            return Err(invalid("IPv6 zones cannot be present in a prefix".to_owned()));
        }
        _ => addr.parse().map_err(|_| invalid(format!("ParseAddr({addr:?}): unable to parse IP")))?,
    };
    // Go refuses a sign or leading zeros, which `strconv.Atoi` would take.
    let bad_bits = || invalid(format!("bad bits after slash: {bits:?}"));
    if bits.len() > 1 && !bits.starts_with(|c: char| ('1'..='9').contains(&c)) {
        return Err(bad_bits());
    }
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_bits());
    }
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits
        .parse::<u8>()
        .ok()
        .filter(|b| *b <= max)
        .ok_or_else(|| invalid("prefix length out of range".to_owned()))?;
    if is_4in6(&addr) {
        return Err(AddressError::MappedPrefix(raw.to_owned()));
    }
    Ok(Cidr { addr, bits })
}

/// `addr` with all but its first `bits` bits cleared.
fn mask(addr: IpAddr, bits: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

impl Cidr {
    fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.addr.is_ipv4() && mask(addr, self.bits) == mask(self.addr, self.bits)
    }
}

fn ip(s: &CelString<'_>) -> Result<Ip, ExecutionError> {
    parse_addr(s.inner()).map(Ip).map_err(|e| failure("ip", e))
}

fn is_ip(s: &CelString<'_>) -> CelBool {
    CelBool::from(parse_addr(s.inner()).is_ok())
}

/// Whether the string is the address as Go formats it (RFC 5952 for IPv6).
fn is_canonical(s: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let addr = parse_addr(s.inner()).map_err(|e| failure("ip.isCanonical", e))?;
    Ok(CelBool::from(addr.to_string() == s.inner()))
}

fn ip_to_string(ip: &Ip) -> CelString<'static> {
    ip.0.to_string().into()
}

fn family(ip: &Ip) -> CelInt {
    CelInt::from(if ip.0.is_ipv4() { 4 } else { 6 })
}

fn is_unspecified(ip: &Ip) -> CelBool {
    CelBool::from(ip.0.is_unspecified())
}

fn is_loopback(ip: &Ip) -> CelBool {
    CelBool::from(ip.0.is_loopback())
}

/// 224.0.0.0/24 and ff02::/16 (any flags: Go masks with ff0f).
fn is_link_local_multicast(ip: &Ip) -> CelBool {
    CelBool::from(match ip.0 {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
    })
}

fn link_local_unicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.octets()[..2] == [169, 254],
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn is_link_local_unicast(ip: &Ip) -> CelBool {
    CelBool::from(link_local_unicast(ip.0))
}

/// Go's `Addr.IsGlobalUnicast`: neither unspecified, the IPv4 broadcast address,
/// loopback, multicast nor link-local unicast (private ranges are global unicast).
fn is_global_unicast(ip: &Ip) -> CelBool {
    let addr = ip.0;
    let broadcast = addr == IpAddr::V4(Ipv4Addr::BROADCAST);
    CelBool::from(
        !addr.is_unspecified()
            && !broadcast
            && !addr.is_loopback()
            && !addr.is_multicast()
            && !link_local_unicast(addr),
    )
}

fn cidr(s: &CelString<'_>) -> Result<Cidr, ExecutionError> {
    parse_cidr(s.inner()).map_err(|e| failure("cidr", e))
}

fn is_cidr(s: &CelString<'_>) -> CelBool {
    CelBool::from(parse_cidr(s.inner()).is_ok())
}

fn cidr_to_string(cidr: &Cidr) -> CelString<'static> {
    format!("{}/{}", cidr.addr, cidr.bits).into()
}

fn contains_ip(cidr: &Cidr, ip: &Ip) -> CelBool {
    CelBool::from(cidr.contains(ip.0))
}

fn contains_ip_string(cidr: &Cidr, s: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let addr = parse_addr(s.inner()).map_err(|e| failure("containsIP", e))?;
    Ok(CelBool::from(cidr.contains(addr)))
}

/// Whether every address of `other` is in `cidr`: as long a prefix or longer, the same
/// network under `cidr`'s mask (upstream's behaviour since kubernetes#130450).
fn contains_cidr(cidr: &Cidr, other: &Cidr) -> CelBool {
    CelBool::from(other.bits >= cidr.bits && cidr.contains(other.addr))
}

fn contains_cidr_string(cidr: &Cidr, s: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let other = parse_cidr(s.inner()).map_err(|e| failure("containsCIDR", e))?;
    Ok(contains_cidr(cidr, &other))
}

fn cidr_ip(cidr: &Cidr) -> Ip {
    Ip(cidr.addr)
}

fn masked(cidr: &Cidr) -> Cidr {
    Cidr { addr: mask(cidr.addr, cidr.bits), bits: cidr.bits }
}

fn prefix_length(cidr: &Cidr) -> CelInt {
    CelInt::from(i64::from(cidr.bits))
}
