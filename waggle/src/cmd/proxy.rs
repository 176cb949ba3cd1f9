//! `waggle proxy`: the per-node service proxy daemon (see `waggle_proxy::daemon`).

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use anyhow::Context as _;
use waggle_proxy::{
    daemon::{self, DaemonConfig, SourceConfig},
    node_addresses::Cidr,
    pod_interfaces::InterfacePattern,
    runner::RunnerConfig,
};

#[derive(clap::Args)]
pub struct Args {
    /// This node's name: endpoints whose `nodeName` matches are local.
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// Kubeconfig to watch Services and EndpointSlices with (default: in-cluster or
    /// $KUBECONFIG).
    #[arg(long, conflicts_with = "from_files")]
    kubeconfig: Option<PathBuf>,
    /// Read Services and EndpointSlices from a YAML file or directory instead of the
    /// API (re-read when the files change).
    #[arg(long)]
    from_files: Option<PathBuf>,
    /// How often the file source checks for changes.
    #[arg(long, default_value = "500ms", value_parser = super::parse_duration)]
    file_poll: Duration,
    /// cgroup v2 directory whose processes get socket load balancing.
    #[arg(long, default_value = "/sys/fs/cgroup/unified")]
    cgroup: PathBuf,
    /// Interface for the per-packet NodePort program (traffic from outside the node).
    #[arg(long)]
    uplink: Option<String>,
    /// Where maps and program links are pinned (kept across restarts).
    #[arg(long)]
    pin_dir: Option<PathBuf>,
    /// Fixed addresses on which NodePorts answer, the first of each family also the
    /// SNAT source (repeatable). Default: follow every non-loopback, non-link-local
    /// address of this network namespace as interfaces gain and lose them.
    #[arg(long = "node-ip")]
    node_ips: Vec<IpAddr>,
    /// Like kube-proxy's flag: CIDRs (comma-separated or repeated) narrowing the
    /// followed node addresses NodePorts answer on. Default: all of them.
    #[arg(long, value_delimiter = ',', conflicts_with = "node_ips")]
    nodeport_addresses: Vec<Cidr>,
    /// Attach the per-packet service fallback (`tc_pod_egress`) to host-side pod
    /// interfaces matching these globs (comma-separated or repeated, e.g. `veth*`),
    /// including ones created later; for pods without socket LB.
    #[arg(long, value_delimiter = ',')]
    per_packet_interfaces: Vec<InterfacePattern>,
    /// Prometheus metrics address (`/metrics`); "off" to disable.
    #[arg(long, default_value = "127.0.0.1:10249")]
    metrics_addr: String,
    /// Health endpoint address (`/healthz`); "off" to disable.
    #[arg(long, default_value = "127.0.0.1:10256")]
    healthz_addr: String,
    /// Address the healthCheckNodePort listeners of ETP Local services bind.
    #[arg(long, default_value = "0.0.0.0")]
    health_check_bind: IpAddr,
    /// Minimum time between two syncs.
    #[arg(long, default_value = "20ms", value_parser = super::parse_duration)]
    min_sync_interval: Duration,
}

/// A listen address, or `None` for "off".
fn parse_addr(flag: &str, value: &str) -> anyhow::Result<Option<SocketAddr>> {
    if value == "off" {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .with_context(|| format!("{flag} `{value}`: expected ADDRESS:PORT or off"))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let source = match (args.from_files, args.kubeconfig) {
        (Some(path), _) => {
            anyhow::ensure!(
                path.exists(),
                "--from-files {}: no such file or directory",
                path.display()
            );
            SourceConfig::Files {
                path,
                poll: args.file_poll,
            }
        }
        (None, kubeconfig) => SourceConfig::Kubernetes { kubeconfig },
    };
    let pin_dir = args
        .pin_dir
        .unwrap_or_else(|| PathBuf::from(waggle_ebpf_common::maps::PIN_ROOT).join(&args.node_name));
    let config = DaemonConfig {
        node_name: args.node_name,
        node_addresses: args.node_ips,
        node_port_cidrs: args.nodeport_addresses,
        per_packet_interfaces: args.per_packet_interfaces,
        source,
        cgroup: args.cgroup,
        uplink: args.uplink,
        pin_dir,
        metrics_addr: parse_addr("--metrics-addr", &args.metrics_addr)?,
        healthz_addr: parse_addr("--healthz-addr", &args.healthz_addr)?,
        health_check_bind: args.health_check_bind,
        runner: RunnerConfig {
            min_interval: args.min_sync_interval,
            ..RunnerConfig::default()
        },
    };
    daemon::run(config).await.context("waggle proxy")
}
