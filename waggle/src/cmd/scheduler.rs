//! `waggle scheduler`: the scheduler (binds pending pods to nodes) against any
//! Kubernetes API server. `waggle server` runs the same scheduler in-process.

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Kubeconfig for the API server (default: in-cluster, then $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The `spec.schedulerName` of the pods to schedule.
    #[arg(long, default_value = waggle_scheduler::DEFAULT_NAME)]
    scheduler_name: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = match &args.kubeconfig {
        Some(path) => super::controllers::from_file(path).await?,
        None => kube::Config::infer().await.context("finding the API server (no --kubeconfig)")?,
    };
    tokio::select! {
        result = run_with(config, args.scheduler_name) => result,
        signal = tokio::signal::ctrl_c() => signal.context("waiting for Ctrl-C"),
    }
}

/// Schedules pods named for `scheduler_name` with `config` until a watch ends.
pub async fn run_with(config: kube::Config, scheduler_name: String) -> anyhow::Result<()> {
    let client = kube::Client::try_from(config).context("building the API client")?;
    let options = waggle_scheduler::Options { scheduler_name };
    waggle_scheduler::run(client, options).await.context("scheduler")
}
