//! `waggle server`: the Kubernetes API server on an embedded SQLite store or etcd, with
//! the controllers (`waggle controllers`) and the scheduler (`waggle scheduler`)
//! in-process.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use waggle_apiserver::alloc::Cidr;

#[derive(clap::Args)]
pub struct Args {
    /// Directory for certificates, the admin kubeconfig and the embedded database.
    #[arg(long, default_value = "/var/lib/waggle")]
    data_dir: PathBuf,
    /// Storage: `sqlite` (the embedded default, in the data dir), `sqlite:///path.db`,
    /// or `etcd://host:port[,host:port][/prefix/]`.
    #[arg(long, default_value = "sqlite")]
    store: String,
    /// HTTPS address.
    #[arg(long, default_value = "127.0.0.1:6443")]
    bind: SocketAddr,
    /// Also serve plain HTTP on this loopback port (development only).
    #[arg(long)]
    insecure_port: Option<u16>,
    /// Service CIDRs, comma-separated (primary family first; at most one per family).
    #[arg(long, default_value = "10.96.0.0/12", value_delimiter = ',')]
    service_cidr: Vec<String>,
    /// Extra names or addresses for the serving certificate.
    #[arg(long, value_delimiter = ',')]
    tls_san: Vec<String>,
    /// The controllers run in-process, as `waggle controllers` would run them.
    #[command(flatten)]
    controllers: super::controllers::Selection,
    /// Run the scheduler in-process (`--scheduler=false` leaves pods for another one).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    scheduler: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let spec = if args.store == "sqlite" {
        format!("sqlite://{}", args.data_dir.join("state.db").display())
    } else {
        args.store.clone()
    };
    let store = waggle_store::open(&spec).await.with_context(|| format!("opening store {spec}"))?;
    let compaction = waggle_store::spawn_auto_compaction(store.clone(), waggle_store::CompactionPolicy::default());
    let mut cidrs = Vec::new();
    for text in &args.service_cidr {
        let cidr = Cidr::parse(text).map_err(anyhow::Error::msg)?;
        if cidrs.iter().any(|c: &Cidr| c.family() == cidr.family()) {
            anyhow::bail!("--service-cidr: at most one {} range", cidr.family());
        }
        cidrs.push(cidr);
    }
    let mut config = waggle_apiserver::Config::new(args.data_dir.clone(), store);
    config.bind = args.bind;
    config.insecure_bind = args.insecure_port.map(|port| SocketAddr::from(([127, 0, 0, 1], port)));
    config.service_cidrs = cidrs;
    config.extra_sans = args.tls_san;
    let running = waggle_apiserver::start(config).await.context("starting the API server")?;
    eprintln!("API server at {} (kubeconfig: {})", running.url(), running.kubeconfig.display());
    if let Some(http) = running.http_addr {
        eprintln!("plain HTTP (development) at http://{http}");
    }
    // The cluster CA signs approved CertificateSigningRequests unless told otherwise.
    let mut selection = args.controllers.clone();
    if selection.cluster_signing_cert_file.is_none() {
        selection.cluster_signing_cert_file = Some(args.data_dir.join("pki/ca.crt"));
        selection.cluster_signing_key_file = Some(args.data_dir.join("pki/ca.key"));
    }
    let controllers = async {
        let config = super::controllers::from_file(&running.kubeconfig).await?;
        super::controllers::run_with(config, &selection).await?;
        // None were chosen: serve on.
        std::future::pending().await
    };
    let scheduler = async {
        if args.scheduler {
            let config = super::controllers::from_file(&running.kubeconfig).await?;
            super::scheduler::run_with(config, waggle_scheduler::DEFAULT_NAME.into()).await?;
        }
        std::future::pending().await
    };
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal.context("waiting for Ctrl-C")?,
        result = controllers => {
            running.shutdown().await;
            compaction.abort();
            return result;
        }
        result = scheduler => {
            running.shutdown().await;
            compaction.abort();
            return result;
        }
    }
    tracing::info!("shutting down");
    running.shutdown().await;
    compaction.abort();
    Ok(())
}
