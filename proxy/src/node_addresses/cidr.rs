//! An IP prefix (`10.0.0.0/8`, `fd00::/64`), as `--nodeport-addresses` takes them.

use std::{fmt, net::IpAddr, str::FromStr};

/// A network prefix: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    network: IpAddr,
    len: u8,
}

/// A CIDR that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{input}` is not a CIDR (expected e.g. 10.0.0.0/8 or fd00::/64): {reason}")]
pub struct CidrError {
    input: String,
    reason: &'static str,
}

impl Cidr {
    /// The prefix of `ip` with `len` bits; `None` if `len` is too long for the family.
    pub fn new(ip: IpAddr, len: u8) -> Option<Self> {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (len <= max).then_some(Self { network: ip, len })
    }

    /// Whether `ip` lies inside the prefix (same family, same leading `len` bits).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| CidrError {
            input: input.to_owned(),
            reason,
        };
        let (ip, len) = input
            .split_once('/')
            .ok_or_else(|| err("no `/<prefix length>`"))?;
        let ip: IpAddr = ip.parse().map_err(|_| err("bad address"))?;
        let len: u8 = len.parse().map_err(|_| err("bad prefix length"))?;
        Self::new(ip, len).ok_or_else(|| err("prefix length longer than the address"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn contains_by_family_and_prefix() {
        let net: Cidr = "10.250.0.0/24".parse().unwrap();
        assert!(net.contains(ip("10.250.0.77")));
        assert!(!net.contains(ip("10.250.1.1")));
        assert!(!net.contains(ip("fd00:250::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("192.0.2.1")));
        let v6: Cidr = "fd00:250::/64".parse().unwrap();
        assert!(v6.contains(ip("fd00:250::2")));
        assert!(!v6.contains(ip("fd00:251::2")));
        let host: Cidr = "fd00::1/128".parse().unwrap();
        assert!(host.contains(ip("fd00::1")) && !host.contains(ip("fd00::2")));
        assert_eq!(net.to_string(), "10.250.0.0/24");
    }

    #[test]
    fn bad_input_says_why() {
        for (input, reason) in [
            ("10.0.0.0", "no `/<prefix length>`"),
            ("10.0.0/8", "bad address"),
            ("10.0.0.0/x", "bad prefix length"),
            ("10.0.0.0/33", "prefix length longer than the address"),
        ] {
            let error = input.parse::<Cidr>().unwrap_err();
            assert_eq!(error.reason, reason, "{input}");
            assert!(error.to_string().contains(input));
        }
    }
}
