//! The proxy daemon: loads the data path from its pins (so a restart or upgrade keeps
//! maps and attached programs, and no connection notices), attaches socket LB to a
//! cgroup and the NodePort program to the uplink, runs a source, the node-address
//! watcher, the per-packet fallback on pod interfaces, the sync runner, the
//! metrics/healthz HTTP servers and the health-check node ports.
//!
//! Start-up failures name what is missing: privileges, kernel BTF, a bpffs pin
//! directory, a cgroup v2 directory, or the hook and kernel feature an attachment
//! needs (see [`waggle_datapath::DatapathError`]).

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use axum::{Router, http::StatusCode, routing::get};
use tokio::sync::watch;
use waggle_datapath::{
    Datapath, DatapathError,
    lb_maps::{LbMapError, PinnedLbMaps},
    nodeport::TcAttachment,
    socket_lb::SocketLb,
};

use crate::{
    healthcheck::HealthCheckServers,
    metrics::ProxyMetrics,
    netlink::NetlinkError,
    node_addresses::{AddressPolicy, Cidr, NodeAddresses, watch::AddressWatcher},
    pod_interfaces::{InterfacePattern, PodInterfaceConfig, PodInterfaceError, PodInterfaces},
    runner::{RunnerConfig, SyncReport, SyncRunner},
    source::{self, TrackerHandle},
    sync::Syncer,
    translate::NodeInfo,
};

/// Where Services and EndpointSlices come from.
#[derive(Clone, Debug)]
pub enum SourceConfig {
    /// The Kubernetes API (kubeconfig path, or in-cluster/default configuration).
    Kubernetes { kubeconfig: Option<PathBuf> },
    /// YAML files under a path, polled for changes.
    Files { path: PathBuf, poll: Duration },
}

/// Everything `waggle proxy` needs.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub node_name: String,
    /// Fixed NodePort and SNAT addresses (`--node-ip`); empty means "follow the
    /// addresses of this network namespace" (narrowed by `node_port_cidrs`).
    pub node_addresses: Vec<IpAddr>,
    /// `--nodeport-addresses`: the followed addresses NodePorts answer on (empty: all).
    pub node_port_cidrs: Vec<Cidr>,
    /// Interfaces that get the per-packet fallback `tc_pod_egress` (empty: none).
    pub per_packet_interfaces: Vec<InterfacePattern>,
    pub source: SourceConfig,
    /// cgroup v2 directory the socket-LB programs attach to.
    pub cgroup: PathBuf,
    /// Interface for the per-packet NodePort program.
    pub uplink: Option<String>,
    pub pin_dir: PathBuf,
    pub metrics_addr: Option<SocketAddr>,
    pub healthz_addr: Option<SocketAddr>,
    /// Address the health-check node ports bind.
    pub health_check_bind: IpAddr,
    pub runner: RunnerConfig,
}

/// Why the daemon could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Datapath(Box<DatapathError>),
    #[error(transparent)]
    Maps(#[from] LbMapError),
    #[error(transparent)]
    Source(#[from] source::kube::KubeSourceError),
    #[error("{what}: cannot listen on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the cgroup {0} does not exist (socket LB needs a cgroup v2 directory)")]
    NoCgroup(PathBuf),
    #[error("the uplink `{0}` does not exist in this network namespace (--uplink)")]
    NoUplink(String),
    #[error("following this node's addresses: {0}")]
    NodeAddresses(#[source] NetlinkError),
    #[error("per-packet fallback on pod interfaces: {0}")]
    PodInterfaces(#[from] PodInterfaceError),
}

impl From<DatapathError> for DaemonError {
    fn from(error: DatapathError) -> Self {
        Self::Datapath(Box::new(error))
    }
}

/// The loaded data path with its programs attached (links pinned under the pin dir).
pub struct Attached {
    pub datapath: Datapath,
    pub socket_lb: SocketLb,
    /// The uplink's per-packet programs (empty without an uplink).
    pub nodeport: Vec<TcAttachment>,
}

/// Loads the data path from `pin_dir` and attaches it. Runs in the calling thread's
/// network namespace (the uplink must exist there).
pub fn attach(
    pin_dir: &Path,
    cgroup: &Path,
    uplink: Option<&str>,
) -> Result<Attached, DaemonError> {
    if !cgroup.is_dir() {
        return Err(DaemonError::NoCgroup(cgroup.to_owned()));
    }
    let mut datapath = Datapath::load_pinned(pin_dir)?;
    let (socket_lb, outcomes) = datapath.attach_socket_lb_pinned(cgroup)?;
    for (program, outcome) in outcomes {
        tracing::info!(program, ?outcome, cgroup = %cgroup.display(), "socket LB attached");
    }
    // Both uplink programs: ingress (NodePort/externalIP DNAT+SNAT, remote replies)
    // and egress (replies of local backends).
    let mut nodeport = Vec::new();
    if let Some(interface) = uplink {
        for (attachment, outcome) in datapath.attach_uplink_pinned(interface)? {
            let program = attachment.program().name();
            tracing::info!(interface, program, ?outcome, "NodePort program attached");
            nodeport.push(attachment);
        }
    }
    Ok(Attached {
        datapath,
        socket_lb,
        nodeport,
    })
}

/// Runs the daemon until SIGINT/SIGTERM. Pins stay in place on exit, so a restart
/// continues where this one stopped.
pub async fn run(config: DaemonConfig) -> Result<(), DaemonError> {
    // Configure the API client before touching the kernel, so a bad kubeconfig fails
    // without attaching anything.
    let handle = TrackerHandle::new();
    let source: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
        match &config.source {
            SourceConfig::Kubernetes { kubeconfig } => {
                let client = source::kube::client(kubeconfig.as_deref()).await?;
                Box::pin(source::kube::run(client, handle.clone()))
            }
            SourceConfig::Files { path, poll } => {
                Box::pin(source::file::run(path.clone(), handle.clone(), *poll))
            }
        };
    let (node_addresses, address_watcher) = node_addresses(&config).await?;
    tracing::info!(
        node = %config.node_name,
        node_port = ?node_addresses.node_port,
        snat_v4 = ?node_addresses.snat_v4,
        snat_v6 = ?node_addresses.snat_v6,
        following = address_watcher.is_some(),
        pin_dir = %config.pin_dir.display(),
        "starting proxy"
    );
    // The first sync applies the addresses (NodePort entries and SNAT source).
    handle.set_node_addresses(node_addresses.clone());
    let Attached {
        datapath,
        socket_lb,
        nodeport,
    } = attach(&config.pin_dir, &config.cgroup, config.uplink.as_deref())?;
    let maps = PinnedLbMaps::from_ebpf(datapath.ebpf())?;
    let node_config = PinnedLbMaps::from_ebpf(datapath.ebpf())?;
    let counters = PinnedLbMaps::from_ebpf(datapath.ebpf())?;
    // The fallback watcher owns the data path (it loads and attaches programs); else
    // the daemon keeps it until exit.
    let (pod_interfaces, _datapath) = if config.per_packet_interfaces.is_empty() {
        (None, Some(datapath))
    } else {
        let pods = PodInterfaces::start(
            PodInterfaceConfig {
                patterns: config.per_packet_interfaces.clone(),
                uplink: config.uplink.clone(),
            },
            datapath,
        )
        .await?;
        tracing::info!(patterns = ?config.per_packet_interfaces, attached = ?pods.attached().collect::<Vec<_>>(), "per-packet fallback on pod interfaces");
        (Some(pods), None)
    };

    let source_task = tokio::spawn(source);

    let node = NodeInfo {
        name: config.node_name.clone(),
        addresses: node_addresses.node_port,
    };
    let runner = SyncRunner::new(Syncer::new(maps, node), handle.clone(), config.runner)
        .with_node_config(Box::new(node_config));
    let reports = runner.subscribe();
    let metrics = Arc::new(ProxyMetrics::new(Some(Box::new(counters)), reports.clone()));
    let mut tasks = vec![
        source_task,
        tokio::spawn(observe(metrics.clone(), reports.clone())),
    ];
    if let Some(watcher) = address_watcher {
        tasks.push(tokio::spawn(watcher.run(handle)));
    }
    if let Some(pods) = pod_interfaces {
        tasks.push(tokio::spawn(pods.run()));
    }
    if let Some(addr) = config.metrics_addr {
        let metrics = metrics.clone();
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            "content-type",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                }
            }),
        );
        tasks.push(serve("metrics", addr, app).await?);
    }
    if let Some(addr) = config.healthz_addr {
        let reports = reports.clone();
        let app = Router::new().route("/healthz", get(move || healthz(reports.clone())));
        tasks.push(serve("healthz", addr, app).await?);
    }
    tasks.push(tokio::spawn(
        HealthCheckServers::new(config.health_check_bind).run(reports),
    ));
    tasks.push(tokio::spawn(runner.run()));

    shutdown_signal().await;
    tracing::info!("stopping; maps and programs stay pinned for the next start");
    for task in tasks {
        task.abort();
    }
    drop((socket_lb, nodeport));
    Ok(())
}

/// The node's addresses: fixed (`--node-ip`), or followed through netlink (then the
/// watcher to run).
async fn node_addresses(
    config: &DaemonConfig,
) -> Result<(NodeAddresses, Option<AddressWatcher>), DaemonError> {
    if !config.node_addresses.is_empty() {
        return Ok((NodeAddresses::fixed(&config.node_addresses), None));
    }
    let uplink_index = match &config.uplink {
        Some(uplink) => Some(
            nix::net::if_::if_nametoindex(uplink.as_str())
                .map_err(|_| DaemonError::NoUplink(uplink.clone()))?,
        ),
        None => None,
    };
    let policy = AddressPolicy {
        node_port_cidrs: config.node_port_cidrs.clone(),
        uplink_index,
    };
    let watcher = AddressWatcher::start(policy)
        .await
        .map_err(DaemonError::NodeAddresses)?;
    Ok((watcher.current().clone(), Some(watcher)))
}

async fn observe(metrics: Arc<ProxyMetrics>, mut reports: watch::Receiver<Arc<SyncReport>>) {
    while reports.changed().await.is_ok() {
        let report = reports.borrow_and_update().clone();
        metrics.observe(&report);
    }
}

async fn healthz(reports: watch::Receiver<Arc<SyncReport>>) -> (StatusCode, String) {
    let report = reports.borrow().clone();
    match &report.last {
        Some(Ok(stats)) => (
            StatusCode::OK,
            format!(
                "{{\"healthy\":true,\"syncs\":{},\"lastSyncMillis\":{:.3}}}\n",
                report.syncs,
                stats.duration.as_secs_f64() * 1000.0
            ),
        ),
        Some(Err(error)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"healthy": false, "syncs": report.syncs, "error": error})
                .to_string(),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"healthy\":false,\"syncs\":0}\n".to_owned(),
        ),
    }
}

async fn serve(
    what: &'static str,
    addr: SocketAddr,
    app: Router,
) -> Result<tokio::task::JoinHandle<()>, DaemonError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind { what, addr, source })?;
    tracing::info!(what, %addr, "listening");
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, what, "HTTP server stopped");
        }
    }))
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
