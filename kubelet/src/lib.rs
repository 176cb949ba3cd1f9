//! Waggle's kubelet: the node agent. It speaks only the Kubernetes API (kube-rs) on one
//! side and the Container Runtime Interface on the other, so it runs against Waggle's
//! API server or any conformant one, with containerd or any CRI runtime.
//!
//! - [`node`]: registers the Node and keeps it alive (status and Lease heartbeats).
//! - [`pods`]: runs the pods bound to the node (sandboxes, init containers,
//!   containers, restart policy and back-off, volumes, environment, termination)
//!   and reports their status.
//! - [`server`]: the kubelet API the API server proxies logs, exec, attach and
//!   port-forward to.
//! - [`runtime`]: the CRI client.

mod cgroups;
mod error;
pub mod mounts;
pub mod node;
pub mod pods;
pub mod runtime;
pub mod server;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

pub use error::Error;
use kube::Client;

use self::pods::probes::Prober;
use self::pods::spec::Layout;
use self::pods::sync::Context;
use self::runtime::Runtime;

/// The version the Node reports, matching the API server's.
pub const KUBELET_VERSION: &str = "v1.32.0";

/// How the kubelet runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub node_name: String,
    /// The node's address: its `InternalIP`, where the kubelet API listens.
    pub node_ip: IpAddr,
    pub node_labels: BTreeMap<String, String>,
    /// `spec.podCIDR`, when the node is given one.
    pub pod_cidr: Option<String>,
    /// The CRI runtime's socket (`/run/containerd/containerd.sock`).
    pub runtime_endpoint: PathBuf,
    /// The kubelet's directory (`/var/lib/kubelet`).
    pub root_dir: PathBuf,
    /// Where pods' logs go (`/var/log/pods`).
    pub log_dir: PathBuf,
    /// The cgroup pods are placed under.
    pub cgroup_root: String,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub resolv_conf: PathBuf,
    /// The kubelet API's port (10250).
    pub port: u16,
    /// A serving certificate and key (PEM); self-signed when absent.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub max_pods: u32,
    /// How often API-backed volumes (ConfigMaps, Secrets, the downward API) are
    /// read again (upstream's `--sync-frequency`, 1 minute).
    pub sync_frequency: std::time::Duration,
}

/// Registers the node, then runs its pods and serves the kubelet API until one of
/// them fails.
pub async fn run(client: Client, options: Options) -> Result<(), Error> {
    let runtime = Runtime::connect(&options.runtime_endpoint).await?;
    let runtime_version = runtime.version().await?;
    tracing::info!(runtime = %runtime_version, node = %options.node_name, "container runtime ready");
    let facts = node::NodeFacts::read(runtime_version.clone());
    let nodes = kube::Api::all(client.clone());
    node::register(&nodes, &options, &facts).await?;

    let serve = server::ServeOptions {
        addr: SocketAddr::new(options.node_ip, options.port),
        cert: options.tls.clone(),
        names: vec![options.node_name.clone(), options.node_ip.to_string()],
    };
    let events = waggle_controllers::events::Events::new(client.clone(), "kubelet");
    let context = Arc::new(Context {
        client: client.clone(),
        runtime: runtime.clone(),
        runtime_name: runtime_version.split("://").next().unwrap_or("containerd").to_owned(),
        layout: Layout {
            log_dir: options.log_dir.clone(),
            cgroup_root: options.cgroup_root.clone(),
            cluster_dns: options.cluster_dns.clone(),
            cluster_domain: options.cluster_domain.clone(),
            host_resolv_conf: options.resolv_conf.clone(),
        },
        root_dir: options.root_dir.clone(),
        node_ip: options.node_ip.to_string(),
        events: events.clone(),
        prober: Prober::new(runtime.clone(), events)?,
        sync_frequency: options.sync_frequency,
    });
    tokio::select! {
        result = server::serve(runtime, serve) => result,
        result = pods::run(context, &options.node_name) => result,
        result = node::keep_alive(client, &options, &facts) => result,
    }
}
