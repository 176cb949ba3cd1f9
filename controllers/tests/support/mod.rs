//! What the controllers' integration tests share: Waggle's API server in-process on a
//! loopback port with the chosen controllers running against it, and polling.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use waggle_controllers::{Controller, Options};

pub struct Bed {
    pub client: Client,
    config: kube::Config,
    running: Option<waggle_apiserver::Running>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Bed {
    pub async fn start(controllers: &[Controller], kubelet: bool) -> Bed {
        Bed::start_with(controllers, kubelet, waggle_controllers::pod_gc::Settings::default()).await
    }

    /// Like [`Bed::start`], with `podgc` running by `pod_gc`.
    pub async fn start_with(
        controllers: &[Controller],
        kubelet: bool,
        pod_gc: waggle_controllers::pod_gc::Settings,
    ) -> Bed {
        // `RUST_LOG=waggle_controllers=debug` shows why reconciles fail.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = format!("sqlite://{}", dir.path().join("state.db").display());
        let store = waggle_store::open(&spec).await.expect("open sqlite store");
        let mut config = waggle_apiserver::Config::new(dir.path().to_owned(), store);
        config.bind = "127.0.0.1:0".parse().unwrap();
        let running = waggle_apiserver::start(config).await.expect("server starts");
        let kubeconfig = Kubeconfig::read_from(&running.kubeconfig).expect("kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("config");
        let client = Client::try_from(config.clone()).expect("client");
        let ca = std::fs::read_to_string(dir.path().join("pki/ca.crt")).ok();
        let signing = waggle_controllers::certificate_signer::SigningCa {
            cert_pem: std::fs::read_to_string(dir.path().join("pki/ca.crt")).expect("the cluster CA"),
            key_pem: std::fs::read_to_string(dir.path().join("pki/ca.key")).expect("the cluster CA's key"),
            duration: waggle_controllers::certificate_signer::DEFAULT_DURATION,
        };
        let options = Options { controllers: controllers.to_vec(), root_ca: ca, signing: Some(signing), pod_gc };
        let mut tasks = vec![tokio::spawn({
            let client = client.clone();
            async move {
                if let Err(error) = waggle_controllers::run(client, options).await {
                    panic!("controllers stopped: {error}");
                }
            }
        })];
        if kubelet {
            tasks.push(tokio::spawn(play_kubelet(client.clone())));
        }
        Bed { client, config, running: Some(running), tasks, _dir: dir }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Like [`Bed::api`], through a client that returns a 429 at once instead of
    /// retrying it (as kube's default client does).
    pub fn api_without_retries<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        let mut config = self.config.clone();
        config.default_retry = false;
        Api::namespaced(Client::try_from(config).expect("client"), "default")
    }

    pub async fn stop(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

/// What a kubelet would report once a pod's command ran: `false` fails; a pod that
/// restarts its containers (`restartPolicy: Always`, the default) or runs `sleep`
/// keeps running, ready; any other command finishes successfully.
pub async fn play_kubelet(client: Client) {
    let pods = Api::<Pod>::all(client.clone());
    loop {
        if let Ok(list) = pods.list(&ListParams::default()).await {
            for pod in list.items {
                let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
                if pod.metadata.deletion_timestamp.is_some()
                    || matches!(phase.as_str(), "Succeeded" | "Failed" | "Running")
                {
                    continue;
                }
                let spec = pod.spec.clone().unwrap_or_default();
                let command = spec.containers.first().and_then(|c| c.command.clone()).unwrap_or_default();
                let restarts = spec.restart_policy.as_deref().is_none_or(|p| p == "Always");
                let now = jiff::Timestamp::now().to_string();
                let status = match command.first().map(String::as_str) {
                    Some("false") => json!({"phase": "Failed"}),
                    Some("sleep") => json!({"phase": "Running", "conditions": [
                        {"type": "Ready", "status": "True", "lastTransitionTime": now},
                    ]}),
                    _ if restarts => json!({"phase": "Running", "conditions": [
                        {"type": "Ready", "status": "True", "lastTransitionTime": now},
                    ]}),
                    _ => json!({"phase": "Succeeded"}),
                };
                let api = Api::<Pod>::namespaced(client.clone(), &pod.namespace().unwrap());
                // Only over the pod as listed: a test that changed its status meanwhile
                // wins (the write fails with a conflict), as against a real kubelet.
                let patch = json!({"metadata": {"resourceVersion": pod.resource_version()}, "status": status});
                let _ = api.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` until it returns `Some`, failing the test after `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
