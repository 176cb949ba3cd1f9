//! Who owns a frontend two Services claim.
//!
//! Two Services may list the same externalIP and port, share a load-balancer ingress
//! IP, or (in the file source) the same NodePort. A frontend's map entries can serve
//! only one of them, so [`Claims`] picks one owner, independent of the order in which
//! the Services were seen: the Service with the oldest `creationTimestamp` (a missing
//! one counts as newest), ties broken by `namespace/name`. The others' claims are
//! withheld (logged once, counted) until the owner lets go; then the most senior
//! waiting claimant takes over. A Service whose ownership changed while another was
//! being programmed is *requeued*: the sync programs it again, in the same sync, so it
//! gains or drops the frontend's entries.

use std::{
    collections::{BTreeSet, hash_map::Entry},
    fmt,
    net::IpAddr,
};

use rustc_hash::FxHashMap as HashMap;
use waggle_ebpf_common::lb::{SCOPE_EXTERNAL, ServiceKeyV4, ServiceKeyV6};

use crate::{
    model::{Created, Protocol, ServiceName, port_from_map, v4_from_map},
    program::MasterKey,
};

/// A frontend: address, port and protocol. Both scopes of a frontend (the
/// `externalTrafficPolicy: Local` split) belong to the same Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frontend(MasterKey);

impl Frontend {
    pub fn of(key: MasterKey) -> Self {
        Self(match key {
            MasterKey::V4(k) => MasterKey::V4(ServiceKeyV4 {
                scope: SCOPE_EXTERNAL,
                ..k
            }),
            MasterKey::V6(k) => MasterKey::V6(ServiceKeyV6 {
                scope: SCOPE_EXTERNAL,
                ..k
            }),
        })
    }
}

impl fmt::Display for Frontend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ip, port, protocol) = match self.0 {
            MasterKey::V4(k) => (IpAddr::V4(v4_from_map(k.address)), k.port, k.protocol),
            MasterKey::V6(k) => (IpAddr::V6(k.address.into()), k.port, k.protocol),
        };
        let port = port_from_map(port);
        match ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{port}")?,
            IpAddr::V6(ip) => write!(f, "[{ip}]:{port}")?,
        }
        match Protocol::from_number(protocol) {
            Some(p) => write!(f, "/{p}"),
            None => write!(f, "/proto{protocol}"),
        }
    }
}

/// The outcome of one claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The claimant owns the frontend: program it.
    pub owned: bool,
    /// The previous owner lost the frontend: its entries for it must go now.
    pub evict: Option<ServiceName>,
}

/// Owners of every programmed frontend and the claims withheld from the others.
#[derive(Debug, Default)]
pub struct Claims {
    owners: HashMap<Frontend, ServiceName>,
    /// Claimants waiting for a frontend someone else owns (only contested ones).
    withheld: HashMap<Frontend, Vec<ServiceName>>,
    /// Services to program again because a frontend was taken from or given to them.
    requeued: BTreeSet<ServiceName>,
}

impl Claims {
    pub fn reserve(&mut self, frontends: usize) {
        self.owners
            .reserve(frontends.saturating_sub(self.owners.len()));
    }

    pub fn owner(&self, frontend: Frontend) -> Option<&ServiceName> {
        self.owners.get(&frontend)
    }

    /// Whether `name` owns `frontend`.
    pub fn owns(&self, frontend: Frontend, name: &ServiceName) -> bool {
        self.owners.get(&frontend) == Some(name)
    }

    /// Contested frontends: those withheld from at least one claimant.
    pub fn contested(&self) -> usize {
        self.withheld.len()
    }

    /// Records that `name` (created `created`) claims `frontend`; `age` tells when the
    /// other claimants were created.
    pub fn claim(
        &mut self,
        frontend: Frontend,
        name: &ServiceName,
        created: Created,
        age: impl Fn(&ServiceName) -> Created,
    ) -> Claim {
        let owner = match self.owners.entry(frontend) {
            Entry::Vacant(vacant) => {
                vacant.insert(name.clone());
                return Claim {
                    owned: true,
                    evict: None,
                };
            }
            // The common case: an uncontested frontend claimed again by its owner.
            Entry::Occupied(owner)
                if owner.get() == name && !self.withheld.contains_key(&frontend) =>
            {
                return Claim {
                    owned: true,
                    evict: None,
                };
            }
            Entry::Occupied(owner) => owner.get().clone(),
        };
        let waiting = self.withheld.remove(&frontend).unwrap_or_default();
        let mut claimants = waiting.clone();
        claimants.push(owner.clone());
        if !claimants.contains(name) {
            claimants.push(name.clone());
        }
        let rank = |n: &ServiceName| (if n == name { created } else { age(n) }, n.clone());
        let best = claimants
            .iter()
            .min_by_key(|n| rank(n))
            .cloned()
            .expect("at least the owner claims it");
        claimants.retain(|n| *n != best);
        for loser in claimants.iter().filter(|n| !waiting.contains(n)) {
            tracing::warn!(
                %frontend,
                owner = %best,
                withheld_from = %loser,
                "two Services claim the same frontend: it stays with the senior one (oldest \
                 creationTimestamp, then namespace/name), the other's claim is withheld"
            );
        }
        if best != *name && best != owner {
            self.requeued.insert(best.clone()); // it was waiting: program it now
        }
        if owner != best && owner != *name {
            self.requeued.insert(owner.clone()); // it lost the frontend
        }
        if !claimants.is_empty() {
            self.withheld.insert(frontend, claimants);
        }
        self.owners.insert(frontend, best.clone());
        Claim {
            owned: best == *name,
            evict: (owner != best).then_some(owner),
        }
    }

    /// `name` no longer claims `frontend`. If it owned it, the most senior waiting
    /// claimant (by `age`, then name) takes over and is requeued.
    pub fn release(
        &mut self,
        frontend: Frontend,
        name: &ServiceName,
        age: impl Fn(&ServiceName) -> Created,
    ) {
        if self.owns(frontend, name) {
            let Some(mut waiting) = self.withheld.remove(&frontend) else {
                self.owners.remove(&frontend);
                return;
            };
            let (next, _) = waiting
                .iter()
                .enumerate()
                .min_by_key(|(_, n)| (age(n), (*n).clone()))
                .expect("withheld lists are never empty");
            let next = waiting.swap_remove(next);
            tracing::info!(%frontend, from = %name, to = %next, "frontend handed over");
            self.requeued.insert(next.clone());
            self.owners.insert(frontend, next);
            if !waiting.is_empty() {
                self.withheld.insert(frontend, waiting);
            }
        } else if let Some(waiting) = self.withheld.get_mut(&frontend) {
            waiting.retain(|n| n != name);
            if waiting.is_empty() {
                self.withheld.remove(&frontend);
            }
        }
    }

    /// `name` is being programmed now: it need not be programmed again.
    pub fn unrequeue(&mut self, name: &ServiceName) {
        if !self.requeued.is_empty() {
            self.requeued.remove(name);
        }
    }

    /// The services to program again, in name order.
    pub fn take_requeued(&mut self) -> Vec<ServiceName> {
        std::mem::take(&mut self.requeued).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::model::v4_to_map;

    fn frontend(scope: u8) -> Frontend {
        Frontend::of(MasterKey::V4(ServiceKeyV4 {
            address: v4_to_map(Ipv4Addr::new(198, 51, 100, 7)),
            port: 443u16.to_be(),
            protocol: Protocol::Tcp.number(),
            scope,
        }))
    }

    fn ages(n: &ServiceName) -> Created {
        match &*n.name {
            "old" => Created::from_nanos(1),
            "mid" => Created::from_nanos(2),
            _ => Created::UNKNOWN,
        }
    }

    fn name(n: &str) -> ServiceName {
        ServiceName::new("ns", n)
    }

    #[test]
    fn both_scopes_are_one_frontend_and_print_without_scope() {
        assert_eq!(frontend(0), frontend(1));
        assert_eq!(frontend(1).to_string(), "198.51.100.7:443/TCP");
    }

    #[test]
    fn the_oldest_claimant_owns_whatever_the_order() {
        let f = frontend(SCOPE_EXTERNAL);
        for order in [
            ["new", "old", "mid"],
            ["old", "mid", "new"],
            ["mid", "new", "old"],
        ] {
            let mut claims = Claims::default();
            for n in order {
                claims.claim(f, &name(n), ages(&name(n)), ages);
            }
            assert_eq!(claims.owner(f), Some(&name("old")), "order {order:?}");
            assert_eq!(claims.contested(), 1);
            // Requeued: whoever lost the frontend after owning it.
            let requeued = claims.take_requeued();
            assert!(!requeued.contains(&name("old")), "{requeued:?}");
        }
    }

    #[test]
    fn missing_timestamps_lose_to_real_ones_then_go_by_name() {
        let f = frontend(SCOPE_EXTERNAL);
        let mut claims = Claims::default();
        let b = name("b");
        let a = name("a");
        assert!(
            claims
                .claim(f, &b, Created::UNKNOWN, |_| Created::UNKNOWN)
                .owned
        );
        let claim = claims.claim(f, &a, Created::UNKNOWN, |_| Created::UNKNOWN);
        assert_eq!(
            claim,
            Claim {
                owned: true,
                evict: Some(b.clone())
            }
        );
        assert_eq!(claims.take_requeued(), std::slice::from_ref(&b));
        let newest = name("c");
        assert!(
            !claims
                .claim(f, &newest, Created::UNKNOWN, |_| Created::UNKNOWN)
                .owned
        );
        let dated = name("z");
        let claim = claims.claim(f, &dated, Created::from_nanos(0), |_| Created::UNKNOWN);
        assert!(claim.owned && claim.evict == Some(a));
    }

    #[test]
    fn release_hands_over_to_the_most_senior_waiting_claimant() {
        let f = frontend(SCOPE_EXTERNAL);
        let mut claims = Claims::default();
        for n in ["old", "new", "mid"] {
            claims.claim(f, &name(n), ages(&name(n)), ages);
        }
        claims.take_requeued();
        claims.release(f, &name("old"), ages);
        assert_eq!(claims.owner(f), Some(&name("mid")));
        assert_eq!(claims.take_requeued(), [name("mid")]);
        assert_eq!(claims.contested(), 1);
        // A waiting claimant letting go only leaves the queue.
        claims.release(f, &name("new"), ages);
        assert_eq!(claims.contested(), 0);
        assert_eq!(claims.owner(f), Some(&name("mid")));
        assert!(claims.take_requeued().is_empty());
        claims.release(f, &name("mid"), ages);
        assert_eq!(claims.owner(f), None);
    }
}
