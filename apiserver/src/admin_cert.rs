//! The cluster admin's client certificate (`CN=admin`, `O=system:masters`, client
//! authentication), signed by the cluster CA and kept beside it in the data directory's
//! `pki/`. It goes into the admin kubeconfig (`client-certificate-data` /
//! `client-key-data`); the HTTPS listener asks for (but does not require) client
//! certificates and verifies them against the CA (see [`crate::tls::server_config`]).

use std::fs;
use std::path::Path;

use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose};

use crate::tls::{TlsError, ca_params};

/// The admin's user name and group, as upstream's kubeadm issues them.
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_GROUP: &str = "system:masters";

/// A PEM client certificate and its key.
#[derive(Clone, Debug)]
pub struct ClientCredential {
    pub cert: String,
    pub key: String,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io { path: path.into(), source }
}

/// Whether `path` exists and is at least as new as `than` (a certificate issued by a CA
/// that was since replaced is stale).
fn fresh(path: &Path, than: &Path) -> bool {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(path), modified(than)) {
        (Some(a), Some(b)) => a >= b,
        _ => false,
    }
}

/// Loads the admin credential from `pki_dir`, issuing it from the CA there (`ca.key`,
/// written by [`crate::tls::load_or_create`]) when missing or older than the CA.
pub fn load_or_create(pki_dir: &Path) -> Result<ClientCredential, TlsError> {
    let (cert_path, key_path, ca_path) = (pki_dir.join("admin.crt"), pki_dir.join("admin.key"), pki_dir.join("ca.crt"));
    if fresh(&cert_path, &ca_path) && fresh(&key_path, &ca_path) {
        let cert = fs::read_to_string(&cert_path).map_err(io_err(&cert_path))?;
        let key = fs::read_to_string(&key_path).map_err(io_err(&key_path))?;
        return Ok(ClientCredential { cert, key });
    }
    let ca_key_path = pki_dir.join("ca.key");
    let ca_key = KeyPair::from_pem(&fs::read_to_string(&ca_key_path).map_err(io_err(&ca_key_path))?)?;
    let credential = issue(Issuer::new(ca_params()?, ca_key))?;
    fs::write(&key_path, &credential.key).map_err(io_err(&key_path))?;
    fs::write(&cert_path, &credential.cert).map_err(io_err(&cert_path))?;
    Ok(credential)
}

fn issue(issuer: Issuer<'_, KeyPair>) -> Result<ClientCredential, TlsError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ADMIN_GROUP);
    dn.push(DnType::CommonName, ADMIN_USER);
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(ClientCredential { cert: cert.pem(), key: key.serialize_pem() })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, UnixTime};
    use rustls::server::WebPkiClientVerifier;

    use super::*;

    #[test]
    fn admin_certificate_chains_to_the_cluster_ca_and_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let material = crate::tls::load_or_create(dir.path(), &["127.0.0.1".to_owned()]).unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert_eq!(load_or_create(dir.path()).unwrap().cert, first.cert);

        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(material.ca_cert.as_bytes()).unwrap()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
        let leaf = CertificateDer::from_pem_slice(first.cert.as_bytes()).unwrap();
        verifier.verify_client_cert(&leaf, &[], UnixTime::now()).expect("the admin certificate verifies against the CA");

        let other_ca = tempfile::tempdir().unwrap();
        let stranger = crate::tls::load_or_create(other_ca.path(), &["127.0.0.1".to_owned()]).unwrap();
        let mut other_roots = rustls::RootCertStore::empty();
        other_roots.add(CertificateDer::from_pem_slice(stranger.ca_cert.as_bytes()).unwrap()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let other = WebPkiClientVerifier::builder_with_provider(Arc::new(other_roots), provider).build().unwrap();
        assert!(other.verify_client_cert(&leaf, &[], UnixTime::now()).is_err());
    }
}
