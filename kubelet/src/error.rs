//! The kubelet's error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("container runtime at {}: {message}", endpoint.display())]
    RuntimeUnreachable { endpoint: PathBuf, message: String },
    #[error("container runtime: {call}: {message}")]
    Runtime { call: &'static str, message: String },
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("kubelet API: {0}")]
    Serve(String),
    #[error("pod {pod}: {message}")]
    PodConfig { pod: String, message: String },
    #[error("the probes' HTTP client: {0}")]
    ProbeClient(String),
    #[error("the pod watch ended")]
    WatchEnded,
}

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
}
