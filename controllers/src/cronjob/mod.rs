//! The CronJob controller: starts a CronJob's Job at each scheduled time (in its time
//! zone, within its starting deadline, as its concurrency policy allows), keeps the
//! running ones in its status, remembers the last schedule and the last success, and
//! deletes finished Jobs beyond the history limits. It looks again at the next
//! scheduled time.
//!
//! - [`schedule`]: cron syntax and time zones.
//! - [`decide`]: whether a Job starts now, given `now`.
//! - [`history`]: running, succeeded and expired Jobs.
//! - [`sync`]: one sync of one CronJob, against the API server.

mod decide;
mod history;
mod schedule;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client};

use crate::Context;
use crate::Error;

const NAME: &str = "cronjob-controller";
/// The annotation with the time a Job was scheduled for, in the CronJob's zone.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Runs the CronJob controller until its watches end.
pub async fn run(client: Client) -> Result<(), Error> {
    let context = Context::new(client.clone(), NAME);
    Controller::new(Api::<CronJob>::all(client.clone()), watcher::Config::default())
        .owns(Api::<Job>::all(client), watcher::Config::default())
        .run(sync::reconcile, retry_later, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "cronjob sync failed");
            }
        })
        .await;
    Err(Error::Stopped { controller: "cronjob" })
}

fn retry_later(_: Arc<CronJob>, _: &Error, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(2))
}
