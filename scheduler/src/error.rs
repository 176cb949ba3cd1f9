//! The scheduler's error type.

/// Why the scheduler (or one API call of it) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("scheduler: the {what} watch ended")]
    Stopped { what: &'static str },
}
