//! The proxy's view of the node's network through rtnetlink: a subscription to
//! multicast groups (link or address changes) with a request handle on the same
//! socket, and dumps of every address and link of the calling thread's network
//! namespace.
//!
//! The watchers built on it ([`crate::node_addresses`], [`crate::pod_interfaces`])
//! treat an event only as a nudge and re-dump the whole state: a dump of a node's
//! addresses or links takes well under a millisecond, it cannot drift from the kernel
//! the way an incrementally patched copy can (a netlink socket that overflows drops
//! events silently), and a burst of events (a pod with two addresses) costs one dump.
//! They subscribe *before* dumping, so no change falls between the dump and the first
//! event.

use std::{net::IpAddr, time::Duration};

use futures::{StreamExt, TryStreamExt, channel::mpsc::UnboundedReceiver};
use rtnetlink::{
    Handle, MulticastGroup,
    packet_core::NetlinkMessage,
    packet_route::{RouteNetlinkMessage, address::AddressAttribute, link::LinkAttribute},
    sys::SocketAddr,
};

/// A netlink request or subscription failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("opening a NETLINK_ROUTE socket subscribed to {groups}: {source}")]
    Subscribe {
        groups: String,
        #[source]
        source: std::io::Error,
    },
    #[error("dumping {what} through netlink: {source}")]
    Dump {
        what: &'static str,
        #[source]
        source: rtnetlink::Error,
    },
}

type Messages = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// A NETLINK_ROUTE socket subscribed to some multicast groups, with its connection
/// task running on the current tokio runtime (in the caller's network namespace).
pub struct Subscription {
    handle: Handle,
    messages: Messages,
    groups: Vec<MulticastGroup>,
    connection: tokio::task::JoinHandle<()>,
}

impl Subscription {
    /// Subscribes to `groups` (e.g. `Ipv4Ifaddr`, `Link`).
    pub fn open(groups: &[MulticastGroup]) -> Result<Self, NetlinkError> {
        let (connection, handle, messages) =
            rtnetlink::new_multicast_connection(groups).map_err(|source| {
                NetlinkError::Subscribe {
                    groups: format!("{groups:?}"),
                    source,
                }
            })?;
        Ok(Self {
            handle,
            messages,
            groups: groups.to_vec(),
            connection: tokio::spawn(connection),
        })
    }

    /// The request handle (dumps go over the subscribed socket).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Waits for the next event, then takes every event already queued behind it
    /// (one dump answers them all). Returns `false` when the socket is gone; the
    /// subscription then reopens itself, waiting `backoff` first.
    pub async fn next_event(&mut self, backoff: Duration) -> bool {
        match self.messages.next().await {
            Some(_) => {
                while self.messages.try_recv().is_ok() {}
                true
            }
            None => {
                tracing::warn!(groups = ?self.groups, "netlink subscription closed; reopening");
                tokio::time::sleep(backoff).await;
                match Self::open(&self.groups) {
                    Ok(fresh) => *self = fresh,
                    Err(error) => tracing::error!(%error, "reopening the netlink subscription"),
                }
                false
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// One address of one interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceAddress {
    pub index: u32,
    pub ip: IpAddr,
}

/// Every address of every interface (IFA_LOCAL where there is one: on a
/// point-to-point link IFA_ADDRESS is the peer's).
pub async fn dump_addresses(handle: &Handle) -> Result<Vec<InterfaceAddress>, NetlinkError> {
    let err = |source| NetlinkError::Dump {
        what: "addresses",
        source,
    };
    let mut stream = handle.address().get().execute();
    let mut out = Vec::new();
    while let Some(message) = stream.try_next().await.map_err(err)? {
        let (mut local, mut address) = (None, None);
        for attribute in &message.attributes {
            match attribute {
                AddressAttribute::Local(ip) => local = Some(*ip),
                AddressAttribute::Address(ip) => address = Some(*ip),
                _ => {}
            }
        }
        if let Some(ip) = local.or(address) {
            out.push(InterfaceAddress {
                index: message.header.index,
                ip,
            });
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// One network interface: index and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interface {
    pub index: u32,
    pub name: String,
}

/// Every interface of the namespace.
pub async fn dump_links(handle: &Handle) -> Result<Vec<Interface>, NetlinkError> {
    let err = |source| NetlinkError::Dump {
        what: "links",
        source,
    };
    let mut stream = handle.link().get().execute();
    let mut out = Vec::new();
    while let Some(message) = stream.try_next().await.map_err(err)? {
        let name = message.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        });
        if let Some(name) = name {
            out.push(Interface {
                index: message.header.index,
                name,
            });
        }
    }
    out.sort();
    Ok(out)
}
