//! The cluster CA and the API server's serving certificate, generated on first start
//! and kept in the data directory (the CA is what kubeconfigs trust, so it is reused
//! forever; the serving certificate is reissued when its addresses change).

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// PEM material of the server.
#[derive(Clone, Debug)]
pub struct Material {
    pub ca_cert: String,
    pub cert: String,
    pub key: String,
}

fn read(path: &Path) -> Result<Option<String>, TlsError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Io { path: path.into(), source }),
    }
}

fn write(path: &Path, text: &str) -> Result<(), TlsError> {
    fs::write(path, text).map_err(|source| TlsError::Io { path: path.into(), source })
}

/// The CA's parameters (also what an [`Issuer`] of CA-signed certificates needs).
pub(crate) fn ca_params() -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "waggle-ca");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    Ok(params)
}

/// Loads the CA and serving certificate from `dir`, creating what is missing.
pub fn load_or_create(dir: &Path, hosts: &[String]) -> Result<Material, TlsError> {
    fs::create_dir_all(dir).map_err(|source| TlsError::Io { path: dir.into(), source })?;
    let (ca_cert_path, ca_key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (ca_cert, ca_key) = match (read(&ca_cert_path)?, read(&ca_key_path)?) {
        (Some(cert), Some(key)) => (cert, KeyPair::from_pem(&key)?),
        _ => {
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            write(&ca_key_path, &key.serialize_pem())?;
            write(&ca_cert_path, &cert.pem())?;
            (cert.pem(), key)
        }
    };
    let (cert_path, key_path, sans_path) = (dir.join("apiserver.crt"), dir.join("apiserver.key"), dir.join("apiserver.sans"));
    let wanted_sans = hosts.join(",");
    if let (Some(cert), Some(key), Some(sans)) = (read(&cert_path)?, read(&key_path)?, read(&sans_path)?) {
        if sans == wanted_sans {
            return Ok(Material { ca_cert, cert, key });
        }
    }
    let issuer = Issuer::new(ca_params()?, ca_key);
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kube-apiserver");
    params.distinguished_name = dn;
    for host in hosts {
        params.subject_alt_names.push(match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.clone().try_into()?),
        });
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    let material = Material { ca_cert, cert: cert.pem(), key: key.serialize_pem() };
    write(&key_path, &material.key)?;
    write(&cert_path, &material.cert)?;
    write(&sans_path, &wanted_sans)?;
    Ok(material)
}

/// The rustls configuration serving `material` (HTTP/2 and HTTP/1.1). Client
/// certificates are requested, not required: one that is presented must chain to the
/// cluster CA (the admin's does, see [`crate::admin_cert`]); tokens remain possible.
pub fn server_config(material: &Material) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let config_err = |e: &dyn std::fmt::Display| TlsError::Config(e.to_string());
    let mut chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(material.cert.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| config_err(&e))?;
    chain.extend(CertificateDer::pem_slice_iter(material.ca_cert.as_bytes()).filter_map(Result::ok));
    let key = PrivateKeyDer::from_pem_slice(material.key.as_bytes()).map_err(|e| config_err(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err(&e))?
        .with_client_cert_verifier(client_verifier(material, provider)?)
        .with_single_cert(chain, key)
        .map_err(|e| config_err(&e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Verifies optional client certificates against the cluster CA.
fn client_verifier(
    material: &Material,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(material.ca_cert.as_bytes()) {
        roots.add(ca.map_err(|e| TlsError::Config(e.to_string()))?).map_err(|e| TlsError::Config(e.to_string()))?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let first = load_or_create(dir.path(), &hosts).unwrap();
        let second = load_or_create(dir.path(), &hosts).unwrap();
        assert_eq!(first.ca_cert, second.ca_cert);
        assert_eq!(first.cert, second.cert);
        let third = load_or_create(dir.path(), &["10.0.0.1".to_owned()]).unwrap();
        assert_eq!(first.ca_cert, third.ca_cert);
        assert_ne!(first.cert, third.cert);
        server_config(&third).unwrap();
    }
}
