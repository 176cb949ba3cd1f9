//! What the proxy data-path tests share: an in-process proxy per node (the real sync
//! runner over the node's pinned maps, fed by an in-memory source), YAML builders for
//! Services and EndpointSlices, a pin directory guard, and a long-lived client.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::watch;
use waggle_datapath::lb_maps::PinnedLbMaps;
use waggle_proxy::{
    daemon::{self, Attached},
    runner::{RunnerConfig, SyncReport, SyncRunner},
    source::{TrackerHandle, file},
    sync::Syncer,
    translate::NodeInfo,
};
use waggle_testbed::{Netprobe, Pod, TestBed};

pub fn netprobe() -> Netprobe {
    Netprobe::at(env!("CARGO_BIN_EXE_test-netprobe"))
}

/// A pin directory on the bed's private BPF filesystem, registered with the bed and
/// removed (links detached) on drop.
pub struct PinDir(PathBuf);

impl PinDir {
    pub fn new(bed: &TestBed, tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = bed.bpf_dir().join(format!(
            "wgproxy-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        bed.register_pin_dir(&path).expect("register pin dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = waggle_datapath::socket_lb::detach_pinned(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A proxy for one node, running in-process: the data path loaded from `pins` and
/// attached to the node's cgroup, and the sync runner on a tokio runtime.
pub struct NodeProxy {
    pub handle: TrackerHandle,
    pub reports: watch::Receiver<Arc<SyncReport>>,
    task: Option<tokio::task::JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    pub attached: Option<Attached>,
}

impl NodeProxy {
    /// Starts a proxy for node `index` with the objects in `yaml`, and waits for its
    /// first sync.
    pub fn start(bed: &TestBed, index: usize, pins: &Path, yaml: &str) -> Self {
        let node = bed.node(index);
        let attached = daemon::attach(pins, node.cgroup(), None).unwrap_or_else(|error| {
            panic!(
                "attaching the data path failed (needs root or CAP_BPF + CAP_NET_ADMIN and \
                 the BPF object built by `cargo xtask build`): {error}"
            )
        });
        let maps = PinnedLbMaps::from_ebpf(attached.datapath.ebpf()).expect("open LB maps");
        let handle = TrackerHandle::new();
        feed(&handle, yaml);
        let info = NodeInfo {
            name: node.name().to_owned(),
            addresses: vec![IpAddr::V4(node.address())],
        };
        let runner = SyncRunner::new(
            Syncer::new(maps, info),
            handle.clone(),
            RunnerConfig {
                min_interval: Duration::from_millis(5),
                ..RunnerConfig::default()
            },
        );
        let reports = runner.subscribe();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let task = runtime.spawn(runner.run());
        let proxy = Self {
            handle,
            reports,
            task: Some(task),
            runtime: Some(runtime),
            attached: Some(attached),
        };
        proxy.wait_for_syncs(1, Duration::from_secs(10));
        proxy
    }

    /// The latest report once at least `n` syncs ran.
    pub fn wait_for_syncs(&self, n: u64, timeout: Duration) -> Arc<SyncReport> {
        let deadline = Instant::now() + timeout;
        loop {
            let report = self.reports.borrow().clone();
            if report.syncs >= n {
                if let Some(Err(error)) = &report.last {
                    panic!("sync failed: {error}");
                }
                return report;
            }
            assert!(Instant::now() < deadline, "no sync #{n} within {timeout:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Replaces the proxy's view with `yaml` (a relist).
    pub fn set_objects(&self, yaml: &str) {
        feed(&self.handle, yaml);
    }

    /// [`Self::set_objects`], then waits for the sync that applies it.
    pub fn apply(&self, yaml: &str) -> Arc<SyncReport> {
        let before = self.reports.borrow().syncs;
        self.set_objects(yaml);
        self.wait_for_syncs(before + 1, Duration::from_secs(10))
    }

    /// Stops the runner and drops the data path handle (pins stay), like a daemon exit.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
        self.attached.take();
    }
}

impl Drop for NodeProxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub fn feed(handle: &TrackerHandle, yaml: &str) {
    let objects = file::parse(yaml, Path::new("test.yaml")).expect("test YAML parses");
    file::relist(handle, objects);
}

/// A ClusterIP service `name` (TCP `port` → `target`) and one EndpointSlice with
/// `endpoints` (address, node name).
pub fn cluster_ip_service(
    name: &str,
    cluster_ip: IpAddr,
    port: u16,
    target: u16,
    endpoints: &[(IpAddr, &str)],
) -> String {
    let mut yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n\
         spec: {{clusterIP: {cluster_ip}, clusterIPs: [{cluster_ip}], ports: [{{name: http, port: {port}, targetPort: {target}}}]}}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {name}-1, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: {target}, protocol: TCP}}]\nendpoints:\n"
    );
    if endpoints.is_empty() {
        yaml.push_str("  []\n");
    }
    for (ip, node) in endpoints {
        yaml.push_str(&format!(
            "  - addresses: [\"{ip}\"]\n    nodeName: {node}\n    conditions: {{ready: true}}\n"
        ));
    }
    yaml.push_str("---\n");
    yaml
}

/// The endpoints of `pods` as (address, node name) pairs.
pub fn endpoints_of<'a>(
    bed: &TestBed,
    pods: impl IntoIterator<Item = &'a Pod>,
) -> Vec<(IpAddr, String)> {
    pods.into_iter()
        .map(|p| {
            (
                IpAddr::V4(p.address()),
                bed.node(p.node()).name().to_owned(),
            )
        })
        .collect()
}

/// A long-lived TCP connection from `pod` to `to`, exchanging a line every 50 ms for
/// `seconds` (server must run with `--echo`). Python from Debian's python3 package.
pub fn long_lived_client(
    bed: &TestBed,
    pod: &Pod,
    to: SocketAddr,
    seconds: f64,
) -> waggle_testbed::Spawned {
    const SCRIPT: &str = r#"
import json, socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((host, port), timeout=10)
f = s.makefile("rwb")
greeting = json.loads(f.readline())
print(json.dumps({"id": greeting["id"], "peer": "%s:%d" % s.getpeername()[:2]}), flush=True)
n, end = 0, time.time() + seconds
try:
    while time.time() < end:
        f.write(b"ping %d\n" % n); f.flush()
        if f.readline() != b"ping %d\n" % n:
            raise RuntimeError("bad echo")
        n += 1
        time.sleep(0.05)
    print(json.dumps({"exchanges": n, "error": None}), flush=True)
except Exception as e:
    print(json.dumps({"exchanges": n, "error": repr(e)}), flush=True)
"#;
    let mut command = pod.command("/usr/bin/python3");
    command
        .args([
            "-c",
            SCRIPT,
            &to.ip().to_string(),
            &to.port().to_string(),
            &seconds.to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    bed.spawn(command).expect("spawn long-lived client")
}
