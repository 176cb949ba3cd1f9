//! The TTL-after-finished controller: deletes a Job `ttlSecondsAfterFinished`
//! seconds after it completed or failed, with foreground propagation so its pods go
//! first, as upstream's does.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::Error;

struct Context {
    client: Client,
}

/// Runs the TTL-after-finished controller until its watch ends.
pub async fn run(client: Client) -> Result<(), Error> {
    let context = Arc::new(Context { client: client.clone() });
    Controller::new(Api::<Job>::all(client), watcher::Config::default())
        .run(reconcile, retry_later, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "ttl-after-finished sync failed");
            }
        })
        .await;
    Err(Error::Stopped { controller: "ttl-after-finished" })
}

fn retry_later(_: Arc<Job>, _: &Error, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(2))
}

/// When a finished Job with a TTL expires: its completion time, else the time its
/// `Complete` or `Failed` condition became true, plus the TTL. `None` when the Job
/// has no TTL or has not finished.
pub fn expires_at(job: &Job) -> Option<Timestamp> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let status = job.status.as_ref()?;
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let finished = conditions
        .iter()
        .find(|c| (c.type_ == crate::job::COMPLETE || c.type_ == crate::job::FAILED) && c.status == "True")?;
    let at = status
        .completion_time
        .as_ref()
        .filter(|_| finished.type_ == crate::job::COMPLETE)
        .or(finished.last_transition_time.as_ref())?;
    at.0.checked_add(jiff::SignedDuration::from_secs(i64::from(ttl))).ok()
}

async fn reconcile(job: Arc<Job>, context: Arc<Context>) -> Result<Action, Error> {
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(expiry) = expires_at(&job) else { return Ok(Action::await_change()) };
    let now = Timestamp::now();
    if now < expiry {
        let left = now.duration_until(expiry).unsigned_abs();
        return Ok(Action::requeue(left + Duration::from_millis(100)));
    }
    // The cache may be stale: the TTL may have been changed, or the Job replaced.
    let api = Api::<Job>::namespaced(context.client.clone(), &job.namespace().unwrap_or_default());
    let Some(fresh) = api.get_opt(&job.name_any()).await? else { return Ok(Action::await_change()) };
    if fresh.uid() != job.uid() || expires_at(&fresh).is_none_or(|at| now < at) {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions { uid: fresh.uid(), resource_version: fresh.resource_version() }),
        ..DeleteParams::default()
    };
    tracing::info!(job = %fresh.name_any(), namespace = %fresh.namespace().unwrap_or_default(), "deleting a finished job past its ttl");
    match api.delete(&fresh.name_any(), &params).await {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(Action::await_change()),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finished_jobs_expire_ttl_seconds_after_they_ended() {
        let job = |ttl: Option<i32>, status: serde_json::Value| -> Job {
            serde_json::from_value(json!({"metadata": {"name": "j"}, "spec": {"ttlSecondsAfterFinished": ttl,
                "template": {}}, "status": status}))
            .unwrap()
        };
        let complete = json!({"completionTime": "2026-01-01T00:00:10Z", "conditions": [
            {"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:11Z"}]});
        let failed = json!({"conditions": [
            {"type": "Failed", "status": "True", "lastTransitionTime": "2026-01-01T00:00:20Z"}]});
        let running = json!({"conditions": [{"type": "Suspended", "status": "False"}]});
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(expires_at(&job(Some(5), complete.clone())), Some(at("2026-01-01T00:00:15Z")));
        assert_eq!(expires_at(&job(Some(0), failed)), Some(at("2026-01-01T00:00:20Z")));
        assert_eq!(expires_at(&job(Some(5), running)), None);
        assert_eq!(expires_at(&job(None, complete)), None);
    }
}
