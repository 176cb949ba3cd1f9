//! One HTTPS connection to a kubelet: TCP, TLS (the serving certificate is not verified,
//! as kube-apiserver without `--kubelet-certificate-authority`), HTTP/1.1 with upgrades.
//! Errors read as Go's net errors, since clients show them to users verbatim.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// How long dialling a kubelet may take (upstream's proxy dialer uses 30s).
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a kubelet listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub host: String,
    pub port: u16,
}

impl Backend {
    /// `host:port`, with IPv6 addresses in brackets (Go's `net.JoinHostPort`).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a kubelet could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("dial tcp {authority}: {}", go_dial_error(.source))]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error("dial tcp {authority}: i/o timeout")]
    Timeout { authority: String },
    #[error("tls: {0}")]
    Tls(std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

/// Go's wording of a failed `connect(2)`.
fn go_dial_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        std::io::ErrorKind::HostUnreachable => "connect: no route to host".into(),
        std::io::ErrorKind::NetworkUnreachable => "connect: network is unreachable".into(),
        _ => format!("connect: {e}"),
    }
}

/// Sends `request` (origin-form URI) to the kubelet; upgrades stay possible on the
/// returned response (`hyper::upgrade::on`).
pub async fn send(
    backend: &Backend,
    request: http::Request<Body>,
) -> Result<http::Response<Incoming>, DialError> {
    let authority = backend.authority();
    let tcp = match tokio::time::timeout(
        DIAL_TIMEOUT,
        tokio::net::TcpStream::connect((backend.host.as_str(), backend.port)),
    )
    .await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => return Err(DialError::Connect { authority, source }),
        Err(_) => return Err(DialError::Timeout { authority }),
    };
    let server_name = ServerName::try_from(backend.host.clone())
        .map_err(|e| DialError::Tls(std::io::Error::other(e)))?;
    let tls = tokio_rustls::TlsConnector::from(client_config())
        .connect(server_name, tcp)
        .await
        .map_err(DialError::Tls)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet connection ended");
        }
    });
    Ok(sender.send_request(request).await?)
}

fn client_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

/// Accepts any serving certificate (signatures are still checked): kube-apiserver's
/// behaviour when no kubelet CA is configured.
struct AnyServerCertificate(Arc<CryptoProvider>);

impl fmt::Debug for AnyServerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnyServerCertificate")
    }
}

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
