//! The members of a bed: nodes, pods and the external client, and the [`Place`]
//! trait for "somewhere a process can run".

use std::{
    ffi::OsStr,
    fs::OpenOptions,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::{fd::AsRawFd, unix::process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
};

use crate::{cgroup, netns::NetNs};

/// Somewhere in a bed that a process can run: a node, a pod or the external client.
pub trait Place {
    /// The network namespace processes run in.
    fn netns(&self) -> &NetNs;
    /// A command whose child runs in this place (netns, and cgroup where there is one).
    fn command(&self, program: &str) -> Command;
    /// A short label for messages, e.g. `pod web-0` or `node0`.
    fn label(&self) -> String;
}

/// Makes the child of `command` join the cgroup at `cgroup` before `exec`.
/// Panics if the cgroup is gone (the bed removed it).
pub fn join_cgroup_on_exec(command: &mut Command, cgroup: &Path) {
    let path = cgroup::procs_file(cgroup);
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap_or_else(|error| panic!("cgroup {} is gone: {error}", path.display()));
    // SAFETY: the closure only calls write(2), which is async-signal-safe, on an fd
    // opened before fork. Writing "0" to cgroup.procs moves the writing process.
    unsafe {
        command.pre_exec(move || {
            if libc::write(file.as_raw_fd(), b"0".as_ptr().cast(), 1) == 1 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// A node: a namespace on the fabric with its own address, podCIDR and cgroup.
#[derive(Clone, Debug)]
pub struct Node {
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) netns: NetNs,
    pub(crate) address: Ipv4Addr,
    pub(crate) address_v6: Ipv6Addr,
    pub(crate) pod_cidr: (Ipv4Addr, u8),
    pub(crate) pod_cidr_v6: (Ipv6Addr, u8),
    pub(crate) cgroup: PathBuf,
}

impl Node {
    pub fn index(&self) -> usize {
        self.index
    }
    /// Logical name, `node0`, `node1`, ... (the netns name is [`NetNs::name`]).
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn netns(&self) -> &NetNs {
        &self.netns
    }
    /// The node's fabric address (`10.250.0.<index+1>`).
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }
    pub fn address_v6(&self) -> Ipv6Addr {
        self.address_v6
    }
    /// The interface inside the node namespace that leads to the fabric.
    pub fn uplink(&self) -> &str {
        crate::bed::UPLINK
    }
    pub fn pod_cidr(&self) -> (Ipv4Addr, u8) {
        self.pod_cidr
    }
    pub fn pod_cidr_v6(&self) -> (Ipv6Addr, u8) {
        self.pod_cidr_v6
    }
    /// The node's cgroup (parent of its pods' cgroups) in the bed's cgroup2 mount.
    pub fn cgroup(&self) -> &Path {
        &self.cgroup
    }
}

impl Place for Node {
    fn netns(&self) -> &NetNs {
        &self.netns
    }
    /// Runs in the node namespace and the node cgroup.
    fn command(&self, program: &str) -> Command {
        let mut command = self.netns.command(program);
        join_cgroup_on_exec(&mut command, &self.cgroup);
        command
    }
    fn label(&self) -> String {
        self.name.clone()
    }
}

#[derive(Debug)]
pub(crate) struct PodInfo {
    pub(crate) name: String,
    pub(crate) netns: NetNs,
    pub(crate) address: Ipv4Addr,
    pub(crate) address_v6: Ipv6Addr,
    pub(crate) host_veth: String,
    pub(crate) cgroup: PathBuf,
    pub(crate) node: usize,
}

/// A pod: a namespace behind a veth pair into its node, and a cgroup under the node's.
/// Cloning is cheap (a shared handle); the bed owns the namespace.
#[derive(Clone, Debug)]
pub struct Pod {
    pub(crate) info: Arc<PodInfo>,
}

impl Pod {
    pub fn name(&self) -> &str {
        &self.info.name
    }
    pub fn netns(&self) -> &NetNs {
        &self.info.netns
    }
    pub fn address(&self) -> Ipv4Addr {
        self.info.address
    }
    pub fn address_v6(&self) -> Ipv6Addr {
        self.info.address_v6
    }
    /// Both addresses, IPv4 first.
    pub fn addresses(&self) -> [IpAddr; 2] {
        [
            IpAddr::V4(self.info.address),
            IpAddr::V6(self.info.address_v6),
        ]
    }
    /// The host side of the pod's veth pair: an interface in the node namespace.
    pub fn host_veth(&self) -> &str {
        &self.info.host_veth
    }
    /// The pod's interface inside its own namespace.
    pub fn interface(&self) -> &str {
        crate::bed::POD_IFACE
    }
    pub fn cgroup(&self) -> &Path {
        &self.info.cgroup
    }
    /// Index of the node the pod runs on.
    pub fn node(&self) -> usize {
        self.info.node
    }
    /// A command whose child enters the pod namespace and joins the pod cgroup, so
    /// cgroup BPF hooks on the node cgroup apply to its sockets.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = self.info.netns.command(program);
        join_cgroup_on_exec(&mut command, &self.info.cgroup);
        command
    }
}

impl Place for Pod {
    fn netns(&self) -> &NetNs {
        &self.info.netns
    }
    fn command(&self, program: &str) -> Command {
        Pod::command(self, program)
    }
    fn label(&self) -> String {
        format!("pod {}", self.info.name)
    }
}

/// The external client: on the fabric, with routes only to the fabric subnet.
#[derive(Clone, Debug)]
pub struct External {
    pub(crate) netns: NetNs,
    pub(crate) address: Ipv4Addr,
    pub(crate) address_v6: Ipv6Addr,
}

impl External {
    pub fn netns(&self) -> &NetNs {
        &self.netns
    }
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }
    pub fn address_v6(&self) -> Ipv6Addr {
        self.address_v6
    }
}

impl Place for External {
    fn netns(&self) -> &NetNs {
        &self.netns
    }
    fn command(&self, program: &str) -> Command {
        self.netns.command(program)
    }
    fn label(&self) -> String {
        "external client".to_owned()
    }
}

impl Place for NetNs {
    fn netns(&self) -> &NetNs {
        self
    }
    fn command(&self, program: &str) -> Command {
        NetNs::command(self, program)
    }
    fn label(&self) -> String {
        format!("netns {}", self.name())
    }
}
