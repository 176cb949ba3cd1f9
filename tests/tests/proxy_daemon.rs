//! The `waggle proxy` daemon following its node, as a real process in a node
//! namespace of a test bed: addresses added to or removed from the node's uplink
//! change where NodePorts answer (within a second, through netlink and one sync),
//! and `--per-packet-interfaces` puts the per-packet fallback on pod veths (also on
//! ones created later), so a pod whose cgroup has no socket-LB programs reaches a
//! ClusterIP.
//!
//! Needs root, the BPF object embedded in `waggle-datapath` and the `waggle` binary
//! built beside the tests (`cargo xtask test` does both); without them the tests fail
//! saying so.

#[path = "daemon_support/mod.rs"]
mod daemon_support;

use std::{
    collections::BTreeSet,
    ffi::OsString,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use daemon_support::{Daemon, waggle_binary};
use waggle_datapath::lb_maps::{LbMaps, PinnedLbMaps};
use waggle_ebpf_common::maps::LINKS_DIR;
use waggle_testbed::{Netprobe, Node, Place, Pod, TestBed, probe::Attempt};

const HEALTHZ: &str = "127.0.0.1:10256";
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node change may take to reach the data path.
const FOLLOW_LIMIT: Duration = Duration::from_secs(1);
const NODE_PORT: u16 = 30080;
const BACKEND_PORT: u16 = 8080;
const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);

fn netprobe() -> Netprobe {
    Netprobe::at(env!("CARGO_BIN_EXE_test-netprobe"))
}

/// A `waggle proxy` in `node`'s namespace reading `objects` (a YAML file), with its
/// pins in the bed's bpffs; waits until it has synced.
struct Proxy {
    daemon: Daemon,
    pin_dir: PathBuf,
    node: Node,
    args: Vec<OsString>,
    starts: usize,
    dir: tempfile::TempDir,
}

impl Proxy {
    /// Socket LB goes to `cgroup`.
    fn start(bed: &TestBed, node: &Node, objects: &str, cgroup: &Path, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("objects.yaml");
        std::fs::write(&file, objects).expect("writing the objects file");
        let pin_dir = bed.bpf_dir().join(node.name());
        bed.register_pin_dir(&pin_dir)
            .expect("registering the pin dir");
        let mut args: Vec<OsString> = ["proxy", "--node-name", node.name(), "--from-files"]
            .iter()
            .map(OsString::from)
            .collect();
        args.push(file.into());
        args.extend(["--file-poll", "100ms", "--cgroup"].map(OsString::from));
        args.push(cgroup.into());
        args.push("--pin-dir".into());
        args.push(pin_dir.clone().into());
        args.extend(["--uplink", node.uplink()].map(OsString::from));
        args.extend(["--healthz-addr", HEALTHZ, "--metrics-addr", "off"].map(OsString::from));
        args.extend(extra.iter().map(OsString::from));
        let daemon = Self::spawn(bed, node, dir.path(), &args, 0);
        Self {
            daemon,
            pin_dir,
            node: node.clone(),
            args,
            starts: 1,
            dir,
        }
    }

    fn spawn(bed: &TestBed, node: &Node, dir: &Path, args: &[OsString], start: usize) -> Daemon {
        let mut command = node.netns().command(waggle_binary());
        command.args(args);
        let name = format!("waggle-proxy-{}-{start}", node.name());
        let mut daemon = Daemon::start(bed, dir, &name, command);
        daemon.wait_healthy(node.netns(), HEALTHZ, START_TIMEOUT);
        daemon
    }

    /// Kills the daemon (SIGKILL: no clean-up at all); pins stay.
    fn kill(&mut self) {
        self.daemon.kill();
    }

    /// Starts the daemon again with the same arguments and waits until it has synced.
    fn restart(&mut self, bed: &TestBed) {
        self.daemon = Self::spawn(bed, &self.node, self.dir.path(), &self.args, self.starts);
        self.starts += 1;
    }

    fn maps(&self) -> PinnedLbMaps {
        PinnedLbMaps::from_pin_dir(&self.pin_dir)
            .unwrap_or_else(|error| panic!("opening the pinned LB maps: {error}"))
    }

    /// Whether NodePorts answer on `ip` according to the maps.
    fn node_port_address(&self, ip: Ipv4Addr) -> bool {
        let key = u32::from_ne_bytes(ip.octets());
        self.maps()
            .node_addrs_v4()
            .get(&key)
            .expect("reading the node address map")
            .is_some()
    }

    /// Waits until `check` holds, panicking with the log after `limit`.
    fn wait_until(
        &mut self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut(&Self) -> bool,
    ) -> Duration {
        let since = Instant::now();
        loop {
            if check(self) {
                return since.elapsed();
            }
            self.daemon.check_alive();
            assert!(
                since.elapsed() < limit,
                "{what}: not within {limit:?}\n{}",
                self.daemon.read_log()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The YAML of TCP Service `name` with endpoints `backends` on `node`; `node_port`
/// makes it a NodePort Service.
fn service_yaml(name: &str, node_port: Option<u16>, backends: &[&Pod], node: &str) -> String {
    let (kind, node_port) = match node_port {
        Some(port) => ("NodePort", format!(", nodePort: {port}")),
        None => ("ClusterIP", String::new()),
    };
    let mut yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n\
         spec: {{type: {kind}, clusterIP: {VIP}, clusterIPs: [{VIP}], \
         ports: [{{name: http, port: 80, targetPort: {BACKEND_PORT}{node_port}}}]}}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {name}-1, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: {BACKEND_PORT}, protocol: TCP}}]\nendpoints:\n"
    );
    for pod in backends {
        yaml.push_str(&format!(
            "  - addresses: [\"{}\"]\n    nodeName: {node}\n    conditions: {{ready: true}}\n",
            pod.address()
        ));
    }
    yaml
}

/// One TCP connection attempt from `place` to `to`.
fn connect_once(probe: &Netprobe, place: &impl Place, to: SocketAddr, timeout_ms: u32) -> Attempt {
    let timeout = timeout_ms.to_string();
    probe
        .client(place, "tcp", to, 1, &["--timeout-ms", &timeout])
        .expect("running netprobe tcp")
        .remove(0)
}

/// Servers reached by `attempts`, asserting each succeeded.
fn servers(attempts: &[Attempt], context: &str) -> BTreeSet<String> {
    attempts
        .iter()
        .map(|attempt| {
            assert!(attempt.ok, "{context}: a connection failed: {attempt:#?}");
            attempt.id.clone().expect("a greeting names its server")
        })
        .collect()
}

#[test]
fn node_ports_follow_addresses_added_to_and_removed_from_the_node() {
    let bed = waggle_tests::bed(TestBed::builder().nodes(1).external_client(true));
    let probe = netprobe();
    let node = bed.node(0);
    let web = bed.add_pod(0, "web-0").expect("adding the backend pod");
    let _server = probe
        .serve(&bed, &web, "web-0", Some(BACKEND_PORT), None)
        .expect("starting netprobe serve");
    let objects = service_yaml("front", Some(NODE_PORT), &[&web], node.name());
    // NodePorts only on the fabric subnet, as kube-proxy's --nodeport-addresses does.
    let mut proxy = Proxy::start(
        &bed,
        node,
        &objects,
        node.cgroup(),
        &["--nodeport-addresses", "10.250.0.0/24"],
    );
    let external = bed.external().expect("the bed has an external client");
    let primary = node.address();
    assert!(
        proxy.node_port_address(primary),
        "the node's address is a NodePort address"
    );
    let at_primary = SocketAddr::new(primary.into(), NODE_PORT);
    let reached = servers(
        &probe.tcp(external, at_primary, 3).expect("netprobe tcp"),
        "primary",
    );
    assert_eq!(reached, BTreeSet::from(["web-0".to_owned()]));
    let snat_before = proxy.maps().node_config().expect("reading NodeConfig");

    // A new address on the uplink: NodePorts answer on it within a second.
    let added = Ipv4Addr::new(10, 250, 0, 77);
    let outside = Ipv4Addr::new(192, 0, 2, 77); // outside --nodeport-addresses
    node.netns()
        .ip(&["addr", "add", "192.0.2.77/32", "dev", node.uplink()])
        .expect("adding an address outside the NodePort CIDRs");
    node.netns()
        .ip(&["addr", "add", "10.250.0.77/24", "dev", node.uplink()])
        .expect("adding an address to the node");
    // Timed on the maps (cheap to poll), then shown to answer: a netprobe run per
    // attempt costs a process start, which a loaded machine can stretch a lot.
    let took = proxy.wait_until("added address in the maps", FOLLOW_LIMIT, |proxy| {
        proxy.node_port_address(added)
    });
    eprintln!("TIMING address added -> in the NodePort addresses: {took:?}");
    let at_added = SocketAddr::new(added.into(), NODE_PORT);
    let took = proxy.wait_until("NodePort on the added address", START_TIMEOUT, |_| {
        connect_once(&probe, external, at_added, 1000).ok
    });
    eprintln!("TIMING added address in the maps -> NodePort answers on it: {took:?}");
    let reached = servers(
        &probe.tcp(external, at_added, 5).expect("netprobe tcp"),
        "added",
    );
    assert_eq!(reached, BTreeSet::from(["web-0".to_owned()]));
    assert!(
        !proxy.node_port_address(outside),
        "192.0.2.77 is outside --nodeport-addresses and must not be a NodePort address"
    );
    let snat_after = proxy.maps().node_config().expect("reading NodeConfig");
    assert_eq!(
        snat_after.node_address_v4, snat_before.node_address_v4,
        "a new address does not move the SNAT source"
    );
    assert_eq!(
        snat_after.node_address_v4,
        u32::from_ne_bytes(primary.octets())
    );

    // Removed again: it leaves the maps within a second, and the NodePort stops.
    node.netns()
        .ip(&["addr", "del", "10.250.0.77/24", "dev", node.uplink()])
        .expect("removing the address");
    let took = proxy.wait_until("added address leaves the maps", FOLLOW_LIMIT, |proxy| {
        !proxy.node_port_address(added)
    });
    eprintln!("TIMING address removed -> gone from the NodePort addresses: {took:?}");
    let attempt = connect_once(&probe, external, at_added, 1000);
    assert!(
        !attempt.ok,
        "the removed address still answers: {attempt:#?}"
    );
    assert!(proxy.node_port_address(primary));
    let reached = servers(
        &probe.tcp(external, at_primary, 3).expect("netprobe tcp"),
        "primary",
    );
    assert_eq!(reached, BTreeSet::from(["web-0".to_owned()]));
    proxy.daemon.check_alive();
}

fn pin_of(proxy: &Proxy, interface: &str) -> PathBuf {
    proxy
        .pin_dir
        .join(LINKS_DIR)
        .join(format!("tc_pod_egress@{interface}"))
}

fn wait_for_pin(proxy: &mut Proxy, interface: &str, present: bool) {
    let pin = pin_of(proxy, interface);
    let took = proxy.wait_until(
        &format!("pin {} present={present}", pin.display()),
        FOLLOW_LIMIT,
        |_| Path::new(&pin).exists() == present,
    );
    eprintln!("TIMING {interface}: fallback pin present={present} after {took:?}");
}

/// A bed whose pods route the service range to their node, and on node 0 an idle
/// pod whose cgroup is the only one socket LB attaches to: every other pod's sockets
/// go untranslated, so only the per-packet fallback can reach a VIP for them.
fn fallback_bed(nodes: usize) -> (TestBed, Pod) {
    let bed = waggle_tests::bed(
        TestBed::builder()
            .nodes(nodes)
            .pod_route(IpAddr::V4(Ipv4Addr::new(10, 96, 0, 0)), 12),
    );
    let socket_lb_pod = bed.add_pod(0, "socket-lb-only").expect("adding a pod");
    (bed, socket_lb_pod)
}

/// Node 0's proxy with socket LB on `socket_lb_pod`'s cgroup and the fallback on `wgp*`.
fn start_fallback_proxy(bed: &TestBed, socket_lb_pod: &Pod, objects: &str) -> Proxy {
    let extra = ["--per-packet-interfaces", "wgp*"];
    Proxy::start(bed, bed.node(0), objects, socket_lb_pod.cgroup(), &extra)
}

#[test]
fn per_packet_fallback_gives_pods_without_socket_lb_the_cluster_ip() {
    let (bed, socket_lb_pod) = fallback_bed(2);
    let probe = netprobe();
    let client = bed.add_pod(0, "client").expect("adding the client pod");
    let remote = bed
        .add_pod(1, "web-remote")
        .expect("adding the backend pod");
    let _server = probe
        .serve(&bed, &remote, "web-remote", Some(BACKEND_PORT), None)
        .expect("starting netprobe serve");
    let objects = service_yaml("web", None, &[&remote], bed.node(1).name());
    let mut proxy = start_fallback_proxy(&bed, &socket_lb_pod, &objects);
    // Interfaces present at start get the fallback at start.
    for pod in [&socket_lb_pod, &client] {
        assert!(
            pin_of(&proxy, pod.host_veth()).exists(),
            "{} has no fallback pin",
            pod.host_veth()
        );
    }
    let vip = SocketAddr::new(VIP.into(), 80);
    let attempts = probe.tcp(&client, vip, 10).expect("netprobe tcp");
    assert_eq!(
        servers(&attempts, "client -> VIP"),
        BTreeSet::from(["web-remote".to_owned()])
    );
    for attempt in &attempts {
        assert_eq!(
            attempt.peer_name.as_deref(),
            Some("10.96.0.10:80"),
            "{attempt:#?}"
        );
        let saw = attempt
            .server_saw_addr()
            .expect("the server reports the client");
        assert_eq!(
            saw.ip(),
            IpAddr::V4(client.address()),
            "no SNAT for pod traffic: {attempt:#?}"
        );
    }

    // The daemon dies: the pinned fallback keeps working; a new daemon takes over the
    // pinned links (atomic program replace) and finds its pods' veths again.
    proxy.kill();
    let attempts = probe.tcp(&client, vip, 5).expect("netprobe tcp");
    assert_eq!(
        servers(&attempts, "client -> VIP, daemon down"),
        BTreeSet::from(["web-remote".to_owned()])
    );
    proxy.restart(&bed);
    let log = proxy.daemon.read_log();
    assert!(
        log.contains(&format!(
            "interface=\"{}\" outcome=Replaced",
            client.host_veth()
        )) || log.contains(&format!(
            "interface={} outcome=Replaced",
            client.host_veth()
        )),
        "the restarted daemon did not take over the pinned fallback link:\n{log}"
    );
    let attempts = probe.tcp(&client, vip, 5).expect("netprobe tcp");
    assert_eq!(
        servers(&attempts, "client -> VIP, restarted"),
        BTreeSet::from(["web-remote".to_owned()])
    );

    // A pod created after the daemon started: its veth gets the fallback at once.
    let late = bed.add_pod(0, "late-client").expect("adding a pod");
    wait_for_pin(&mut proxy, late.host_veth(), true);
    let attempts = probe.tcp(&late, vip, 10).expect("netprobe tcp");
    assert_eq!(
        servers(&attempts, "late client -> VIP"),
        BTreeSet::from(["web-remote".to_owned()])
    );

    // The pod goes: so does its pin.
    let veth = late.host_veth().to_owned();
    bed.remove_pod("late-client").expect("removing the pod");
    wait_for_pin(&mut proxy, &veth, false);
    proxy.daemon.check_alive();
}

#[test]
fn per_packet_fallback_reaches_a_backend_on_the_same_node() {
    let (bed, socket_lb_pod) = fallback_bed(1);
    let probe = netprobe();
    let local = bed.add_pod(0, "web-local").expect("adding the backend pod");
    let _server = probe
        .serve(&bed, &local, "web-local", Some(BACKEND_PORT), None)
        .expect("starting netprobe serve");
    let client = bed.add_pod(0, "client").expect("adding the client pod");
    let objects = service_yaml("web", None, &[&local], bed.node(0).name());
    let _proxy = start_fallback_proxy(&bed, &socket_lb_pod, &objects);
    let vip = SocketAddr::new(VIP.into(), 80);
    let attempts = probe
        .client(&client, "tcp", vip, 5, &["--timeout-ms", "2000"])
        .expect("netprobe tcp");
    assert_eq!(
        servers(&attempts, "client -> VIP (local backend)"),
        BTreeSet::from(["web-local".to_owned()])
    );
    for attempt in &attempts {
        assert_eq!(
            attempt.peer_name.as_deref(),
            Some("10.96.0.10:80"),
            "{attempt:#?}"
        );
    }
}
