//! Maglev lookup tables for the per-packet path (Eisenbud et al., NSDI 2016, §3.4).
//!
//! [`build_table`] is a pure function from a service's backends to the
//! [`MaglevTable`] the kernel reads (map `MAGLEV`, keyed by `rev_nat_index`): the
//! kernel hashes a packet's 5-tuple to an index of the table and forwards to the
//! backend id found there. Every node builds the same table from the same backends,
//! so any node sends a given flow to the same backend, and removing one of `N`
//! backends moves only about `1/N` of the flows.
//!
//! Each backend has a permutation of the table's slots derived from two hashes of a
//! stable identity ("ip:port"): `offset = h1 % M`, `skip = h2 % (M - 1) + 1`, slot
//! `j` of the permutation is `(offset + j * skip) % M` (`M` is prime, so this visits
//! every slot). Backends take turns claiming their next unclaimed preferred slot until
//! the table is full; a backend of weight `w` takes `w` claims per round.

use waggle_ebpf_common::lb::{MAGLEV_TABLE_SIZE, MaglevTable};

/// One backend as the table builder sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaglevBackend {
    /// The id stored in the table (a key of the `BACKENDS` map; never 0).
    pub id: u32,
    /// A stable identity, the same on every node, e.g. "10.244.1.5:8080".
    pub identity: String,
    /// Relative weight; a backend of weight 0 gets no slot.
    pub weight: u16,
}

impl MaglevBackend {
    /// A backend of weight 1.
    pub fn new(id: u32, identity: impl Into<String>) -> Self {
        Self {
            id,
            identity: identity.into(),
            weight: 1,
        }
    }
}

/// Builds the lookup table. With no backend of positive weight every slot is 0,
/// which the kernel treats as "no backend" (drop reason `DROP_MAGLEV_EMPTY`).
///
/// The result does not depend on the order of `backends` (they are sorted by
/// identity first), so every node computes the same table.
pub fn build_table(backends: &[MaglevBackend]) -> MaglevTable {
    const M: usize = MAGLEV_TABLE_SIZE;
    let mut table = MaglevTable {
        backend_ids: [0; M],
    };
    let mut members: Vec<&MaglevBackend> = backends.iter().filter(|b| b.weight > 0).collect();
    if members.is_empty() {
        return table;
    }
    members.sort_by(|a, b| a.identity.cmp(&b.identity).then(a.id.cmp(&b.id)));

    // (offset, skip, next permutation index) per backend.
    let mut cursors: Vec<(usize, usize, usize)> = members
        .iter()
        .map(|b| {
            let bytes = b.identity.as_bytes();
            let offset = (fnv1a(bytes, OFFSET_SEED) % M as u64) as usize;
            let skip = (fnv1a(bytes, SKIP_SEED) % (M as u64 - 1)) as usize + 1;
            (offset, skip, 0)
        })
        .collect();

    let mut claimed = [false; M];
    let mut filled = 0;
    'rounds: loop {
        for (member, cursor) in members.iter().zip(cursors.iter_mut()) {
            for _ in 0..member.weight {
                // Each backend's permutation visits every slot once, so it always finds
                // an unclaimed one while the table is not full.
                let slot = loop {
                    let (offset, skip, next) = *cursor;
                    let candidate = (offset + next * skip) % M;
                    cursor.2 += 1;
                    if !claimed[candidate] {
                        break candidate;
                    }
                };
                claimed[slot] = true;
                table.backend_ids[slot] = member.id;
                filled += 1;
                if filled == M {
                    break 'rounds;
                }
            }
        }
    }
    table
}

const OFFSET_SEED: u64 = 0xcbf2_9ce4_8422_2325;
const SKIP_SEED: u64 = 0x6c62_272e_07bb_0142;

/// FNV-1a (64-bit) from a chosen basis: stable across processes, platforms and
/// releases, unlike `std`'s randomly keyed hasher.
fn fnv1a(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn backends(n: u32) -> Vec<MaglevBackend> {
        (1..=n)
            .map(|i| MaglevBackend::new(i, format!("10.244.{}.{}:8080", i / 200, i % 200 + 2)))
            .collect()
    }

    fn shares(table: &MaglevTable) -> HashMap<u32, usize> {
        let mut counts = HashMap::new();
        for id in table.backend_ids {
            *counts.entry(id).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn table_size_is_prime() {
        let m = MAGLEV_TABLE_SIZE;
        assert!(
            m > 2
                && (2..m)
                    .take_while(|d| d * d <= m)
                    .all(|d| !m.is_multiple_of(d))
        );
    }

    #[test]
    fn empty_input_gives_an_empty_table() {
        assert!(build_table(&[]).backend_ids.iter().all(|&id| id == 0));
        let zero = [MaglevBackend {
            weight: 0,
            ..MaglevBackend::new(7, "a:1")
        }];
        assert!(build_table(&zero).backend_ids.iter().all(|&id| id == 0));
    }

    #[test]
    fn table_is_full_and_balanced() {
        for n in [1u32, 2, 3, 7, 10, 50] {
            let table = build_table(&backends(n));
            let counts = shares(&table);
            assert!(!counts.contains_key(&0), "n={n}: an empty slot");
            assert_eq!(counts.len(), n as usize, "n={n}: every backend has slots");
            // Round-robin claiming gives each backend floor(M/N) or ceil(M/N) slots.
            let fair = MAGLEV_TABLE_SIZE / n as usize;
            for (id, count) in counts {
                assert!(
                    count == fair || count == fair + 1,
                    "n={n}: backend {id} has {count}, fair {fair}"
                );
            }
        }
    }

    #[test]
    fn weights_scale_shares() {
        let mut list = backends(2);
        list[1].weight = 3;
        let counts = shares(&build_table(&list));
        let (light, heavy) = (counts[&1] as f64, counts[&2] as f64);
        assert!(
            (heavy / light - 3.0).abs() < 0.05,
            "shares {light} and {heavy}"
        );
    }

    #[test]
    fn input_order_does_not_matter() {
        let list = backends(9);
        let mut reversed = list.clone();
        reversed.reverse();
        assert_eq!(build_table(&list), build_table(&reversed));
    }

    #[test]
    fn removing_one_backend_moves_about_one_nth() {
        // With M = 16363 the paper's M >= 100 N holds for every N here, and removing any
        // one backend moves at most 1.2x the ideal M/N slots (its own share plus a
        // little churn among the others); a mod-N hash would move ~(N-1)/N of them.
        for n in 2u32..=20 {
            let all = backends(n);
            let before = build_table(&all);
            let ideal = MAGLEV_TABLE_SIZE as f64 / f64::from(n);
            for removed in all.iter().map(|b| b.id) {
                let rest: Vec<_> = all.iter().filter(|b| b.id != removed).cloned().collect();
                let after = build_table(&rest);
                assert!(after.backend_ids.iter().all(|&id| id != removed && id != 0));
                let moved = before
                    .backend_ids
                    .iter()
                    .zip(after.backend_ids.iter())
                    .filter(|(b, a)| b != a)
                    .count();
                assert!(
                    moved as f64 <= ideal * 1.2,
                    "n={n}: removing backend {removed} moved {moved} slots, ideal {ideal:.0}"
                );
            }
        }
    }
}
