//! The kubelet API (HTTPS, port 10250) that the API server proxies `pods/log`,
//! `pods/exec`, `pods/attach` and `pods/portforward` to:
//!
//! - `GET /containerLogs/{namespace}/{pod}/{container}`: [`logs`];
//! - `/exec/…`, `/attach/…`, `/portForward/{namespace}/{pod}`: [`streams`], which asks
//!   the runtime for a streaming session and splices the caller's upgraded connection
//!   (SPDY or WebSocket) to the runtime's streaming server, or, for a WebSocket with
//!   `v5.channel.k8s.io`, relays it through the [`translator`] to SPDY ([`spdy`]);
//! - `GET /healthz`.
//!
//! The serving certificate is self-signed for the node's name and address unless one
//! is given, as upstream's kubelet does without `--tls-cert-file`.

mod logs;
mod spdy;
mod streams;
mod translator;
mod tunnel;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::StatusCode;
use k8s_cri::v1 as cri;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::Error;
use crate::runtime::{Runtime, labels};

/// Where the kubelet API listens and with which certificate.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    /// PEM certificate and key; `None` serves a self-signed one for `names`.
    pub cert: Option<(PathBuf, PathBuf)>,
    pub names: Vec<String>,
}

#[derive(Clone)]
struct Api {
    runtime: Runtime,
}

/// Serves the kubelet API until the listener fails.
pub async fn serve(runtime: Runtime, options: ServeOptions) -> Result<(), Error> {
    let (cert, key) = match &options.cert {
        Some((cert, key)) => (
            std::fs::read(cert).map_err(Error::io("reading the serving certificate", cert))?,
            std::fs::read(key).map_err(Error::io("reading the serving key", key))?,
        ),
        None => {
            let issued = rcgen::generate_simple_self_signed(options.names.clone())
                .map_err(|e| Error::Serve(format!("self-signing the serving certificate: {e}")))?;
            (issued.cert.pem().into_bytes(), issued.signing_key.serialize_pem().into_bytes())
        }
    };
    let tls = tls_config(&cert, &key)?;
    let app = router(runtime);
    let listener = std::net::TcpListener::bind(options.addr)
        .map_err(|e| Error::Serve(format!("listening on {}: {e}", options.addr)))?;
    listener.set_nonblocking(true).map_err(|e| Error::Serve(e.to_string()))?;
    tracing::info!(addr = %options.addr, "serving the kubelet API");
    axum_server::from_tcp_rustls(listener, axum_server::tls_rustls::RustlsConfig::from_config(tls))
        .serve(app.into_make_service())
        .await
        .map_err(|e| Error::Serve(e.to_string()))
}

fn tls_config(cert: &[u8], key: &[u8]) -> Result<Arc<rustls::ServerConfig>, Error> {
    let invalid = |e: &dyn std::fmt::Display| Error::Serve(format!("the serving certificate: {e}"));
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert).collect::<Result<_, _>>().map_err(|e| invalid(&e))?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid(&e))?;
    // Streams are HTTP/1.1 upgrades.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn router(runtime: Runtime) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/containerLogs/{namespace}/{pod}/{container}", get(logs::container_logs))
        .route("/exec/{namespace}/{pod}/{container}", any(streams::exec))
        .route("/attach/{namespace}/{pod}/{container}", any(streams::attach))
        .route("/portForward/{namespace}/{pod}", any(streams::port_forward))
        .with_state(Api { runtime })
}

/// A failed kubelet API request: the status and upstream's words, as plain text.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// The pod's container attempts, newest first, across its sandboxes.
async fn attempts(
    runtime: &Runtime,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<Vec<cri::Container>, Failure> {
    let selector = [(labels::POD_NAMESPACE, namespace), (labels::POD_NAME, pod), (labels::CONTAINER_NAME, container)];
    let wanted = selector.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let mut found = runtime.containers(wanted).await?;
    found.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    Ok(found)
}

/// The pod's ready sandbox.
async fn sandbox(runtime: &Runtime, namespace: &str, pod: &str) -> Result<cri::PodSandbox, Failure> {
    let wanted = [(labels::POD_NAMESPACE, namespace), (labels::POD_NAME, pod)]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    runtime
        .sandboxes(wanted)
        .await?
        .into_iter()
        .filter(|s| s.state == cri::PodSandboxState::SandboxReady as i32)
        .max_by_key(|s| s.created_at)
        .ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("pod {namespace}/{pod} not found")))
}

type PathParams = Path<Vec<(String, String)>>;
type QueryPairs = Query<Vec<(String, String)>>;

fn param<'a>(path: &'a PathParams, name: &str) -> &'a str {
    path.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
}

fn flag(query: &QueryPairs, name: &str) -> bool {
    query.0.iter().any(|(k, v)| k == name && (v == "1" || v.eq_ignore_ascii_case("true")))
}

fn value<'a>(query: &'a QueryPairs, name: &str) -> Option<&'a str> {
    query.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Whether the request is a WebSocket upgrade offering one of `protocols`.
fn websocket_offering(headers: &http::HeaderMap, protocols: &[&str]) -> bool {
    let websocket = headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    let offered = headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| protocols.contains(&p.trim()));
    websocket && offered
}
