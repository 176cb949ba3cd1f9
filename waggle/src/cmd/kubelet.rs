//! `waggle kubelet`: the node agent. Registers the node with the API server, runs the
//! pods bound to it through a CRI runtime (containerd) and serves the kubelet API
//! (logs, exec, attach, port-forward) on the node's address.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Kubeconfig for the API server (default: in-cluster, then $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The Node's name.
    #[arg(long)]
    node_name: String,
    /// The node's address: its InternalIP, where the kubelet API listens.
    #[arg(long)]
    node_ip: IpAddr,
    /// Labels the node registers with (`key=value,...`).
    #[arg(long, value_delimiter = ',', value_parser = label)]
    node_labels: Vec<(String, String)>,
    /// The node's pod CIDR (`spec.podCIDR`), if it is given one here.
    #[arg(long)]
    pod_cidr: Option<String>,
    /// The CRI runtime's socket.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    container_runtime_endpoint: PathBuf,
    /// The kubelet's directory (pods' volumes).
    #[arg(long, default_value = "/var/lib/kubelet")]
    root_dir: PathBuf,
    /// Where pods' container logs are written.
    #[arg(long, default_value = "/var/log/pods")]
    pod_log_dir: PathBuf,
    /// The cgroup pods are placed under.
    #[arg(long, default_value = "/kubepods")]
    cgroup_root: String,
    /// The cluster DNS servers pods with `dnsPolicy: ClusterFirst` use.
    #[arg(long, value_delimiter = ',')]
    cluster_dns: Vec<String>,
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// The resolver configuration pods with `dnsPolicy: Default` inherit.
    #[arg(long, default_value = "/etc/resolv.conf")]
    resolv_conf: PathBuf,
    /// The kubelet API's port.
    #[arg(long, default_value_t = 10250)]
    port: u16,
    /// Serving certificate (PEM); without it and the key, a self-signed one is made.
    #[arg(long, requires = "tls_private_key_file")]
    tls_cert_file: Option<PathBuf>,
    #[arg(long, requires = "tls_cert_file")]
    tls_private_key_file: Option<PathBuf>,
    #[arg(long, default_value_t = 110)]
    max_pods: u32,
    /// How often the pods' ConfigMap, Secret and downward API volumes are read again.
    #[arg(long, default_value = "1m", value_parser = super::parse_duration)]
    sync_frequency: std::time::Duration,
}

fn label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not key=value"))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = match &args.kubeconfig {
        Some(path) => super::controllers::from_file(path).await?,
        None => kube::Config::infer()
            .await
            .context("finding the API server (no --kubeconfig)")?,
    };
    let client = kube::Client::try_from(config).context("building the API client")?;
    let options = waggle_kubelet::Options {
        node_name: args.node_name,
        node_ip: args.node_ip,
        node_labels: args.node_labels.into_iter().collect::<BTreeMap<_, _>>(),
        pod_cidr: args.pod_cidr,
        runtime_endpoint: args.container_runtime_endpoint,
        root_dir: args.root_dir,
        log_dir: args.pod_log_dir,
        cgroup_root: args.cgroup_root,
        cluster_dns: args.cluster_dns,
        cluster_domain: args.cluster_domain,
        resolv_conf: args.resolv_conf,
        port: args.port,
        tls: args.tls_cert_file.zip(args.tls_private_key_file),
        max_pods: args.max_pods,
        sync_frequency: args.sync_frequency,
    };
    tokio::select! {
        result = waggle_kubelet::run(client, options) => result.context("kubelet"),
        signal = tokio::signal::ctrl_c() => signal.context("waiting for Ctrl-C"),
    }
}
