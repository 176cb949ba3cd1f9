//! `waggle`: the user-facing binary. Each subcommand lives in `cmd/` and is a thin
//! edge over a library crate (`waggle-apiserver`, `waggle-controllers`,
//! `waggle-scheduler`, `waggle-kubelet`, `waggle-proxy`, `waggle-datapath`).

mod cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "waggle", version, about = "Waggle: Kubernetes with an eBPF data path")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Kubernetes API server.
    Server(cmd::server::Args),
    /// Run the controllers (Deployments, ReplicaSets, endpoints, garbage collection...) against an API server.
    Controllers(cmd::controllers::Args),
    /// Run the scheduler (binds pending pods to nodes) against an API server.
    Scheduler(cmd::scheduler::Args),
    /// Run the node agent (registers the node, runs its pods through containerd, serves logs and exec).
    Kubelet(cmd::kubelet::Args),
    /// Run the per-node service proxy (eBPF load balancing).
    Proxy(cmd::proxy::Args),
    /// Inspect the eBPF maps of a running proxy.
    #[command(subcommand)]
    Bpf(cmd::bpf::Command),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // rustls is compiled with more than one crypto provider in this binary; TLS clients
    // (kube-rs in `waggle proxy`) need the process default chosen before first use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match cli.command {
            Command::Server(args) => cmd::server::run(args).await,
            Command::Controllers(args) => cmd::controllers::run(args).await,
            Command::Scheduler(args) => cmd::scheduler::run(args).await,
            Command::Kubelet(args) => cmd::kubelet::run(args).await,
            Command::Proxy(args) => cmd::proxy::run(args).await,
            Command::Bpf(command) => cmd::bpf::run(command).await,
        }
    })
}
