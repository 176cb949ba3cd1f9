//! A Waggle cluster on a namespace test bed, made of the real binaries:
//!
//! * `waggle server` in node 0's namespace, bound to node 0's fabric address
//!   (`10.250.0.1:6443`), with its SQLite store in a temporary directory;
//! * one `waggle proxy` per node in that node's namespace: socket LB on the node's
//!   cgroup, the NodePort programs on its uplink, NodePorts on the node addresses it
//!   follows through netlink (the default), pins in the bed's private bpffs, and
//!   the admin kubeconfig pointing at the server over the fabric;
//! * the test's own client ([`ApiClient`]) in node 0's namespace;
//! * with [`Parts::kubelets`], a containerd and a `waggle kubelet` per node in that
//!   node's namespace: the kubelet registers the Node at the node's fabric address
//!   and runs the pods bound to it; the API server reaches it over the fabric.
//!
//! Nothing listens or routes in the root namespace. The processes are the bed's: they
//! are killed when the cluster (or the bed) is dropped, and if the test panics their
//! logs are printed.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Node;
use kube::config::Kubeconfig;
use tempfile::TempDir;
use waggle_testbed::TestBed;
use waggle_testbed::runtime::Containerd;

use super::{
    api::ApiClient,
    daemon_support::{Daemon, waggle_binary},
};

/// The API server's port on node 0's fabric address.
pub const API_PORT: u16 = 6443;
/// Where each proxy serves `/healthz` (loopback of its own node namespace).
const HEALTHZ: &str = "127.0.0.1:10256";
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Which node components run beside the server.
#[derive(Clone, Copy, Debug)]
pub struct Parts {
    pub proxies: bool,
    pub kubelets: bool,
}

/// The server, the proxies and a client, on `bed`.
pub struct Cluster {
    // Field order is drop order: the client's threads leave node 0's namespace first,
    // then the kubelets, their runtimes (and pods), the proxies and the server stop,
    // then the bed goes.
    pub api: ApiClient,
    kubelets: Vec<Daemon>,
    runtimes: Vec<Containerd>,
    proxies: Vec<Daemon>,
    server: Daemon,
    pub waggle: PathBuf,
    /// The proxies' pin directories, by node index.
    pub pin_dirs: Vec<PathBuf>,
    /// Unmounts what the kubelets mounted (memory-backed volumes) once they are gone.
    _mounts: Unmount,
    dir: TempDir,
}

/// Unmounts everything below a directory when dropped.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        waggle_testbed::runtime::unmount_below(&self.0);
    }
}

impl Cluster {
    /// Starts the server on node 0, waits until it serves, then a proxy per node, and
    /// waits until each has synced.
    pub fn start(bed: &TestBed) -> Self {
        Self::start_with(
            bed,
            Parts {
                proxies: true,
                kubelets: false,
            },
        )
    }

    /// Starts the server, then the chosen parts on every node, each waited on.
    pub fn start_with(bed: &TestBed, parts: Parts) -> Self {
        let waggle = waggle_binary();
        let dir = tempfile::tempdir().expect("temporary directory");
        let node0 = bed.node(0);
        let api_addr = SocketAddr::new(node0.address().into(), API_PORT);
        let data_dir = dir.path().join("server");
        std::fs::create_dir_all(&data_dir).expect("server data dir");

        let started = Instant::now();
        let mut command = node0.netns().command(&waggle);
        command
            .args(["server", "--data-dir"])
            .arg(&data_dir)
            .args(["--bind", &api_addr.to_string()]);
        let mut server = Daemon::start(bed, dir.path(), "waggle-server", command);
        // The server writes its kubeconfig in place (not atomically): wait until it
        // reads back whole, then point it at the fabric address.
        let written = data_dir.join("admin.kubeconfig");
        let kubeconfig = dir.path().join("kubeconfig");
        loop {
            server.check_alive();
            match rewrite_server(&written, &kubeconfig, &format!("https://{api_addr}")) {
                Ok(()) => break,
                Err(error) => assert!(
                    started.elapsed() < START_TIMEOUT,
                    "waggle server wrote no usable kubeconfig within {START_TIMEOUT:?} ({error:#}):\n{}",
                    server.read_log()
                ),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let api = ApiClient::connect(node0.netns(), &kubeconfig)
            .unwrap_or_else(|error| panic!("building the API client: {error:#}"));
        let version = api
            .wait_until_serving(START_TIMEOUT)
            .unwrap_or_else(|error| panic!("{error:#}\n{}", server.read_log()));
        eprintln!(
            "cluster: waggle server {version} serving at {api_addr} after {:?}",
            started.elapsed()
        );

        let mut pin_dirs = Vec::new();
        let mut proxies = Vec::new();
        for node in bed.nodes().iter().filter(|_| parts.proxies) {
            let pin_dir = bed.bpf_dir().join(node.name());
            bed.register_pin_dir(&pin_dir)
                .expect("registering the pin dir");
            let mut command = node.netns().command(&waggle);
            command
                .args(["proxy", "--node-name", node.name(), "--kubeconfig"])
                .arg(&kubeconfig)
                .arg("--cgroup")
                .arg(node.cgroup())
                .arg("--pin-dir")
                .arg(&pin_dir)
                .args(["--uplink", node.uplink()])
                .args(["--healthz-addr", HEALTHZ]);
            proxies.push(Daemon::start(
                bed,
                dir.path(),
                &format!("waggle-proxy-{}", node.name()),
                command,
            ));
            pin_dirs.push(pin_dir);
        }
        for (node, proxy) in bed.nodes().iter().zip(&mut proxies) {
            proxy.wait_healthy(node.netns(), HEALTHZ, START_TIMEOUT);
        }
        eprintln!(
            "cluster: {} proxies synced, {:?} after start",
            proxies.len(),
            started.elapsed()
        );
        let (runtimes, kubelets) = if parts.kubelets {
            start_kubelets(bed, &api, &waggle, &kubeconfig, dir.path(), started)
        } else {
            (Vec::new(), Vec::new())
        };
        Self {
            api,
            kubelets,
            runtimes,
            proxies,
            server,
            waggle,
            pin_dirs,
            _mounts: Unmount(dir.path().to_owned()),
            dir,
        }
    }

    /// Panics (with their logs) if the server or a proxy has died.
    pub fn check_alive(&mut self) {
        self.server.check_alive();
        for daemon in self.proxies.iter_mut().chain(&mut self.kubelets) {
            daemon.check_alive();
        }
    }

    /// The kubeconfig (admin, pointing at the server over the fabric).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// `waggle bpf lb list` for node `index`'s pins: the maps as the CLI shows them.
    pub fn lb_list(&self, index: usize) -> String {
        let output = Command::new(&self.waggle)
            .args(["bpf", "lb", "list", "--pin-dir"])
            .arg(&self.pin_dirs[index])
            .output()
            .expect("running waggle bpf lb list");
        assert!(
            output.status.success(),
            "waggle bpf lb list failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for daemon in std::iter::once(&self.server)
                .chain(&self.proxies)
                .chain(&self.kubelets)
            {
                eprintln!(
                    "----- {} log ({}) -----\n{}",
                    daemon.name,
                    daemon.log.display(),
                    daemon.read_log()
                );
            }
            for (index, runtime) in self.runtimes.iter().enumerate() {
                eprintln!("----- containerd node{index} log -----\n{}", runtime.log());
            }
            eprintln!(
                "----- (temporary directory {}) -----",
                self.dir.path().display()
            );
        }
    }
}

/// Starts a containerd and a kubelet on every node and waits until each Node is Ready.
fn start_kubelets(
    bed: &TestBed,
    api: &ApiClient,
    waggle: &Path,
    kubeconfig: &Path,
    dir: &Path,
    started: Instant,
) -> (Vec<Containerd>, Vec<Daemon>) {
    let mut runtimes = Vec::new();
    let mut kubelets = Vec::new();
    for node in bed.nodes() {
        let runtime = Containerd::start(bed, node)
            .unwrap_or_else(|error| panic!("starting containerd on {}: {error}", node.name()));
        let (network, prefix) = node.pod_cidr();
        let mut command = node.netns().command(waggle);
        command
            .args(["kubelet", "--node-name", node.name(), "--kubeconfig"])
            .arg(kubeconfig)
            .args(["--node-ip", &node.address().to_string()])
            .args(["--pod-cidr", &format!("{network}/{prefix}")])
            .arg("--container-runtime-endpoint")
            .arg(runtime.socket())
            .arg("--root-dir")
            .arg(dir.join(format!("kubelet-{}", node.name())))
            .arg("--pod-log-dir")
            .arg(dir.join(format!("pod-logs-{}", node.name())))
            .args(["--cgroup-root", runtime.cgroup_root()])
            // ConfigMap and Secret volumes follow changes within seconds, not a minute.
            .args(["--sync-frequency", "1s"]);
        kubelets.push(Daemon::start(
            bed,
            dir,
            &format!("waggle-kubelet-{}", node.name()),
            command,
        ));
        runtimes.push(runtime);
    }
    for (node, kubelet) in bed.nodes().iter().zip(&mut kubelets) {
        let name = node.name().to_owned();
        loop {
            kubelet.check_alive();
            let ready = api.run(|client| {
                let name = name.clone();
                async move {
                    let nodes: kube::Api<Node> = kube::Api::all(client);
                    let node = nodes.get_opt(&name).await.ok().flatten();
                    let conditions = node.and_then(|n| n.status?.conditions).unwrap_or_default();
                    conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                }
            });
            if ready {
                break;
            }
            assert!(
                started.elapsed() < START_TIMEOUT * 2,
                "node {name} not Ready in time:\n{}",
                kubelet.read_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    eprintln!(
        "cluster: {} kubelets ready, {:?} after start",
        kubelets.len(),
        started.elapsed()
    );
    (runtimes, kubelets)
}

/// Copies the kubeconfig at `from` to `to` with every cluster's server set to `url`;
/// fails while `from` is missing or incomplete.
fn rewrite_server(from: &Path, to: &Path, url: &str) -> anyhow::Result<()> {
    let mut config = Kubeconfig::read_from(from)?;
    anyhow::ensure!(
        config.current_context.is_some() && !config.clusters.is_empty(),
        "{} has no current context or no cluster yet",
        from.display()
    );
    for named in &mut config.clusters {
        if let Some(cluster) = named.cluster.as_mut() {
            cluster.server = Some(url.to_owned());
        }
    }
    // JSON is YAML: every kubeconfig reader takes it.
    std::fs::write(to, serde_json::to_string_pretty(&config)?)?;
    Ok(())
}
