//! [`TestBed`]: building the topology (`pods.rs` adds and removes pods) and tearing
//! it down (`resources.rs`, RAII).

mod pods;
mod resources;

use std::{
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
};

use nix::mount::{MsFlags, mount};

use crate::{
    TestBedError, cgroup, cmd,
    members::{External, Node, Pod},
    names,
    netns::NetNs,
    process::Spawned,
    sweep::{self, PINS_FILE, RUN_ROOT},
    topology as plan,
};
use resources::Resources;

/// The bridge in the fabric namespace.
pub const BRIDGE: &str = "br0";
/// A node's interface to the fabric (and the external client's).
pub const UPLINK: &str = "eth0";
/// A pod's interface inside its namespace.
pub const POD_IFACE: &str = "eth0";

/// Settings of every namespace of a bed, written before its interfaces exist.
const COMMON_SYSCTLS: &[(&str, &str)] = &[
    ("net/ipv4/ip_forward", "0"),
    ("net/ipv4/conf/all/rp_filter", "0"),
    ("net/ipv4/conf/default/rp_filter", "0"),
    ("net/ipv6/conf/all/accept_dad", "0"),
    ("net/ipv6/conf/default/accept_dad", "0"),
    ("net/ipv6/conf/default/accept_ra", "0"),
];
const NODE_SYSCTLS: &[(&str, &str)] = &[
    ("net/ipv4/ip_forward", "1"),
    ("net/ipv6/conf/all/forwarding", "1"),
];

/// Builder for a [`TestBed`]; see the crate docs for the topology.
#[derive(Clone, Debug, Default)]
pub struct TestBedBuilder {
    nodes: usize,
    external: bool,
    pod_routes: Vec<(IpAddr, u8)>,
}

impl TestBedBuilder {
    /// Number of nodes (default 1, at most [`plan::MAX_NODES`]).
    pub fn nodes(mut self, count: usize) -> Self {
        self.nodes = count;
        self
    }

    /// Whether to add the external client namespace (default false).
    pub fn external_client(mut self, enabled: bool) -> Self {
        self.external = enabled;
        self
    }

    /// An extra prefix every pod routes via its gateway (e.g. a service CIDR that a
    /// per-packet load balancer on the node handles). Pods have no default route.
    pub fn pod_route(mut self, prefix: IpAddr, len: u8) -> Self {
        self.pod_routes.push((prefix, len));
        self
    }

    pub fn build(self) -> Result<TestBed, TestBedError> {
        TestBed::create(self)
    }
}

/// A fabric, nodes, pods and optionally an external client, in network namespaces
/// of their own; everything is removed when the bed is dropped (also on panic).
#[derive(Debug)]
pub struct TestBed {
    prefix: String,
    fabric: NetNs,
    nodes: Vec<Node>,
    external: Option<External>,
    pods: Mutex<Vec<Pod>>,
    pods_per_node: Mutex<Vec<usize>>,
    pod_routes: Vec<(IpAddr, u8)>,
    bpf_dir: PathBuf,
    cgroup_mount: PathBuf,
    cgroup_root: PathBuf,
    resources: Resources,
}

impl TestBed {
    pub fn builder() -> TestBedBuilder {
        TestBedBuilder {
            nodes: 1,
            ..TestBedBuilder::default()
        }
    }

    fn create(spec: TestBedBuilder) -> Result<Self, TestBedError> {
        if spec.nodes == 0 || spec.nodes > plan::MAX_NODES {
            return Err(TestBedError::Invalid(format!(
                "a bed has 1 to {} nodes, not {}",
                plan::MAX_NODES,
                spec.nodes
            )));
        }
        check_privileges()?;
        let prefix = names::new_bed_prefix();
        let run_dir = Path::new(RUN_ROOT).join(&prefix);
        fs::create_dir_all(&run_dir)
            .map_err(|source| TestBedError::io("creating run dir", &run_dir, source))?;
        let mut resources = Resources {
            run_dir: run_dir.clone(),
            mounts: Vec::new(),
            cgroup_root: None,
            namespaces: Mutex::new(Vec::new()),
            pins: Mutex::new(Vec::new()),
            tracker: Arc::default(),
        };

        let cgroup_mount = run_dir.join("cgroup");
        cgroup::mount_cgroup2(&cgroup_mount)?;
        resources.mounts.push(cgroup_mount.clone());
        sweep::sweep(&cgroup_mount);
        let cgroup_root = cgroup_mount.join(&prefix);
        cgroup::create(&cgroup_root)?;
        resources.cgroup_root = Some(cgroup_root.clone());

        let bpf_dir = run_dir.join("bpf");
        fs::create_dir_all(&bpf_dir)
            .map_err(|source| TestBedError::io("creating bpffs mount point", &bpf_dir, source))?;
        mount(
            Some("bpf"),
            &bpf_dir,
            Some("bpf"),
            MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|source| {
            TestBedError::sys(format!("mount -t bpf bpf {}", bpf_dir.display()), source)
        })?;
        resources.mounts.push(bpf_dir.clone());

        let mut bed = Self {
            fabric: NetNs::from_name(format!("{prefix}-fabric")),
            prefix,
            nodes: Vec::new(),
            external: None,
            pods: Mutex::new(Vec::new()),
            pods_per_node: Mutex::new(vec![0; spec.nodes]),
            pod_routes: spec.pod_routes,
            bpf_dir,
            cgroup_mount,
            cgroup_root,
            resources,
        };
        let fabric = bed.new_netns("fabric")?;
        fabric.ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        fabric.ip(&["link", "set", BRIDGE, "up"])?;
        for index in 0..spec.nodes {
            let node = bed.create_node(index)?;
            bed.nodes.push(node);
        }
        bed.route_pod_cidrs_between_nodes()?;
        if spec.external {
            bed.external = Some(bed.create_external()?);
        }
        Ok(bed)
    }

    fn new_netns(&self, suffix: &str) -> Result<NetNs, TestBedError> {
        let name = format!("{}-{suffix}", self.prefix);
        let netns = NetNs::create(&name)?;
        self.resources
            .namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name);
        for (key, value) in COMMON_SYSCTLS {
            netns.set_sysctl(key, value)?;
        }
        Ok(netns)
    }

    /// Adds a veth pair between the fabric bridge (port `port`) and `eth0` in `netns`.
    fn plug_into_fabric(
        &self,
        port: &str,
        netns: &NetNs,
        v4: String,
        v6: String,
    ) -> Result<(), TestBedError> {
        cmd::ip_batch(
            Some(self.fabric.name()),
            &[
                format!(
                    "link add {port} type veth peer name {UPLINK} netns {}",
                    netns.name()
                ),
                format!("link set {port} master {BRIDGE} up"),
            ],
        )?;
        cmd::ip_batch(
            Some(netns.name()),
            &[
                format!("addr add {v4}/24 dev {UPLINK}"),
                format!("addr add {v6}/64 dev {UPLINK} nodad"),
                format!("link set {UPLINK} up"),
            ],
        )
    }

    fn create_node(&self, index: usize) -> Result<Node, TestBedError> {
        let name = format!("node{index}");
        let netns = self.new_netns(&name)?;
        for (key, value) in NODE_SYSCTLS {
            netns.set_sysctl(key, value)?;
        }
        let (address, address_v6) = (plan::node_v4(index), plan::node_v6(index));
        self.plug_into_fabric(
            &format!("n{index}"),
            &netns,
            address.to_string(),
            address_v6.to_string(),
        )?;
        let cgroup = self.cgroup_root.join(&name);
        cgroup::create(&cgroup)?;
        Ok(Node {
            index,
            name,
            netns,
            address,
            address_v6,
            pod_cidr: plan::pod_cidr_v4(index),
            pod_cidr_v6: plan::pod_cidr_v6(index),
            cgroup,
        })
    }

    fn route_pod_cidrs_between_nodes(&self) -> Result<(), TestBedError> {
        for node in &self.nodes {
            let mut lines = Vec::new();
            for other in self.nodes.iter().filter(|other| other.index != node.index) {
                let ((v4, len4), (v6, len6)) = (other.pod_cidr, other.pod_cidr_v6);
                lines.push(format!(
                    "route add {v4}/{len4} via {} dev {UPLINK}",
                    other.address
                ));
                lines.push(format!(
                    "route add {v6}/{len6} via {} dev {UPLINK}",
                    other.address_v6
                ));
            }
            if !lines.is_empty() {
                cmd::ip_batch(Some(node.netns.name()), &lines)?;
            }
        }
        Ok(())
    }

    fn create_external(&self) -> Result<External, TestBedError> {
        let netns = self.new_netns("ext")?;
        self.plug_into_fabric(
            "ext",
            &netns,
            plan::EXTERNAL_V4.to_string(),
            plan::EXTERNAL_V6.to_string(),
        )?;
        Ok(External {
            netns,
            address: plan::EXTERNAL_V4,
            address_v6: plan::EXTERNAL_V6,
        })
    }

    /// The node with this index. Panics if there is no such node.
    pub fn node(&self, index: usize) -> &Node {
        self.nodes.get(index).unwrap_or_else(|| {
            panic!(
                "node {index} does not exist (the bed has {})",
                self.nodes.len()
            )
        })
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// A pod by name.
    pub fn pod(&self, name: &str) -> Option<Pod> {
        self.pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|pod| pod.name() == name)
            .cloned()
    }

    /// All pods, in the order they were added.
    pub fn pods(&self) -> Vec<Pod> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn external(&self) -> Option<&External> {
        self.external.as_ref()
    }

    /// The namespace holding the fabric bridge [`BRIDGE`].
    pub fn fabric(&self) -> &NetNs {
        &self.fabric
    }

    /// Every namespace of the bed (fabric, nodes, external, pods).
    pub fn namespaces(&self) -> Vec<NetNs> {
        self.resources
            .namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|name| NetNs::from_name(name.as_str()))
            .collect()
    }

    /// `wgtb-<pid>-<n>`: the start of every object name of this bed.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `/run/wgtb-<pid>-<n>`: the bed's run directory (mounts, state).
    pub fn run_dir(&self) -> &Path {
        &self.resources.run_dir
    }

    /// The per-bed cgroup (parent of the node cgroups) in the private cgroup2 mount.
    pub fn cgroup_root(&self) -> &Path {
        &self.cgroup_root
    }

    /// The private cgroup2 mount point (the root of the v2 hierarchy: never attach here).
    pub fn cgroup_mount(&self) -> &Path {
        &self.cgroup_mount
    }

    /// A private BPF filesystem for this bed's pins: everything in it disappears when
    /// the bed is dropped.
    pub fn bpf_dir(&self) -> &Path {
        &self.bpf_dir
    }

    /// Registers a directory of pinned BPF objects, removed with the bed (and by the
    /// sweep if this process crashes).
    pub fn register_pin_dir(&self, path: impl Into<PathBuf>) -> Result<(), TestBedError> {
        let path = path.into();
        let mut pins = self
            .resources
            .pins
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        pins.push(path);
        let list: String = pins
            .iter()
            .map(|pin| format!("{}\n", pin.display()))
            .collect();
        let file = self.resources.run_dir.join(PINS_FILE);
        fs::write(&file, list).map_err(|source| TestBedError::io("writing", file, source))
    }

    /// Starts `command` (e.g. from [`Pod::command`]) and tracks it: it is killed when
    /// the returned handle or the bed is dropped.
    pub fn spawn(&self, command: Command) -> Result<Spawned, TestBedError> {
        Spawned::start(command, Arc::clone(&self.resources.tracker))
    }
}

fn check_privileges() -> Result<(), TestBedError> {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    let effective = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("CapEff:"))?;
            u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
        })
        .unwrap_or(0);
    if effective & (1 << CAP_NET_ADMIN) != 0 && effective & (1 << CAP_SYS_ADMIN) != 0 {
        Ok(())
    } else {
        Err(TestBedError::NotPrivileged {
            euid: nix::unistd::geteuid().as_raw(),
        })
    }
}
