//! The controllers' error type.

/// Why a reconcile (or a controller) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("{kind} {namespace}/{name}: invalid selector: {reason}")]
    Selector { kind: &'static str, namespace: String, name: String, reason: String },
    #[error("{kind} {namespace}/{name}: {reason}")]
    Invalid { kind: &'static str, namespace: String, name: String, reason: String },
    #[error(
        "root-ca-cert-publisher needs the cluster CA bundle (--root-ca-file or the kubeconfig's certificate-authority-data)"
    )]
    NoRootCa,
    #[error("csrsigning: the signing CA: {0}")]
    SigningCa(String),
    #[error("{dependent}: owner reference to {kind} ({api_version}) names no served resource")]
    UnknownOwnerKind { dependent: String, api_version: String, kind: String },
    #[error("{what}: kept conflicting with concurrent writes")]
    Conflicts { what: String },
    #[error("{controller} controller: its watch ended")]
    Stopped { controller: &'static str },
}
