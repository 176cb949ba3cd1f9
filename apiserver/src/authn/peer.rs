//! Client-certificate identities: an HTTPS acceptor that, after the TLS handshake
//! (where rustls verified any presented certificate against the cluster CA, see
//! [`crate::tls::server_config`]), reads the certificate's subject and attaches it to
//! every request of the connection as a [`ClientIdentity`] extension.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsAcceptor;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

/// The user a verified client certificate names: `CN` is the user, each `O` a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    pub user: String,
    pub groups: Vec<String>,
}

/// The subject of a DER certificate as a [`ClientIdentity`], if it has a common name.
pub fn identity(der: &[u8]) -> Option<ClientIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let user = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let groups = subject.iter_organization().filter_map(|o| o.as_str().ok()).map(str::to_owned).collect();
    Some(ClientIdentity { user, groups })
}

/// Wraps the TLS acceptor; see the module docs.
#[derive(Clone)]
pub struct ClientCertAcceptor {
    inner: RustlsAcceptor,
}

impl ClientCertAcceptor {
    pub fn new(inner: RustlsAcceptor) -> Self {
        ClientCertAcceptor { inner }
    }
}

type Accepted<I, S> = io::Result<(TlsStream<I>, WithIdentity<S>)>;

impl<I, S> Accept<I, S> for ClientCertAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Send + 'static,
{
    type Stream = TlsStream<I>;
    type Service = WithIdentity<S>;
    type Future = Pin<Box<dyn Future<Output = Accepted<I, S>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let handshake = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = handshake.await?;
            let identity = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| identity(leaf.as_ref()))
                .map(Arc::new);
            Ok((stream, WithIdentity { inner: service, identity }))
        })
    }
}

/// A connection's service that stamps its client identity on each request.
#[derive(Clone)]
pub struct WithIdentity<S> {
    inner: S,
    identity: Option<Arc<ClientIdentity>>,
}

impl<S, B> tower::Service<http::Request<B>> for WithIdentity<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(identity) = &self.identity {
            request.extensions_mut().insert(identity.clone());
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_certificate_names_the_admin() {
        let dir = tempfile::tempdir().unwrap();
        crate::tls::load_or_create(dir.path(), &["127.0.0.1".to_owned()]).unwrap();
        let admin = crate::admin_cert::load_or_create(dir.path()).unwrap();
        use rustls::pki_types::pem::PemObject;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(admin.cert.as_bytes()).unwrap();
        assert_eq!(
            identity(der.as_ref()),
            Some(ClientIdentity { user: "admin".into(), groups: vec!["system:masters".into()] })
        );
        assert_eq!(identity(b"not a certificate"), None);
    }
}
