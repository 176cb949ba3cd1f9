//! The Job controller: runs a Job's pods to completion, `parallelism` at a time,
//! until `completions` of them succeeded (or, with no completions, until one did and
//! the rest ended: a work queue), each with its own completion index in Indexed
//! mode; gives up after `backoffLimit` failures or `activeDeadlineSeconds`, stopping
//! what still runs; stops everything while suspended; and reports it all in the
//! status with upstream's conditions, counting every pod once through the
//! [`tracking`] finalizer.
//!
//! - [`sync`]: one sync of one Job, against the API server.
//! - [`policy`]: the decisions that need no API (verdicts, pod counts, backoff).
//! - [`conditions`], [`indexes`], [`template`], [`tracking`]: the parts of a Job's
//!   status and pods.
//! - [`orphans`]: finalizers of pods whose Job is gone.

mod conditions;
mod indexes;
mod orphans;
mod policy;
mod sync;
mod template;
mod tracking;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::core::SelectorExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::Error;
use crate::events::Events;
use crate::owners;

pub use conditions::{COMPLETE, FAILED};

const NAME: &str = "job-controller";
/// The `spec.managedBy` value of Jobs this controller manages (also when unset).
const MANAGER: &str = "kubernetes.io/job-controller";

struct Context {
    client: Client,
    events: Events,
    /// Failures since the last success per Job uid, which delay new pods. Kept in
    /// memory, as upstream keeps its backoff records: a restart forgets them.
    backoffs: Mutex<HashMap<String, policy::Backoff>>,
}

/// Runs the Job controller until its watches end.
pub async fn run(client: Client) -> Result<(), Error> {
    let controller = Controller::new(Api::<Job>::all(client.clone()), watcher::Config::default());
    let jobs = controller.store();
    let context = Arc::new(Context {
        client: client.clone(),
        events: Events::new(client.clone(), NAME),
        backoffs: Mutex::default(),
    });
    let controller = controller
        .watches(Api::<Pod>::all(client.clone()), watcher::Config::default(), move |pod| interested(&jobs, &pod))
        .run(sync::reconcile, retry_later, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "job sync failed");
            }
        });
    futures::future::join(controller, orphans::run(client)).await;
    Err(Error::Stopped { controller: "job" })
}

/// The Jobs a pod event concerns: its controller, or (an orphan) every Job of its
/// namespace whose selector matches it.
fn interested(jobs: &Store<Job>, pod: &Pod) -> Vec<ObjectRef<Job>> {
    let Some(namespace) = pod.namespace() else { return Vec::new() };
    if let Some(owner) = owners::controller_of(&pod.metadata) {
        if owner.kind == "Job" && owner.api_version == "batch/v1" {
            return vec![ObjectRef::new(&owner.name).within(&namespace)];
        }
        return Vec::new();
    }
    let labels = pod.labels();
    jobs.state()
        .iter()
        .filter(|job| job.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|job| {
            let selector = job.spec.as_ref().and_then(|s| s.selector.as_ref());
            selector.and_then(|s| owners::selector(job.as_ref(), s).ok()).is_some_and(|s| s.matches(labels))
        })
        .map(|job| ObjectRef::from_obj(job.as_ref()))
        .collect()
}

fn retry_later(_: Arc<Job>, _: &Error, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(2))
}
