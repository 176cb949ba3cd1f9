//! The CSR signing controller (`csrsigning`): issues the certificate of every approved
//! CertificateSigningRequest addressed to one of Kubernetes' built-in signers, with the
//! cluster CA, as kube-controller-manager does with `--cluster-signing-cert-file` and
//! `--cluster-signing-key-file`.
//!
//! The certificate takes the request's subject and subject alternative names, the key
//! usages the request's `spec.usages` name (not those its PEM asks for), and the
//! shorter of `spec.expirationSeconds` and the signing duration. A request a signer
//! may not issue (a client signer asked for `server auth`, a kubelet signer for a
//! subject outside `system:nodes`) gets a `Failed` condition instead.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::PostParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use rcgen::{
    CertificateSigningRequestParams, DnType, DnValue, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};

use crate::Error;

/// How long issued certificates last unless the request asks for less (upstream's
/// `--cluster-signing-duration` default, one year).
pub const DEFAULT_DURATION: SignedDuration = SignedDuration::from_hours(24 * 365);
/// Issued certificates are valid from a little before now, for clocks that lag.
const BACKDATE: SignedDuration = SignedDuration::from_mins(5);

/// The CA that signs, as PEM (the cluster CA's certificate and private key).
#[derive(Clone, Debug)]
pub struct SigningCa {
    pub cert_pem: String,
    pub key_pem: String,
    pub duration: SignedDuration,
}

struct Signer {
    client: Client,
    issuer: Issuer<'static, KeyPair>,
    duration: SignedDuration,
}

/// Runs the signing controller until its watch ends.
pub async fn run(client: Client, ca: SigningCa) -> Result<(), Error> {
    let key = KeyPair::from_pem(&ca.key_pem).map_err(|e| Error::SigningCa(e.to_string()))?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, key).map_err(|e| Error::SigningCa(e.to_string()))?;
    let signer = Arc::new(Signer { client: client.clone(), issuer, duration: ca.duration });
    let requests = Api::<CertificateSigningRequest>::all(client);
    let results = Controller::new(requests, watcher::Config::default()).run(
        reconcile,
        |_, _, _| Action::requeue(Duration::from_secs(5)),
        signer,
    );
    crate::drive(results, "csrsigning").await;
    Err(Error::Stopped { controller: "csrsigning" })
}

fn has_condition(csr: &CertificateSigningRequest, kind: &str) -> bool {
    csr.status.iter().flat_map(|s| s.conditions.iter().flatten()).any(|c| c.type_ == kind)
}

async fn reconcile(csr: Arc<CertificateSigningRequest>, signer: Arc<Signer>) -> Result<Action, Error> {
    let spec = &csr.spec;
    let issued = csr.status.as_ref().and_then(|s| s.certificate.as_ref()).is_some_and(|c| !c.0.is_empty());
    let decided = has_condition(&csr, "Denied") || has_condition(&csr, "Failed");
    if issued || decided || !has_condition(&csr, "Approved") || !is_built_in(&spec.signer_name) {
        return Ok(Action::await_change());
    }
    let api = Api::<CertificateSigningRequest>::all(signer.client.clone());
    let mut next = (*csr).clone();
    let status = next.status.get_or_insert_with(Default::default);
    match sign(&signer, &csr) {
        Ok(pem) => status.certificate = Some(ByteString(pem.into_bytes())),
        Err(message) => {
            tracing::info!(csr = %csr.name_any(), %message, "not signing");
            let now = Time(Timestamp::now());
            status.conditions.get_or_insert_with(Vec::new).push(CertificateSigningRequestCondition {
                type_: "Failed".into(),
                status: "True".into(),
                reason: Some("SignerValidationFailure".into()),
                message: Some(message),
                last_update_time: Some(now.clone()),
                last_transition_time: Some(now),
            });
        }
    }
    api.replace_status(&csr.name_any(), &PostParams::default(), &next).await?;
    Ok(Action::await_change())
}

fn is_built_in(signer: &str) -> bool {
    matches!(
        signer,
        "kubernetes.io/kube-apiserver-client"
            | "kubernetes.io/kube-apiserver-client-kubelet"
            | "kubernetes.io/kubelet-serving"
            | "kubernetes.io/legacy-unknown"
    )
}

/// The request's usages as certificate key usages and extended key usages.
fn key_usages(usages: &[String]) -> Result<(Vec<KeyUsagePurpose>, Vec<ExtendedKeyUsagePurpose>), String> {
    let (mut plain, mut extended) = (Vec::new(), Vec::new());
    for usage in usages {
        match usage.as_str() {
            "signing" | "digital signature" => plain.push(KeyUsagePurpose::DigitalSignature),
            "content commitment" => plain.push(KeyUsagePurpose::ContentCommitment),
            "key encipherment" => plain.push(KeyUsagePurpose::KeyEncipherment),
            "key agreement" => plain.push(KeyUsagePurpose::KeyAgreement),
            "data encipherment" => plain.push(KeyUsagePurpose::DataEncipherment),
            "cert sign" => plain.push(KeyUsagePurpose::KeyCertSign),
            "crl sign" => plain.push(KeyUsagePurpose::CrlSign),
            "encipher only" => plain.push(KeyUsagePurpose::EncipherOnly),
            "decipher only" => plain.push(KeyUsagePurpose::DecipherOnly),
            "any" => extended.push(ExtendedKeyUsagePurpose::Any),
            "server auth" => extended.push(ExtendedKeyUsagePurpose::ServerAuth),
            "client auth" => extended.push(ExtendedKeyUsagePurpose::ClientAuth),
            "code signing" => extended.push(ExtendedKeyUsagePurpose::CodeSigning),
            "email protection" | "s/mime" => extended.push(ExtendedKeyUsagePurpose::EmailProtection),
            "timestamping" => extended.push(ExtendedKeyUsagePurpose::TimeStamping),
            "ocsp signing" => extended.push(ExtendedKeyUsagePurpose::OcspSigning),
            other => return Err(format!("unsupported key usage: {other}")),
        }
    }
    plain.dedup();
    extended.dedup();
    Ok((plain, extended))
}

/// What a built-in signer may issue (upstream's `csrsigning` validation).
fn check_signer_rules(
    signer: &str,
    usages: &[String],
    request: &CertificateSigningRequestParams,
) -> Result<(), String> {
    let allowed: &[&str] = match signer {
        "kubernetes.io/kube-apiserver-client" | "kubernetes.io/kube-apiserver-client-kubelet" => {
            &["digital signature", "key encipherment", "client auth"]
        }
        "kubernetes.io/kubelet-serving" => &["digital signature", "key encipherment", "server auth"],
        _ => return Ok(()),
    };
    let required = if signer == "kubernetes.io/kubelet-serving" { "server auth" } else { "client auth" };
    let kind = if required == "server auth" { "serving" } else { "client" };
    if let Some(bad) = usages.iter().find(|u| !allowed.contains(&u.as_str())) {
        return Err(format!("invalid usage for {kind} certificate: {bad}"));
    }
    if !usages.iter().any(|u| u == required) {
        return Err(format!("missing required usage for {kind} certificate: {required}"));
    }
    if signer == "kubernetes.io/kube-apiserver-client" {
        return Ok(());
    }
    // The kubelet signers issue only node identities.
    let text = |kind: DnType| request.params.distinguished_name.get(&kind).map(dn_text).unwrap_or_default();
    let (common_name, organization) = (text(DnType::CommonName), text(DnType::OrganizationName));
    if organization != "system:nodes" {
        return Err(format!("subject organization is not system:nodes: {organization:?}"));
    }
    if !common_name.starts_with("system:node:") {
        return Err(format!("subject common name does not begin with system:node:: {common_name:?}"));
    }
    Ok(())
}

fn dn_text(value: &DnValue) -> String {
    match value {
        DnValue::Utf8String(s) => s.clone(),
        DnValue::PrintableString(s) => s.as_str().to_owned(),
        DnValue::Ia5String(s) => s.as_str().to_owned(),
        DnValue::TeletexString(s) => s.as_str().to_owned(),
        other => format!("{other:?}"),
    }
}

/// The PEM certificate for `csr`, or why its signer refuses it.
fn sign(signer: &Signer, csr: &CertificateSigningRequest) -> Result<String, String> {
    let spec = &csr.spec;
    let pem = std::str::from_utf8(&spec.request.0).map_err(|_| "the request is not PEM text".to_owned())?;
    let mut request =
        CertificateSigningRequestParams::from_pem(pem).map_err(|e| format!("unable to parse csr: {e}"))?;
    let usages = spec.usages.clone().unwrap_or_default();
    check_signer_rules(&spec.signer_name, &usages, &request)?;
    let (plain, extended) = key_usages(&usages)?;
    let now = Timestamp::now();
    let mut lifetime = signer.duration;
    if let Some(seconds) = spec.expiration_seconds {
        lifetime = lifetime.min(SignedDuration::from_secs(i64::from(seconds)));
    }
    let params = &mut request.params;
    params.key_usages = plain;
    params.extended_key_usages = extended;
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.not_before = to_offset(now - BACKDATE)?;
    params.not_after = to_offset(now + lifetime)?;
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    params.use_authority_key_identifier_extension = true;
    let certificate = request.signed_by(&signer.issuer).map_err(|e| format!("signing: {e}"))?;
    Ok(certificate.pem())
}

fn to_offset(at: Timestamp) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::from_unix_timestamp(at.as_second()).map_err(|e| e.to_string())
}

/// A positive 128-bit serial number.
fn random_serial() -> [u8; 16] {
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f;
    serial
}
