//! Starting the API server: certificates, bootstrap objects, the HTTPS listener and
//! the optional plain-HTTP development listener, the admin kubeconfig.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use waggle_apimachinery::registry;
use waggle_store::{ListOptions, Store, StoreError};

use crate::alloc::{Allocator, Cidr, NODE_PORTS};
use crate::authn::{Authenticator, InsecurePort, peer::ClientCertAcceptor, tokens::Issuer};
use crate::authz::{Authorizer, RbacGate, index::Index};
use crate::metrics::Metrics;
use crate::state::{ApiState, Settings, Shared};
use crate::{keys, kubeconfig, lifecycle, namespaces, objects, router, tls};

/// How to run the server.
pub struct Config {
    pub data_dir: PathBuf,
    pub store: Arc<dyn Store>,
    /// The HTTPS address (port 0 picks a free one).
    pub bind: SocketAddr,
    /// A plain-HTTP address (development only; keep it on loopback).
    pub insecure_bind: Option<SocketAddr>,
    /// Service CIDRs, the primary family first.
    pub service_cidrs: Vec<Cidr>,
    /// Extra names and addresses for the serving certificate.
    pub extra_sans: Vec<String>,
    pub settings: Settings,
}

impl Config {
    pub fn new(data_dir: PathBuf, store: Arc<dyn Store>) -> Self {
        Config {
            data_dir,
            store,
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 6443),
            insecure_bind: None,
            service_cidrs: vec![Cidr::parse("10.96.0.0/12").expect("valid default CIDR")],
            extra_sans: Vec::new(),
            settings: Settings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no service CIDR configured")]
    NoServiceCidr,
}

/// A running server.
pub struct Running {
    /// Where HTTPS is served.
    pub https_addr: SocketAddr,
    /// Where plain HTTP is served, if enabled.
    pub http_addr: Option<SocketAddr>,
    /// The admin kubeconfig written at start.
    pub kubeconfig: PathBuf,
    pub state: Shared,
    handle: axum_server::Handle,
    tasks: Vec<JoinHandle<()>>,
    /// Keeps the RBAC index current.
    rbac_sync: JoinHandle<()>,
    /// Keeps the served custom resources current.
    definitions_sync: JoinHandle<()>,
}

impl Running {
    /// The `https://...` URL clients use.
    pub fn url(&self) -> String {
        format!("https://{}", client_addr(self.https_addr))
    }

    /// Waits until the listeners stop (they run until shutdown or an I/O failure).
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
        self.rbac_sync.abort();
        self.definitions_sync.abort();
    }

    /// Stops accepting and closes connections.
    pub async fn shutdown(self) {
        self.handle.shutdown();
        self.rbac_sync.abort();
        self.definitions_sync.abort();
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The address a local client dials for a bind address.
fn client_addr(bind: SocketAddr) -> SocketAddr {
    match bind.ip() {
        ip if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bind.port()),
        _ => bind,
    }
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, StartError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| StartError::Bind { addr, source })?;
    Ok(listener)
}

/// Starts the server; returns once it is listening.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    crate::malloc::tune();
    if config.service_cidrs.is_empty() {
        return Err(StartError::NoServiceCidr);
    }
    let https = bind(config.bind)?;
    let https_addr = https.local_addr().map_err(|source| StartError::Bind {
        addr: config.bind,
        source,
    })?;
    let mut hosts = vec![
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        "::1".to_owned(),
        "kubernetes".to_owned(),
        "kubernetes.default".to_owned(),
        "kubernetes.default.svc".to_owned(),
    ];
    if !https_addr.ip().is_unspecified() && !https_addr.ip().is_loopback() {
        hosts.push(https_addr.ip().to_string());
    }
    hosts.push(config.service_cidrs[0].nth(0).to_string());
    hosts.extend(config.extra_sans.iter().cloned());
    let material = tls::load_or_create(&config.data_dir.join("pki"), &hosts)?;
    let tokens = Arc::new(Issuer::load_or_create(&config.data_dir.join("pki"))?);

    let rbac = Arc::new(Index::new(config.store.clone()));
    let authorizer = Arc::new(Authorizer::new(rbac.clone()));
    let state: Shared = Arc::new(ApiState {
        fanout: crate::fanout::Fanout::new(config.store.clone()),
        store: config.store,
        alloc: Allocator::new(config.service_cidrs.clone(), NODE_PORTS),
        metrics: Metrics::default(),
        settings: config.settings,
        tokens: tokens.clone(),
        authorizer: authorizer.clone(),
        definitions: Default::default(),
    });
    bootstrap(&state).await?;
    crate::authz::bootstrap::ensure(state.store.as_ref()).await?;
    let rbac_sync = rbac.clone().follow(rbac.load().await?);
    let definitions_sync = crate::crd::follow(state.clone(), crate::crd::refresh(&state).await?);

    let url = format!("https://{}", client_addr(https_addr));
    let kubeconfig_path = config.data_dir.join("admin.kubeconfig");
    let token = admin_token(&config.data_dir.join("pki").join("admin.token"))?;
    let admin = crate::admin_cert::load_or_create(&config.data_dir.join("pki"))?;
    write_atomically(
        &kubeconfig_path,
        kubeconfig::admin(&url, &material.ca_cert, &token, &admin).as_bytes(),
    )
    .map_err(|source| StartError::Write {
        path: kubeconfig_path.clone(),
        source,
    })?;

    let app = router::router(
        state.clone(),
        Arc::new(RbacGate::new(
            Authenticator::new(token, tokens, rbac.clone()),
            authorizer,
        )),
        client_addr(https_addr).to_string(),
    );
    let handle = axum_server::Handle::new();
    let rustls_config =
        axum_server::tls_rustls::RustlsConfig::from_config(tls::server_config(&material)?);
    let server = axum_server::from_tcp_rustls(https, rustls_config)
        .map(ClientCertAcceptor::new)
        .handle(handle.clone());
    let https_app = app.clone();
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(e) = server.serve(https_app.into_make_service()).await {
            tracing::error!(error = %e, "HTTPS listener failed");
        }
    })];
    let mut http_addr = None;
    if let Some(addr) = config.insecure_bind {
        let listener = tokio::net::TcpListener::from_std(bind(addr)?)
            .map_err(|source| StartError::Bind { addr, source })?;
        http_addr = Some(
            listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?,
        );
        tasks.push(tokio::spawn(async move {
            // Requests here are the cluster admin's (see `InsecurePort`).
            let app = app.layer(axum::Extension(InsecurePort));
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "HTTP listener failed");
            }
        }));
    }
    tracing::info!(%url, kubeconfig = %kubeconfig_path.display(), "API server listening");
    Ok(Running {
        https_addr,
        http_addr,
        kubeconfig: kubeconfig_path,
        state,
        handle,
        tasks,
        rbac_sync,
        definitions_sync,
    })
}

/// The admin's bearer token, created once and kept beside the certificates.
fn admin_token(path: &std::path::Path) -> Result<String, StartError> {
    match std::fs::read_to_string(path) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        _ => {
            let token = uuid::Uuid::new_v4().simple().to_string();
            std::fs::write(path, &token).map_err(|source| StartError::Write {
                path: path.into(),
                source,
            })?;
            Ok(token)
        }
    }
}

/// Allocation state from stored Services, system namespaces, the `kubernetes` Service,
/// and resumed namespace clean-ups.
async fn bootstrap(state: &Shared) -> Result<(), StartError> {
    let services = registry::find("", "v1", "services").expect("services are served");
    let prefix = keys::collection_prefix(services, None);
    let list = state
        .store
        .list(&ListOptions {
            prefix,
            ..Default::default()
        })
        .await?;
    for kv in &list.items {
        if let Ok(svc) = serde_json::from_slice::<Value>(&kv.value) {
            state.alloc.load(&svc);
        }
    }
    namespaces::ensure_system(state).await?;
    let key = keys::object_key(services, Some("default"), "kubernetes");
    if state.store.get(&key).await?.is_none() {
        let primary = state.alloc.cidrs()[0];
        let ip = primary.nth(0);
        state.alloc.take_ip(ip);
        let mut svc = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": ip.to_string(),
                "clusterIPs": [ip.to_string()],
                "ipFamilies": [primary.family()],
                "ipFamilyPolicy": "SingleStack",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            },
        });
        lifecycle::prepare_create(services, &mut svc);
        crate::defaults::apply(services, &mut svc);
        match state.store.create(&key, objects::encode(&svc)).await {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    namespaces::resume_cleanups(state).await?;
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`, so
/// a reader (kubectl, a waiting test) sees either the old file or the whole new one.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}
