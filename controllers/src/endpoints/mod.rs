//! Service endpoints: the `endpointslice` controller (EndpointSlices, which Waggle's
//! proxy and kube-proxy program from) and the `endpoint` controller (the v1 Endpoints
//! that older clients and `kubectl describe service` read). Both follow a Service's
//! selector to its pods; see [`backends`] for what a selected pod contributes.
//!
//! A pod event concerns the Services whose selector matches its labels now and those
//! whose endpoints list it (it may have just stopped matching); the second set comes
//! from a cache of the controller's own objects.

mod backends;
mod legacy;
mod slices;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::core::SelectorExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::Error;

/// Every Service is looked at again this often, whatever happened.
const RESYNC: Duration = Duration::from_secs(300);

pub struct Context {
    client: Client,
}

/// Runs the EndpointSlice controller until its watches end.
pub async fn run_slices(client: Client) -> Result<(), Error> {
    let managed = format!("{}={}", slices::MANAGED_BY_LABEL, slices::MANAGER);
    let children = watcher::Config::default().labels(&managed);
    let service_of = |slice: &EndpointSlice| slice.labels().get(slices::SERVICE_NAME_LABEL).cloned();
    let references = |slice: &EndpointSlice, uid: &str| {
        slice.endpoints.iter().any(|e| e.target_ref.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid))
    };
    let reconcile = |service, context| slices::reconcile(service, context).boxed();
    run_per_service(client, "endpointslice", children, service_of, references, reconcile, None).await
}

/// Runs the Endpoints controller until its watches end.
pub async fn run_endpoints(client: Client) -> Result<(), Error> {
    let service_of = |endpoints: &Endpoints| Some(endpoints.name_any());
    let reconcile = |service, context| legacy::reconcile(service, context).boxed();
    let on_delete: OnDelete =
        |service, context| async move { legacy::service_deleted(&service, &context).await }.boxed();
    run_per_service(
        client,
        "endpoint",
        watcher::Config::default(),
        service_of,
        legacy::references,
        reconcile,
        Some(on_delete),
    )
    .await
}

type Reconcile = fn(Arc<Service>, Arc<Context>) -> BoxFuture<'static, Result<Action, Error>>;
type OnDelete = fn(Service, Arc<Context>) -> BoxFuture<'static, Result<(), Error>>;

async fn run_per_service<C>(
    client: Client,
    controller: &'static str,
    children: watcher::Config,
    service_of: fn(&C) -> Option<String>,
    references: fn(&C, &str) -> bool,
    reconcile: Reconcile,
    on_delete: Option<OnDelete>,
) -> Result<(), Error>
where
    C: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    let context = Arc::new(Context { client: client.clone() });
    let (cache, writer) = reflector::store::<C>();
    let follow = reflector::reflector(writer, watcher(Api::<C>::all(client.clone()), children.clone()))
        .default_backoff()
        .for_each(|_| futures::future::ready(()));

    let main = Controller::new(Api::<Service>::all(client.clone()), watcher::Config::default());
    let services = main.store();
    let run = main
        .watches(Api::<C>::all(client.clone()), children, move |child: C| {
            service_of(&child).zip(child.namespace()).map(|(name, ns)| ObjectRef::new(&name).within(&ns))
        })
        .watches(Api::<Pod>::all(client.clone()), watcher::Config::default(), move |pod: Pod| {
            services_of_pod(&services, &cache, service_of, references, &pod)
        })
        .run(reconcile, |_, _, _| Action::requeue(Duration::from_secs(1)), context.clone());
    let run = crate::drive(run, controller);

    let deletions = async {
        let Some(on_delete) = on_delete else { return std::future::pending().await };
        let mut events = watcher(Api::<Service>::all(client), watcher::Config::default()).default_backoff().boxed();
        while let Ok(Some(event)) = events.try_next().await {
            if let watcher::Event::Delete(service) = event {
                if let Err(error) = on_delete(service, context.clone()).await {
                    tracing::warn!(controller, %error, "cleaning up after a deleted service");
                }
            }
        }
    };
    tokio::select! {
        _ = follow => {}
        _ = run => {}
        _ = deletions => {}
    }
    Err(Error::Stopped { controller })
}

fn services_of_pod<C>(
    services: &Store<Service>,
    cache: &Store<C>,
    service_of: fn(&C) -> Option<String>,
    references: fn(&C, &str) -> bool,
    pod: &Pod,
) -> Vec<ObjectRef<Service>>
where
    C: Resource<DynamicType = ()> + Clone,
{
    let Some(namespace) = pod.namespace() else { return Vec::new() };
    let mut names = BTreeSet::new();
    for service in services.state() {
        if service.namespace().as_deref() == Some(namespace.as_str())
            && backends::managed_selector(&service).is_some_and(|s| s.matches(pod.labels()))
        {
            names.insert(service.name_any());
        }
    }
    if let Some(uid) = pod.uid() {
        for child in cache.state() {
            if child.namespace().as_deref() == Some(namespace.as_str()) && references(&child, &uid) {
                names.extend(service_of(&child));
            }
        }
    }
    names.into_iter().map(|name| ObjectRef::new(&name).within(&namespace)).collect()
}
