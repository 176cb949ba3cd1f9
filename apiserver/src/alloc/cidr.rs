//! IP ranges (`10.96.0.0/12`, `fd00:10:96::/112`) as allocation pools.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One CIDR block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub base: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = text.split_once('/').ok_or_else(|| format!("invalid CIDR address: {text}"))?;
        let base: IpAddr = addr.parse().map_err(|_| format!("invalid CIDR address: {text}"))?;
        let prefix: u8 = prefix.parse().map_err(|_| format!("invalid CIDR address: {text}"))?;
        let bits = if base.is_ipv4() { 32 } else { 128 };
        if prefix > bits {
            return Err(format!("invalid CIDR address: {text}"));
        }
        let cidr = Cidr { base, prefix };
        Ok(Cidr { base: cidr.from_offset(0), prefix })
    }

    pub fn is_ipv4(&self) -> bool {
        self.base.is_ipv4()
    }

    /// `IPv4` or `IPv6`, as Service `ipFamilies` name them.
    pub fn family(&self) -> &'static str {
        if self.is_ipv4() { "IPv4" } else { "IPv6" }
    }

    fn host_bits(&self) -> u32 {
        (if self.is_ipv4() { 32 } else { 128 }) - u32::from(self.prefix)
    }

    /// Addresses usable for services: all but the network address (and the broadcast
    /// address for IPv4), capped so that bitmaps stay small for huge IPv6 ranges.
    pub fn usable(&self) -> u128 {
        let bits = self.host_bits().min(20);
        let total = 1u128 << bits;
        if self.is_ipv4() && bits == self.host_bits() { total.saturating_sub(2) } else { total - 1 }
    }

    fn as_u128(ip: IpAddr) -> u128 {
        match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        }
    }

    fn mask(&self) -> u128 {
        let bits = self.host_bits();
        if bits >= 128 { u128::MAX } else { (1u128 << bits) - 1 }
    }

    /// The address `offset` after the network address.
    fn from_offset(&self, offset: u128) -> IpAddr {
        let value = (Self::as_u128(self.base) & !self.mask()) + offset;
        if self.is_ipv4() {
            IpAddr::V4(Ipv4Addr::from(value as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(value))
        }
    }

    /// The `index`th usable address (0-based).
    pub fn nth(&self, index: u128) -> IpAddr {
        self.from_offset(index + 1)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_ipv4()
            && (Self::as_u128(ip) & !self.mask()) == (Self::as_u128(self.base) & !self.mask())
    }

    /// Whether `ip` is inside and not the network or broadcast address.
    pub fn is_usable(&self, ip: IpAddr) -> bool {
        if !self.contains(ip) {
            return false;
        }
        let offset = Self::as_u128(ip) & self.mask();
        offset != 0 && !(self.is_ipv4() && offset == self.mask())
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_indexes() {
        let c = Cidr::parse("10.96.0.5/12").unwrap();
        assert_eq!(c.to_string(), "10.96.0.0/12");
        assert_eq!(c.nth(0), "10.96.0.1".parse::<IpAddr>().unwrap());
        assert!(c.is_usable("10.111.255.254".parse().unwrap()));
        assert!(!c.is_usable("10.111.255.255".parse().unwrap()));
        assert!(!c.contains("10.112.0.1".parse().unwrap()));
        assert_eq!(c.usable(), (1 << 20) - 2);
        let v6 = Cidr::parse("fd00::/108").unwrap();
        assert_eq!(v6.family(), "IPv6");
        assert!(v6.contains("fd00::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
    }
}
