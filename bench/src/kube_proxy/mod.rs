//! kube-proxy's rule layouts, generated for a set of services so that the baseline
//! columns of the benchmark walk exactly the chains kube-proxy would install.
//!
//! - [`iptables`]: `KUBE-SERVICES` → `KUBE-SVC-*` (one `statistic --mode random`
//!   rule per endpoint) → `KUBE-SEP-*` (`KUBE-MARK-MASQ` for hairpin, `DNAT`), the
//!   cluster-CIDR masquerade check, `KUBE-NODEPORTS` after an `addrtype LOCAL` match
//!   at the end of `KUBE-SERVICES`, `KUBE-POSTROUTING` with `MASQUERADE --random-fully`.
//! - [`nftables`]: table `ip kube-proxy` with the `service-ips` verdict map keyed by
//!   `daddr . l4proto . dport`, `numgen random mod N` endpoint choice, the
//!   `nodeport-ips` set and `service-nodeports` map, `masquerade fully-random`.

pub mod iptables;
pub mod nftables;

/// A chain-name suffix as kube-proxy makes them: 16 base32 characters of a hash of
/// the service port name and protocol (kube-proxy uses SHA-256; any good hash gives
/// the same chain layout and name lengths).
pub fn chain_hash(parts: &[&str]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let fnv = |seed: u64| {
        parts.iter().flat_map(|p| p.bytes().chain([0])).fold(seed, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let bits = (u128::from(fnv(0xcbf2_9ce4_8422_2325)) << 64) | u128::from(fnv(0x84222325_cbf29ce4));
    (0..16).map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::chain_hash;

    #[test]
    fn chain_hash_is_stable_distinct_and_16_base32_chars() {
        let a = chain_hash(&["default/nginx:http", "tcp"]);
        assert_eq!(a, chain_hash(&["default/nginx:http", "tcp"]));
        assert_ne!(a, chain_hash(&["default/nginx:http", "udp"]));
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
    }
}
