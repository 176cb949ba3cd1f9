//! Opening a store from a command-line spec.

use std::path::PathBuf;
use std::sync::Arc;

use crate::etcd::{EtcdOptions, EtcdStore};
use crate::sqlite::SqliteStore;
use crate::{Store, StoreError};

/// Where a store lives, parsed from a spec:
///
/// * `sqlite:///var/lib/waggle/state.db`, `sqlite://relative.db`, or a bare path;
/// * `etcd://host:port[,host:port…][/key/prefix/]`: the optional path is prepended
///   to every key (`etcd://127.0.0.1:2379/waggle/` stores keys under `/waggle/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    Sqlite {
        path: PathBuf,
    },
    Etcd {
        endpoints: Vec<String>,
        prefix: String,
    },
}

impl std::str::FromStr for StoreSpec {
    type Err = StoreError;

    fn from_str(spec: &str) -> Result<Self, StoreError> {
        let invalid =
            |why: &str| StoreError::Backend(format!("invalid store spec {spec:?}: {why}"));
        if let Some(path) = spec.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(invalid("missing the database path"));
            }
            return Ok(StoreSpec::Sqlite { path: path.into() });
        }
        if let Some(rest) = spec.strip_prefix("etcd://") {
            let (hosts, prefix) = match rest.find('/') {
                Some(slash) => (&rest[..slash], rest[slash..].to_owned()),
                None => (rest, String::new()),
            };
            let endpoints: Vec<String> =
                hosts.split(',').map(str::trim).map(str::to_owned).collect();
            if endpoints.iter().any(|e| e.is_empty() || !e.contains(':')) {
                return Err(invalid("endpoints must be host:port, comma-separated"));
            }
            return Ok(StoreSpec::Etcd { endpoints, prefix });
        }
        if spec.contains("://") {
            return Err(invalid("unknown scheme (use sqlite:// or etcd://)"));
        }
        if spec.is_empty() {
            return Err(invalid("empty"));
        }
        Ok(StoreSpec::Sqlite { path: spec.into() })
    }
}

impl StoreSpec {
    /// Opens the store (connecting to etcd, or creating the SQLite file).
    pub async fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        match self {
            StoreSpec::Sqlite { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Backend(format!(
                            "sqlite: cannot create directory {}: {e}",
                            dir.display()
                        ))
                    })?;
                }
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(path))
                    .await
                    .map_err(|e| StoreError::Backend(format!("sqlite: open task failed: {e}")))??;
                Ok(Arc::new(store))
            }
            StoreSpec::Etcd { endpoints, prefix } => {
                let options = EtcdOptions {
                    prefix: prefix.clone(),
                    ..EtcdOptions::new(endpoints.clone())
                };
                Ok(Arc::new(EtcdStore::connect(options).await?))
            }
        }
    }
}

/// Opens the store described by `spec` (see [`StoreSpec`]).
pub async fn open(spec: &str) -> Result<Arc<dyn Store>, StoreError> {
    spec.parse::<StoreSpec>()?.open().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sqlite_specs() {
        assert_eq!(
            "sqlite:///var/lib/w.db".parse::<StoreSpec>().unwrap(),
            StoreSpec::Sqlite {
                path: "/var/lib/w.db".into()
            }
        );
        assert_eq!(
            "sqlite://w.db".parse::<StoreSpec>().unwrap(),
            StoreSpec::Sqlite {
                path: "w.db".into()
            }
        );
        assert_eq!(
            "/tmp/w.db".parse::<StoreSpec>().unwrap(),
            StoreSpec::Sqlite {
                path: "/tmp/w.db".into()
            }
        );
    }

    #[test]
    fn parses_etcd_specs() {
        assert_eq!(
            "etcd://127.0.0.1:2379,127.0.0.2:2379/waggle/"
                .parse::<StoreSpec>()
                .unwrap(),
            StoreSpec::Etcd {
                endpoints: vec!["127.0.0.1:2379".into(), "127.0.0.2:2379".into()],
                prefix: "/waggle/".into()
            }
        );
        assert_eq!(
            "etcd://localhost:2379".parse::<StoreSpec>().unwrap(),
            StoreSpec::Etcd {
                endpoints: vec!["localhost:2379".into()],
                prefix: String::new()
            }
        );
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "",
            "sqlite://",
            "etcd://",
            "etcd://nohost",
            "mysql://x",
            "etcd://a:1,/p",
        ] {
            assert!(
                bad.parse::<StoreSpec>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
