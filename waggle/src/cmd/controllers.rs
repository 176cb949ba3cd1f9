//! `waggle controllers`: the controller manager (workloads, endpoints, disruption
//! budgets, certificate signing, garbage collection, namespace defaults) against any
//! Kubernetes API server. `waggle server` runs the same controllers in-process.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(clap::Args)]
pub struct Args {
    /// Kubeconfig for the API server (default: in-cluster, then $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    selection: Selection,
}

/// Which controllers run, shared by `waggle controllers` and `waggle server`.
#[derive(clap::Args, Clone)]
pub struct Selection {
    /// Controllers to run: `*` for all, a name to add one, `-name` to leave one out
    /// (e.g. `*,-deployment`); an empty list runs none. Names: deployment, replicaset,
    /// statefulset, daemonset, endpointslice, endpoint, garbagecollector, podgc,
    /// disruption, job, cronjob, ttl-after-finished, csrsigning, serviceaccount,
    /// root-ca-cert-publisher.
    #[arg(long, default_value = "*", value_delimiter = ',')]
    controllers: Vec<String>,
    /// CA bundle (PEM) published as `kube-root-ca.crt` in every namespace (default: the
    /// CA the client trusts for the API server).
    #[arg(long)]
    root_ca_file: Option<PathBuf>,
    /// CA certificate (PEM) csrsigning issues approved CertificateSigningRequests with
    /// (`waggle server`: the cluster CA); without it and the key, csrsigning does not run.
    #[arg(long, requires = "cluster_signing_key_file")]
    pub cluster_signing_cert_file: Option<PathBuf>,
    /// The private key (PEM) of `--cluster-signing-cert-file`.
    #[arg(long, requires = "cluster_signing_cert_file")]
    pub cluster_signing_key_file: Option<PathBuf>,
    /// Finished pods (Succeeded or Failed) podgc keeps; beyond it deletes the evicted,
    /// then the oldest. 0 keeps them all.
    #[arg(long, default_value_t = waggle_controllers::pod_gc::DEFAULT_TERMINATED_POD_THRESHOLD)]
    terminated_pod_gc_threshold: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = match &args.kubeconfig {
        Some(path) => from_file(path).await?,
        None => kube::Config::infer().await.context("finding the API server (no --kubeconfig)")?,
    };
    tokio::select! {
        result = run_with(config, &args.selection) => result,
        signal = tokio::signal::ctrl_c() => signal.context("waiting for Ctrl-C"),
    }
}

/// A client configuration from a kubeconfig file.
pub async fn from_file(path: &Path) -> anyhow::Result<kube::Config> {
    let kubeconfig = Kubeconfig::read_from(path).with_context(|| format!("reading kubeconfig {}", path.display()))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("using kubeconfig {}", path.display()))
}

/// Runs the selected controllers with `config` until one fails.
pub async fn run_with(config: kube::Config, selection: &Selection) -> anyhow::Result<()> {
    let controllers = waggle_controllers::select(&selection.controllers).map_err(anyhow::Error::msg)?;
    let root_ca = match &selection.root_ca_file {
        Some(path) => Some(read(path)?),
        None => config.root_cert.as_deref().map(pem_bundle),
    };
    let signing = match (&selection.cluster_signing_cert_file, &selection.cluster_signing_key_file) {
        (Some(cert), Some(key)) => Some(waggle_controllers::certificate_signer::SigningCa {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            duration: waggle_controllers::certificate_signer::DEFAULT_DURATION,
        }),
        _ => None,
    };
    let client = kube::Client::try_from(config).context("building the API client")?;
    let pod_gc = waggle_controllers::pod_gc::Settings {
        terminated_pod_threshold: selection.terminated_pod_gc_threshold,
        ..Default::default()
    };
    let options = waggle_controllers::Options { controllers, root_ca, signing, pod_gc };
    waggle_controllers::run(client, options).await.context("controllers")
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// DER certificates as a PEM bundle.
fn pem_bundle(certificates: &[Vec<u8>]) -> String {
    let mut pem = String::new();
    for der in certificates {
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}
