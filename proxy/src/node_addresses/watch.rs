//! Following the node's addresses through netlink (`RTNLGRP_IPV4_IFADDR`,
//! `RTNLGRP_IPV6_IFADDR`): every address event, and a periodic check, re-reads the
//! addresses, and a selection that differs from the last one is recorded for the
//! next sync.

use std::time::Duration;

use rtnetlink::MulticastGroup;

use super::{AddressPolicy, NodeAddresses};
use crate::{
    netlink::{self, NetlinkError, Subscription},
    source::TrackerHandle,
};

/// How often the addresses are re-read without an event (repairs a lost event).
const RECHECK: Duration = Duration::from_secs(30);
/// Wait before reopening a closed netlink socket.
const REOPEN_BACKOFF: Duration = Duration::from_secs(1);

/// Watches this network namespace's addresses.
pub struct AddressWatcher {
    subscription: Subscription,
    policy: AddressPolicy,
    current: NodeAddresses,
}

impl AddressWatcher {
    /// Subscribes to address events, then reads the current addresses (in that order,
    /// so no change is missed). Runs in the calling thread's network namespace.
    pub async fn start(policy: AddressPolicy) -> Result<Self, NetlinkError> {
        let subscription =
            Subscription::open(&[MulticastGroup::Ipv4Ifaddr, MulticastGroup::Ipv6Ifaddr])?;
        let found = netlink::dump_addresses(subscription.handle()).await?;
        let current = policy.select(&found, None);
        Ok(Self {
            subscription,
            policy,
            current,
        })
    }

    /// The selection as of the last read.
    pub fn current(&self) -> &NodeAddresses {
        &self.current
    }

    /// Records every change of the selection into `handle` until the task is dropped.
    pub async fn run(mut self, handle: TrackerHandle) {
        loop {
            tokio::select! {
                _ = self.subscription.next_event(REOPEN_BACKOFF) => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
            let found = match netlink::dump_addresses(self.subscription.handle()).await {
                Ok(found) => found,
                Err(error) => {
                    tracing::warn!(%error, "reading the node's addresses; retrying");
                    tokio::time::sleep(REOPEN_BACKOFF).await;
                    continue;
                }
            };
            let next = self.policy.select(&found, Some(&self.current));
            if next != self.current {
                tracing::info!(
                    node_port = ?next.node_port,
                    snat_v4 = ?next.snat_v4,
                    snat_v6 = ?next.snat_v6,
                    "node addresses changed"
                );
                self.current = next.clone();
                handle.set_node_addresses(next);
            }
        }
    }
}
