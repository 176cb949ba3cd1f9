//! The Kubernetes API source: kube-rs watchers on every Service and
//! `discovery.k8s.io/v1` EndpointSlice in all namespaces. A watcher (re)start is a
//! relist; objects not listed again are deleted.

use std::path::Path;

use futures::StreamExt;
use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kube::{
    Api, Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
    runtime::{WatchStreamExt, watcher},
};

use super::TrackerHandle;
use crate::tracker::{ChangeTracker, KindTracker, ObjectKey};

/// The API client could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum KubeSourceError {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("no kubeconfig given and no in-cluster/default configuration: {0}")]
    Infer(#[source] kube::config::InferConfigError),
    #[error("building the API client: {0}")]
    Client(#[source] kube::Error),
}

/// A client from `kubeconfig`, or in-cluster/default configuration when `None`.
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, KubeSourceError> {
    let config = match kubeconfig {
        Some(path) => {
            let err = |source| KubeSourceError::Kubeconfig {
                path: path.display().to_string(),
                source,
            };
            let kc = Kubeconfig::read_from(path).map_err(err)?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(err)?
        }
        None => Config::infer().await.map_err(KubeSourceError::Infer)?,
    };
    Client::try_from(config).map_err(KubeSourceError::Client)
}

/// Runs both watchers until the task is dropped.
pub async fn run(client: Client, handle: TrackerHandle) {
    let services = watch::<Service>(Api::all(client.clone()), handle.clone(), |t| {
        &mut t.services
    });
    let slices = watch::<EndpointSlice>(Api::all(client), handle, |t| &mut t.slices);
    futures::join!(services, slices);
}

async fn watch<K>(
    api: Api<K>,
    handle: TrackerHandle,
    kind: fn(&mut ChangeTracker) -> &mut KindTracker<K>,
) where
    K: kube::Resource<DynamicType = ()>
        + kube::ResourceExt
        + Clone
        + PartialEq
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => handle.update(|t| kind(t).begin_relist()),
            Ok(watcher::Event::InitApply(obj) | watcher::Event::Apply(obj)) => {
                handle.update(|t| kind(t).apply(obj))
            }
            Ok(watcher::Event::InitDone) => handle.update(|t| kind(t).end_relist()),
            Ok(watcher::Event::Delete(obj)) => {
                let key = ObjectKey::of(&obj);
                handle.update(|t| kind(t).delete(key))
            }
            Err(error) => {
                tracing::warn!(%error, kind = K::kind(&()).as_ref(), "watch error; retrying")
            }
        }
    }
}
