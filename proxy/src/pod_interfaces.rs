//! The per-packet fallback on pods' host-side veths (`tc_pod_egress`), for pods whose
//! sockets socket LB does not see (socket LB turned off for them, or a cgroup outside
//! the proxy's): it DNATs their service traffic on its way out of the pod and
//! translates local backends' replies back.
//!
//! `--per-packet-interfaces <glob>` names the interfaces (`veth*`, `cali*`, `wgp*`;
//! `*` and `?` wildcards). [`PodInterfaces`] attaches the program to each matching
//! interface of the node's network namespace, follows links appearing and vanishing
//! through netlink (`RTNLGRP_LINK`), and pins every attachment under
//! `<pin dir>/links/tc_pod_egress@<interface>`, so a restarted daemon keeps the
//! fallback in place (and swaps its program in atomically). An interface that goes
//! away loses its pin; so does one that no longer matches when the daemon starts.
//! The node's uplink never gets the pod program.
//!
//! Needs TCX links (Linux 6.6) to pin tc attachments.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use rtnetlink::MulticastGroup;
use waggle_datapath::{
    Datapath, DatapathError, nodeport::PerPacketProgram, pod, socket_lb::AttachOutcome,
};
use waggle_ebpf_common::maps::LINKS_DIR;

use crate::netlink::{self, Interface, NetlinkError, Subscription};

/// How often links are re-read without an event (retries failed attachments).
const RECHECK: Duration = Duration::from_secs(10);
const REOPEN_BACKOFF: Duration = Duration::from_secs(1);
const PROGRAM: PerPacketProgram = PerPacketProgram::PodEgress;

/// Attaches the per-packet fallback to the pod interface `interface`, pinned (at
/// `<pin dir>/links/tc_pod_egress@<interface>`). The one place that chooses the
/// data-path call.
// DatapathError is large by design (aya's errors; see waggle-datapath), and cold here.
#[allow(clippy::result_large_err)]
fn attach_fallback(
    datapath: &mut Datapath,
    interface: &str,
) -> Result<AttachOutcome, DatapathError> {
    datapath
        .attach_pod_egress_pinned(interface)
        .map(|(_, outcome)| outcome)
}

/// Detaches the fallback from `interface` (removes its pin; a missing pin is fine).
#[allow(clippy::result_large_err)]
fn detach_fallback(pin_dir: &Path, interface: &str) -> Result<(), DatapathError> {
    pod::detach_pod_egress_pinned(pin_dir, interface)
}

/// An interface-name pattern: `*` matches any run of characters, `?` one character.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfacePattern(String);

/// A pattern that cannot name an interface.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an interface pattern (expected a name with * or ? wildcards, e.g. veth*)")]
pub struct PatternError(String);

impl FromStr for InterfacePattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_graphic() && c != '/' && c != '@');
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(PatternError(s.to_owned()))
        }
    }
}

impl fmt::Display for InterfacePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl InterfacePattern {
    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        glob(self.0.as_bytes(), name.as_bytes())
    }
}

fn glob(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative wildcard match with one backtrack point (the last `*`).
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Which interfaces get the fallback.
#[derive(Clone, Debug)]
pub struct PodInterfaceConfig {
    pub patterns: Vec<InterfacePattern>,
    /// The node's uplink, never a pod interface.
    pub uplink: Option<String>,
}

impl PodInterfaceConfig {
    fn wants(&self, name: &str) -> bool {
        self.uplink.as_deref() != Some(name) && self.patterns.iter().any(|p| p.matches(name))
    }
}

/// The fallback attached to every matching interface, kept in step with the links.
pub struct PodInterfaces {
    config: PodInterfaceConfig,
    datapath: Datapath,
    pin_dir: PathBuf,
    subscription: Subscription,
    /// Attached interfaces: name → interface index.
    attached: BTreeMap<String, u32>,
}

/// The watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum PodInterfaceError {
    #[error("the per-packet fallback needs a data path loaded from a pin directory")]
    NotPinned,
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
}

impl PodInterfaces {
    /// Subscribes to link events, removes pins of interfaces that are gone or no
    /// longer match, and attaches to every matching interface. Runs in the calling
    /// thread's network namespace. Attach failures of single interfaces are logged
    /// and retried; they do not stop the daemon.
    pub async fn start(
        config: PodInterfaceConfig,
        datapath: Datapath,
    ) -> Result<Self, PodInterfaceError> {
        let pin_dir = datapath
            .pin_dir()
            .ok_or(PodInterfaceError::NotPinned)?
            .to_owned();
        let subscription = Subscription::open(&[MulticastGroup::Link])?;
        let links = netlink::dump_links(subscription.handle()).await?;
        let mut this = Self {
            config,
            datapath,
            pin_dir,
            subscription,
            attached: BTreeMap::new(),
        };
        this.remove_stale_pins(&links);
        this.reconcile(&links);
        Ok(this)
    }

    /// Names of the interfaces the fallback is attached to.
    pub fn attached(&self) -> impl Iterator<Item = &str> {
        self.attached.keys().map(String::as_str)
    }

    /// Follows link changes until the task is dropped (pins stay).
    pub async fn run(mut self) {
        loop {
            tokio::select! {
                _ = self.subscription.next_event(REOPEN_BACKOFF) => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
            match netlink::dump_links(self.subscription.handle()).await {
                Ok(links) => self.reconcile(&links),
                Err(error) => tracing::warn!(%error, "reading the node's links; retrying"),
            }
        }
    }

    /// Attaches to new (or re-created) matching interfaces, detaches from vanished ones.
    fn reconcile(&mut self, links: &[Interface]) {
        let wanted: BTreeMap<&str, u32> = links
            .iter()
            .filter(|link| self.config.wants(&link.name))
            .map(|link| (link.name.as_str(), link.index))
            .collect();
        let gone: Vec<String> = self
            .attached
            .keys()
            .filter(|name| !wanted.contains_key(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.attached.remove(&name);
            match detach_fallback(&self.pin_dir, &name) {
                Ok(()) => tracing::info!(interface = name, "pod interface gone: fallback detached"),
                Err(error) => tracing::warn!(%error, interface = name, "detaching the fallback"),
            }
        }
        for (name, index) in wanted {
            if self.attached.get(name) == Some(&index) {
                continue;
            }
            match attach_fallback(&mut self.datapath, name) {
                Ok(outcome) => {
                    tracing::info!(
                        interface = name,
                        ?outcome,
                        program = PROGRAM.name(),
                        "per-packet fallback attached"
                    );
                    self.attached.insert(name.to_owned(), index);
                }
                // The interface can vanish between the dump and the attach; the next
                // event or check settles it.
                Err(error) => {
                    tracing::warn!(%error, interface = name, "attaching the per-packet fallback")
                }
            }
        }
    }

    /// Removes pins of this program whose interface is gone or no longer wanted.
    fn remove_stale_pins(&self, links: &[Interface]) {
        let prefix = format!("{}@", PROGRAM.name());
        let Ok(entries) = std::fs::read_dir(self.pin_dir.join(LINKS_DIR)) else {
            return; // no links pinned yet
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
                continue;
            };
            let present = links.iter().any(|link| link.name == name);
            if !present || !self.config.wants(name) {
                match detach_fallback(&self.pin_dir, name) {
                    Ok(()) => tracing::info!(interface = name, "removed a stale fallback pin"),
                    Err(error) => tracing::warn!(%error, interface = name, "removing a stale pin"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> InterfacePattern {
        s.parse().unwrap()
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(pattern("veth*").matches("veth1a2b"));
        assert!(pattern("veth*").matches("veth"));
        assert!(!pattern("veth*").matches("eth0"));
        assert!(pattern("wgp?").matches("wgp3"));
        assert!(!pattern("wgp?").matches("wgp12"));
        assert!(pattern("*0").matches("eth0"));
        assert!(pattern("c*li*x").matches("cabcliyyx"));
        assert!(!pattern("c*li*x").matches("cabcliyyxz"));
        assert!(pattern("eth0").matches("eth0") && !pattern("eth0").matches("eth01"));
        assert!(pattern("*").matches(""));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["", "a b", "x/y", "p@q"] {
            let error = bad.parse::<InterfacePattern>().unwrap_err();
            assert!(
                error.to_string().contains("not an interface pattern"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_uplink_is_never_a_pod_interface() {
        let config = PodInterfaceConfig {
            patterns: vec![pattern("*")],
            uplink: Some("eth0".into()),
        };
        assert!(config.wants("wgp0"));
        assert!(!config.wants("eth0"));
    }
}
