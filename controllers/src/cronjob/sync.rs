//! One sync of one CronJob: reconcile its status with its Jobs, trim the history,
//! then start the Job of the most recent scheduled time if one is due.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::decide::{self, Concurrency, Decision, Inputs};
use super::schedule::Schedule;
use super::{Context, SCHEDULED_TIMESTAMP, history};
use crate::{Error, owners};

pub async fn reconcile(cached: Arc<CronJob>, context: Arc<Context>) -> Result<Action, Error> {
    let namespace = cached.namespace().unwrap_or_default();
    let cronjobs = Api::<CronJob>::namespaced(context.client.clone(), &namespace);
    // The cache may not show the status the previous sync wrote yet.
    let Some(cronjob) = cronjobs.get_opt(&cached.name_any()).await? else { return Ok(Action::await_change()) };
    if cronjob.uid() != cached.uid() {
        return Ok(Action::await_change());
    }
    let reference = cronjob.object_ref(&());
    let spec = cronjob.spec.clone().unwrap_or_default();
    let uid = cronjob.uid().unwrap_or_default();
    let jobs_api = Api::<Job>::namespaced(context.client.clone(), &namespace);
    let children: Vec<Job> = jobs_api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|j| owners::controller_of(&j.metadata).is_some_and(|o| o.uid == uid))
        .collect();

    // Which of the running Jobs still run.
    let old = cronjob.status.clone().unwrap_or_default();
    let mut active: Vec<ObjectReference> = Vec::new();
    for reference_ in old.active.iter().flatten() {
        let name = reference_.name.clone().unwrap_or_default();
        match children.iter().find(|j| j.uid() == reference_.uid) {
            Some(job) => match history::finished(job) {
                Some(outcome) => {
                    let note = format!("Saw completed job: {name}, condition: {outcome}");
                    context.events.normal(&reference, "SawCompletedJob", note).await;
                }
                None => active.push(reference_.clone()),
            },
            None => {
                // Not among the listed children: gone, or no longer ours.
                match jobs_api.get_opt(&name).await? {
                    Some(job) if job.uid() == reference_.uid && history::finished(&job).is_none() => {
                        active.push(reference_.clone());
                    }
                    _ => {
                        let note = format!("Active job went missing: {name}");
                        context.events.normal(&reference, "MissingJob", note).await;
                    }
                }
            }
        }
    }
    for job in children.iter().filter(|j| history::finished(j).is_none()) {
        if !active.iter().any(|r| r.uid == job.uid()) {
            let note = format!("Saw a job that the controller did not create or forgot: {}", job.name_any());
            context.events.warning(&reference, "UnexpectedJob", note).await;
        }
    }
    let last_success = history::last_success(&children, old.last_successful_time.as_ref().map(|t| t.0));

    // Finished Jobs beyond the history limits go.
    let doomed = history::beyond_limits(
        &children,
        spec.successful_jobs_history_limit.unwrap_or(3),
        spec.failed_jobs_history_limit.unwrap_or(1),
    );
    for name in doomed {
        delete_job(&jobs_api, &name, &context, &reference).await?;
    }

    let mut last_schedule = old.last_schedule_time.as_ref().map(|t| t.0);
    let mut requeue = None;
    if cronjob.metadata.deletion_timestamp.is_none() {
        match Schedule::parse(&spec.schedule, spec.time_zone.as_deref()) {
            Err(reason) => {
                let note = format!("unparseable schedule: {:?} : {reason}", spec.schedule);
                context.events.warning(&reference, "UnparseableSchedule", note).await;
            }
            Ok(schedule) => {
                let scheduler = Scheduler {
                    cronjob: &cronjob,
                    spec: &spec,
                    schedule: &schedule,
                    jobs: &jobs_api,
                    context: &context,
                };
                requeue = scheduler.run(&mut active, &mut last_schedule).await?;
            }
        }
    }

    let status = json!({
        "active": active,
        "lastScheduleTime": last_schedule.map(Time),
        "lastSuccessfulTime": last_success.map(Time),
    });
    let unchanged = old.active.clone().unwrap_or_default() == active
        && old.last_schedule_time.map(|t| t.0) == last_schedule
        && old.last_successful_time.map(|t| t.0) == last_success;
    if !unchanged {
        let patch = json!({"status": status});
        match cronjobs.patch_status(&cronjob.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(match requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// Deletes a Job and, in the background, its pods.
async fn delete_job(api: &Api<Job>, name: &str, context: &Context, on: &ObjectReference) -> Result<(), Error> {
    let params = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..DeleteParams::default() };
    match api.delete(name, &params).await {
        Ok(_) => {
            context.events.normal(on, "SuccessfulDelete", format!("Deleted job {name}")).await;
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => {
            context.events.warning(on, "FailedDelete", format!("Deleted job: {error}")).await;
            Err(error.into())
        }
    }
}

/// Scheduling one CronJob.
struct Scheduler<'a> {
    cronjob: &'a CronJob,
    spec: &'a CronJobSpec,
    schedule: &'a Schedule,
    jobs: &'a Api<Job>,
    context: &'a Context,
}

/// How long until `next`, a little after it so the time has surely come.
fn until(next: Option<Timestamp>, now: Timestamp) -> Option<Duration> {
    let next = next?;
    let millis = u64::try_from(next.as_millisecond() - now.as_millisecond()).unwrap_or(0);
    Some(Duration::from_millis(millis + 100))
}

/// RFC 3339 in `zone`, `Z` for UTC, as Go formats it.
fn rfc3339(t: Timestamp, zone: &jiff::tz::TimeZone) -> String {
    let zoned = t.to_zoned(zone.clone());
    if zoned.offset().seconds() == 0 {
        zoned.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

impl Scheduler<'_> {
    fn reference(&self) -> ObjectReference {
        self.cronjob.object_ref(&())
    }

    /// Starts the Job that is due, if any; returns when to look again.
    async fn run(
        &self,
        active: &mut Vec<ObjectReference>,
        last_schedule: &mut Option<Timestamp>,
    ) -> Result<Option<Duration>, Error> {
        let now = Timestamp::now();
        let created = self.cronjob.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(now);
        let names: Vec<String> = active.iter().filter_map(|r| r.name.clone()).collect();
        let inputs = Inputs {
            schedule: self.schedule,
            earliest: last_schedule.unwrap_or(created),
            starting_deadline_seconds: self.spec.starting_deadline_seconds,
            concurrency: Concurrency::of(self.spec.concurrency_policy.as_deref()),
            suspend: self.spec.suspend.unwrap_or(false),
            active: &names,
            name: &self.cronjob.name_any(),
        };
        let reference = self.reference();
        let events = &self.context.events;
        match decide::decide(&inputs, now) {
            Decision::Suspended => Ok(None),
            Decision::Wait { next } | Decision::AlreadyRunning { next } => Ok(until(next, now)),
            Decision::Missed { scheduled, next } => {
                let note =
                    format!("Missed scheduled time to start a job: {}", scheduled.strftime("%a, %d %b %Y %H:%M:%S %z"));
                events.warning(&reference, "MissSchedule", note).await;
                Ok(until(next, now))
            }
            Decision::Forbidden { next } => {
                let note = "Not starting job because prior execution is running and concurrency policy is Forbid";
                events.normal(&reference, "JobAlreadyActive", note.into()).await;
                Ok(until(next, now))
            }
            Decision::Run { scheduled, job, replace, missed, next } => {
                if missed > decide::TOO_MANY_MISSED {
                    let note = "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew";
                    events.warning(&reference, "TooManyMissedTimes", note.into()).await;
                }
                if replace {
                    for name in std::mem::take(active).into_iter().filter_map(|r| r.name) {
                        delete_job(self.jobs, &name, self.context, &reference).await?;
                    }
                }
                if let Some(started) = self.create(&job, scheduled).await? {
                    active.push(started.object_ref(&()));
                }
                *last_schedule = Some(scheduled);
                Ok(until(next, now))
            }
        }
    }

    /// Creates the Job of `scheduled`; `None` if it exists already and has ended. A
    /// Job of that name that is not this CronJob's is an error.
    async fn create(&self, name: &str, scheduled: Timestamp) -> Result<Option<Job>, Error> {
        let template = self.spec.job_template.clone();
        let meta = template.metadata.unwrap_or_default();
        let mut annotations = meta.annotations.unwrap_or_default();
        let zone = match self.spec.time_zone {
            Some(_) => self.schedule.zone().clone(),
            None => jiff::tz::TimeZone::UTC,
        };
        annotations.insert(SCHEDULED_TIMESTAMP.into(), rfc3339(scheduled, &zone));
        let owner = self.cronjob.controller_owner_ref(&()).expect("a stored CronJob has a name and uid");
        let job = Job {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: self.cronjob.namespace(),
                labels: meta.labels,
                annotations: Some(annotations),
                owner_references: Some(vec![owner]),
                ..ObjectMeta::default()
            },
            spec: template.spec,
            status: None,
        };
        let reference = self.reference();
        match self.jobs.create(&PostParams::default(), &job).await {
            Ok(created) => {
                self.context.events.normal(&reference, "SuccessfulCreate", format!("Created job {name}")).await;
                Ok(Some(created))
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                // Created by an earlier sync whose status write was lost, or by someone else.
                let existing = self.jobs.get(name).await?;
                let ours = owners::controller_of(&existing.metadata)
                    .is_some_and(|o| Some(&o.uid) == self.cronjob.metadata.uid.as_ref());
                if !ours {
                    return Err(Error::Invalid {
                        kind: "CronJob",
                        namespace: self.cronjob.namespace().unwrap_or_default(),
                        name: self.cronjob.name_any(),
                        reason: format!("job {name} exists and is not controlled by this CronJob"),
                    });
                }
                Ok(history::finished(&existing).is_none().then_some(existing))
            }
            Err(error) => {
                let message = match &error {
                    kube::Error::Api(status) => status.message.clone(),
                    other => other.to_string(),
                };
                self.context.events.warning(&reference, "FailedCreate", format!("Error creating job: {message}")).await;
                Err(error.into())
            }
        }
    }
}
