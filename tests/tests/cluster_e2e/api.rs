//! The test's own Kubernetes client: kube-rs on a tokio runtime whose every thread lives
//! in one node's network namespace, so its connections to the API server leave from that
//! node (the root namespace has no route to the bed and must never carry its traffic).
//!
//! Threads inherit the network namespace of the thread that creates them, so a runtime
//! built inside [`NetNs::run`] keeps its workers (and the blocking pool they start) in
//! that namespace; [`ApiClient::run`] also polls its future there.

use std::{
    future::Future,
    path::Path,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    core::v1::{Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client, Config,
    api::{DeleteParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use waggle_testbed::NetNs;

/// The namespace every object of the scenario lives in.
pub const NAMESPACE: &str = "default";

/// A kube-rs client bound to a network namespace.
pub struct ApiClient {
    netns: NetNs,
    // Dropped after the client: the client's connection tasks run on it.
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl ApiClient {
    /// A client for the cluster in `kubeconfig`, connecting from inside `netns`.
    pub fn connect(netns: &NetNs, kubeconfig: &Path) -> anyhow::Result<Self> {
        // rustls is built with more than one provider in this workspace; kube-rs then
        // needs the process default chosen (an error only means it is already set).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = netns.run(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
        })?;
        let kubeconfig = Kubeconfig::read_from(kubeconfig)?;
        let client = netns.run(|| {
            runtime.block_on(async {
                let config =
                    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                        .await?;
                anyhow::Ok(Client::try_from(config)?)
            })
        })?;
        Ok(Self {
            netns: netns.clone(),
            client,
            runtime,
        })
    }

    /// Runs `f(client)` to completion inside the namespace.
    pub fn run<F, T>(&self, f: impl FnOnce(Client) -> F + Send) -> T
    where
        F: Future<Output = T> + Send,
        T: Send,
    {
        let client = self.client.clone();
        let runtime = &self.runtime;
        self.netns.run(move || runtime.block_on(f(client)))
    }

    /// Waits until `GET /version` answers (the server is serving).
    pub fn wait_until_serving(&self, timeout: Duration) -> anyhow::Result<String> {
        self.run(|client| async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                match client.apiserver_version().await {
                    Ok(info) => return Ok(info.git_version),
                    Err(error) if tokio::time::Instant::now() >= deadline => {
                        anyhow::bail!(
                            "the API server did not answer /version within {timeout:?}: {error}"
                        )
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
    }

    pub fn create_service(&self, service: &Service) -> anyhow::Result<Service> {
        self.run(|client| async move {
            Ok(services(client)
                .create(&PostParams::default(), service)
                .await?)
        })
    }

    pub fn delete_service(&self, name: &str) -> anyhow::Result<()> {
        self.run(|client| async move {
            services(client)
                .delete(name, &DeleteParams::default())
                .await?;
            Ok(())
        })
    }

    pub fn create_pod(&self, pod: &Pod) -> anyhow::Result<Pod> {
        self.run(
            |client| async move { Ok(pods(client).create(&PostParams::default(), pod).await?) },
        )
    }

    /// Writes what a kubelet reports of a running pod: its address and whether it is
    /// ready. Returns when the write was sent.
    pub fn set_pod_status(&self, name: &str, ip: &str, ready: bool) -> anyhow::Result<Instant> {
        self.run(|client| async move {
            let status = serde_json::json!({"status": {
                "phase": "Running",
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            }});
            let sent = Instant::now();
            pods(client)
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
                .await?;
            Ok(sent)
        })
    }

    pub fn create_slice(&self, slice: &EndpointSlice) -> anyhow::Result<EndpointSlice> {
        self.run(
            |client| async move { Ok(slices(client).create(&PostParams::default(), slice).await?) },
        )
    }

    /// Replaces the stored slice of the same name with `slice` (a PUT carrying the
    /// stored resourceVersion, as an endpoints controller does). Returns when the PUT was
    /// sent, to time what follows from the write itself.
    pub fn replace_slice(&self, slice: &EndpointSlice) -> anyhow::Result<Instant> {
        self.run(|client| async move {
            let api = slices(client);
            let name = slice.metadata.name.as_deref().expect("a slice has a name");
            let current = api.get(name).await?;
            let mut next = slice.clone();
            next.metadata.resource_version = current.metadata.resource_version;
            let sent = Instant::now();
            api.replace(name, &PostParams::default(), &next).await?;
            Ok(sent)
        })
    }

    pub fn delete_slice(&self, name: &str) -> anyhow::Result<()> {
        self.run(|client| async move {
            slices(client)
                .delete(name, &DeleteParams::default())
                .await?;
            Ok(())
        })
    }
}

fn services(client: Client) -> Api<Service> {
    Api::namespaced(client, NAMESPACE)
}

fn pods(client: Client) -> Api<Pod> {
    Api::namespaced(client, NAMESPACE)
}

fn slices(client: Client) -> Api<EndpointSlice> {
    Api::namespaced(client, NAMESPACE)
}
