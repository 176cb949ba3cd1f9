//! Starts an API server in-process on ephemeral ports with a temporary data dir, on
//! the embedded SQLite store or on a real etcd child process.

#![allow(dead_code)]

use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use waggle_apiserver::{Config, Running};
use waggle_store::Store;
use waggle_store::etcd::LocalEtcd;

/// Which store backs a test server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Etcd,
}

pub struct TestServer {
    pub running: Running,
    pub client: kube::Client,
    pub store: Arc<dyn Store>,
    /// Plain HTTP base URL (for raw requests).
    pub http: String,
    pub dir: tempfile::TempDir,
    _etcd: Option<LocalEtcd>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, etcd): (Arc<dyn Store>, Option<LocalEtcd>) = match backend {
            Backend::Sqlite => {
                let spec = format!("sqlite://{}", dir.path().join("state.db").display());
                (
                    waggle_store::open(&spec).await.expect("open sqlite store"),
                    None,
                )
            }
            Backend::Etcd => {
                let etcd = LocalEtcd::start(&dir.path().join("etcd"))
                    .await
                    .unwrap_or_else(|e| {
                        panic!("cannot start etcd for the test (is /usr/bin/etcd installed?): {e}")
                    });
                let spec = format!(
                    "etcd://{}/waggle-test/",
                    etcd.endpoint().trim_start_matches("http://")
                );
                (
                    waggle_store::open(&spec).await.expect("open etcd store"),
                    Some(etcd),
                )
            }
        };
        let mut config = Config::new(dir.path().to_owned(), store.clone());
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.insecure_bind = Some("127.0.0.1:0".parse().unwrap());
        tweak(&mut config);
        let running = waggle_apiserver::start(config)
            .await
            .expect("server starts");
        let kubeconfig = Kubeconfig::read_from(&running.kubeconfig).expect("kubeconfig readable");
        let client_config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("kubeconfig valid");
        let client = kube::Client::try_from(client_config).expect("client");
        let http = format!("http://{}", running.http_addr.expect("http listener"));
        TestServer {
            running,
            client,
            store,
            http,
            dir,
            _etcd: etcd,
        }
    }

    /// A raw HTTP client for the plain listener.
    pub fn raw(&self) -> reqwest::Client {
        reqwest::Client::new()
    }
}

/// Runs the body once against each backend, as two tests.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(support::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn etcd() {
                ($body)(support::Backend::Etcd).await
            }
        }
    };
}
