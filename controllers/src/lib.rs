//! Waggle's controllers: what kube-controller-manager does, as kube-rs controllers that
//! speak only the Kubernetes API, so each runs against Waggle's API server or any
//! conformant one.
//!
//! - [`replicaset`]: keeps a ReplicaSet's pods at `spec.replicas` and reports their
//!   readiness in its status.
//! - [`statefulset`]: pods with stable identities and claims, ordered or parallel,
//!   rolled out by ControllerRevisions in reverse ordinal order.
//! - [`daemonset`]: one pod on every node that should run it (node selector, required
//!   node affinity, taints), pinned to it by name for the scheduler, rolled out by
//!   ControllerRevisions within `maxUnavailable` or `maxSurge`.
//! - [`deployment`]: rolls a Deployment's template out through ReplicaSets (revisions,
//!   rolling update and recreate, pause, history limit) and reports progress.
//! - [`disruption`]: keeps PodDisruptionBudgets' status (healthy, wanted and allowed
//!   disruptions), which evictions spend.
//! - [`endpoints`]: a Service's selected pods as EndpointSlices (what the proxy
//!   programs) and as v1 Endpoints.
//! - [`garbage_collector`]: deletes objects whose owners are gone, and carries out
//!   foreground and orphan deletion.
//! - [`pod_gc`]: force-deletes pods no kubelet will finish (their node gone, never
//!   scheduled, on an out-of-service node) and finished pods beyond a threshold.
//! - [`job`]: runs a Job's pods to completion (parallelism, completions, indexes,
//!   backoff limit, deadline, suspension) and tracks them with finalizers.
//! - [`cronjob`]: creates a CronJob's Jobs on its schedule and keeps their history.
//! - [`ttl_after_finished`]: deletes finished Jobs `ttlSecondsAfterFinished` later.
//! - [`namespace_defaults`]: the `default` ServiceAccount and the `kube-root-ca.crt`
//!   ConfigMap in every namespace.
//!
//! [`run`] starts the chosen ones and runs until one fails. [`events`] is the
//! events.k8s.io recorder they share (the scheduler records with it too), and
//! [`placement`] the node affinity and taint rules (the scheduler filters with them).

pub mod certificate_signer;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
mod error;
pub mod events;
pub mod garbage_collector;
pub mod job;
pub mod namespace_defaults;
mod owners;
pub mod placement;
pub mod pod_gc;
mod pods;
pub mod replicaset;
mod revisions;
pub mod statefulset;
pub mod ttl_after_finished;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt, try_join_all};
use kube::Client;

pub use error::Error;

/// One controller, by the name kube-controller-manager's `--controllers` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    EndpointSlice,
    Endpoint,
    GarbageCollector,
    PodGc,
    Disruption,
    ServiceAccount,
    RootCaCertPublisher,
    Job,
    CronJob,
    TtlAfterFinished,
    CsrSigning,
}

impl Controller {
    pub const ALL: [Controller; 15] = [
        Controller::Deployment,
        Controller::ReplicaSet,
        Controller::StatefulSet,
        Controller::DaemonSet,
        Controller::EndpointSlice,
        Controller::Endpoint,
        Controller::GarbageCollector,
        Controller::PodGc,
        Controller::Disruption,
        Controller::Job,
        Controller::CronJob,
        Controller::TtlAfterFinished,
        Controller::CsrSigning,
        Controller::ServiceAccount,
        Controller::RootCaCertPublisher,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Controller::Deployment => "deployment",
            Controller::ReplicaSet => "replicaset",
            Controller::StatefulSet => "statefulset",
            Controller::DaemonSet => "daemonset",
            Controller::EndpointSlice => "endpointslice",
            Controller::Endpoint => "endpoint",
            Controller::ServiceAccount => "serviceaccount",
            Controller::RootCaCertPublisher => "root-ca-cert-publisher",
            Controller::GarbageCollector => "garbagecollector",
            Controller::PodGc => "podgc",
            Controller::Disruption => "disruption",
            Controller::Job => "job",
            Controller::CronJob => "cronjob",
            Controller::TtlAfterFinished => "ttl-after-finished",
            Controller::CsrSigning => "csrsigning",
        }
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Controller {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Controller::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            let known: Vec<_> = Controller::ALL.iter().map(|c| c.name()).collect();
            format!("unknown controller {s:?}; known: {}", known.join(", "))
        })
    }
}

/// What [`run`] starts.
#[derive(Clone, Debug)]
pub struct Options {
    pub controllers: Vec<Controller>,
    /// The cluster CA bundle (PEM) that `root-ca-cert-publisher` publishes.
    pub root_ca: Option<String>,
    /// The CA `csrsigning` issues certificates with; without one it does not run.
    pub signing: Option<certificate_signer::SigningCa>,
    /// How `podgc` runs.
    pub pod_gc: pod_gc::Settings,
}

impl Options {
    /// Every controller, `podgc` with upstream's settings.
    pub fn all(root_ca: Option<String>, signing: Option<certificate_signer::SigningCa>) -> Options {
        Options { controllers: Controller::ALL.to_vec(), root_ca, signing, pod_gc: pod_gc::Settings::default() }
    }
}

/// Runs the chosen controllers until one of them stops with an error.
pub async fn run(client: Client, options: Options) -> Result<(), Error> {
    let mut running: Vec<BoxFuture<'static, Result<(), Error>>> = Vec::new();
    for controller in options.controllers {
        tracing::info!(%controller, "starting controller");
        let client = client.clone();
        running.push(match controller {
            Controller::Deployment => deployment::run(client).boxed(),
            Controller::ReplicaSet => replicaset::run(client).boxed(),
            Controller::StatefulSet => statefulset::run(client).boxed(),
            Controller::DaemonSet => daemonset::run(client).boxed(),
            Controller::EndpointSlice => endpoints::run_slices(client).boxed(),
            Controller::Endpoint => endpoints::run_endpoints(client).boxed(),
            Controller::ServiceAccount => namespace_defaults::run_service_accounts(client).boxed(),
            Controller::RootCaCertPublisher => {
                let ca = options.root_ca.clone().ok_or(Error::NoRootCa)?;
                namespace_defaults::run_root_ca_publisher(client, ca).boxed()
            }
            Controller::GarbageCollector => garbage_collector::run(client).boxed(),
            Controller::PodGc => pod_gc::run(client, options.pod_gc.clone()).boxed(),
            Controller::Disruption => disruption::run(client).boxed(),
            Controller::Job => job::run(client).boxed(),
            Controller::CronJob => cronjob::run(client).boxed(),
            Controller::TtlAfterFinished => ttl_after_finished::run(client).boxed(),
            Controller::CsrSigning => match options.signing.clone() {
                Some(ca) => certificate_signer::run(client, ca).boxed(),
                None => {
                    // As kube-controller-manager without --cluster-signing-*-file.
                    tracing::warn!("skipping csrsigning: no signing CA given");
                    continue;
                }
            },
        });
    }
    try_join_all(running).await.map(|_| ())
}

/// What a controller's reconciles share: its client, and the recorder of the events
/// it reports under its own name.
pub(crate) struct Context {
    pub client: Client,
    pub events: events::Events,
}

impl Context {
    pub fn new(client: Client, controller: &str) -> Arc<Context> {
        Arc::new(Context { events: events::Events::new(client.clone(), controller), client })
    }
}

/// Drives a controller's reconcile results to the end of its watches; failures are
/// logged (the controller retries them itself).
pub(crate) async fn drive<T, E: fmt::Display>(
    results: impl futures::Stream<Item = Result<T, E>>,
    controller: &'static str,
) {
    results
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(controller, %error, "reconcile failed");
            }
        })
        .await;
}

/// The controllers a kube-controller-manager style `--controllers` list names: `*`
/// for every one, a name to add one, `-name` to leave one out (`*,-deployment`).
/// Empty entries are ignored, so an empty list runs none.
pub fn select<S: AsRef<str>>(list: &[S]) -> Result<Vec<Controller>, String> {
    let mut chosen: Vec<Controller> = Vec::new();
    let mut excluded: Vec<Controller> = Vec::new();
    for entry in list.iter().map(|e| e.as_ref().trim()).filter(|e| !e.is_empty()) {
        if entry == "*" {
            chosen.extend(Controller::ALL);
        } else if let Some(name) = entry.strip_prefix('-') {
            excluded.push(name.parse()?);
        } else {
            chosen.push(entry.parse()?);
        }
    }
    Ok(Controller::ALL.into_iter().filter(|c| chosen.contains(c) && !excluded.contains(c)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_follows_kube_controller_manager() {
        assert_eq!(select(&["*"]).unwrap(), Controller::ALL);
        assert_eq!(
            select(&[
                "*",
                "-deployment",
                "-replicaset",
                "-endpoint",
                "-garbagecollector",
                "-disruption",
                "-job",
                "-cronjob",
                "-daemonset",
                "-podgc"
            ])
            .unwrap(),
            [
                Controller::StatefulSet,
                Controller::EndpointSlice,
                Controller::TtlAfterFinished,
                Controller::CsrSigning,
                Controller::ServiceAccount,
                Controller::RootCaCertPublisher
            ]
        );
        assert_eq!(select(&["replicaset"]).unwrap(), [Controller::ReplicaSet]);
        assert_eq!(select(&[""]).unwrap(), []);
        assert_eq!(
            select(&["deploy"]).unwrap_err(),
            "unknown controller \"deploy\"; known: deployment, replicaset, statefulset, daemonset, endpointslice, \
             endpoint, garbagecollector, podgc, disruption, job, cronjob, ttl-after-finished, csrsigning, \
             serviceaccount, root-ca-cert-publisher"
        );
    }
}
