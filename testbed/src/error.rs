//! The one error type of the test bed.

use std::path::PathBuf;

/// Why a test bed (or one of its probes) could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TestBedError {
    #[error(
        "the namespace test bed needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) to create network \
         namespaces, mounts and cgroups; effective uid is {euid}"
    )]
    NotPrivileged { euid: u32 },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("could not run `{command}` (is iproute2 installed?): {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    #[error("invalid test bed request: {0}")]
    Invalid(String),
    #[error("netprobe {what}: {detail}")]
    Probe { what: &'static str, detail: String },
}

impl TestBedError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(what: impl Into<String>, source: nix::Error) -> Self {
        Self::Sys {
            what: what.into(),
            source,
        }
    }
}
