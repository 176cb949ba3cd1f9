//! One sync of one Job: claim its pods, count the ones that ended (through the
//! tracking finalizer), decide whether it failed or succeeded, start or stop pods,
//! and write the status.
//!
//! The Job is read afresh from the API server and its pods listed from it, not from
//! a cache, so a sync never works from counts older than the last one wrote.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::Selector;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};

use super::conditions::{self as cond, COMPLETE, FAILED, FAILURE_TARGET, SUCCESS_CRITERIA_MET, SUSPENDED};
use super::policy::{self, Backoff, Counts, Shape, Verdict};
use super::tracking::{self, Outcome, Uncounted};
use super::{Context, MANAGER, indexes, template};
use crate::owners::{self, Claim};
use crate::{Error, pods};

/// At most this many pods are created or deleted per sync (upstream's burst).
const BURST: usize = 500;
/// How often a running Job is looked at even when nothing happens.
const RESYNC: Duration = Duration::from_secs(300);

pub async fn reconcile(cached: Arc<Job>, context: Arc<Context>) -> Result<Action, Error> {
    let namespace = cached.namespace().unwrap_or_default();
    let jobs = Api::<Job>::namespaced(context.client.clone(), &namespace);
    // The cache may not show the status the previous sync wrote yet.
    let Some(job) = jobs.get_opt(&cached.name_any()).await? else { return Ok(Action::await_change()) };
    if job.uid() != cached.uid() {
        return Ok(Action::await_change());
    }
    let spec = job.spec.clone().unwrap_or_default();
    if spec.managed_by.as_deref().is_some_and(|m| m != MANAGER) {
        return Ok(Action::await_change());
    }
    let invalid = |reason: &str| Error::Invalid {
        kind: "Job",
        namespace: namespace.clone(),
        name: job.name_any(),
        reason: reason.into(),
    };
    let selector = owners::selector(&job, spec.selector.as_ref().ok_or_else(|| invalid("spec.selector is required"))?)?;
    let api = Api::<Pod>::namespaced(context.client.clone(), &namespace);
    let pods = claim(&job, &selector, &api).await?;
    let sync = Sync { job: &job, spec: &spec, api: &api, jobs: &jobs, context: &context };

    if job.metadata.deletion_timestamp.is_some() {
        // Going away: its pods must not be held by a finalizer no one will remove.
        let holding: Vec<&Pod> = pods.iter().filter(|p| tracking::has_finalizer(p)).collect();
        sync.release(&holding).await?;
        return Ok(Action::await_change());
    }
    sync.run(pods).await
}

/// The Job's pods: those it controls and that match, plus matching orphans adopted;
/// pods that stopped matching are released.
async fn claim(job: &Job, selector: &Selector, api: &Api<Pod>) -> Result<Vec<Pod>, Error> {
    let uid = job.uid().unwrap_or_default();
    let deleting = job.metadata.deletion_timestamp.is_some();
    let mut mine = Vec::new();
    for pod in api.list(&ListParams::default()).await?.items {
        match owners::claim(&uid, deleting, selector, &pod.metadata) {
            Claim::Owned => mine.push(pod),
            Claim::Adopt => {
                let owner = job.controller_owner_ref(&()).expect("a stored Job has a name and uid");
                if let Some(adopted) = patch_pod(api, &pod, &owners::adoption_patch(&pod.metadata, owner)).await? {
                    mine.push(adopted);
                }
            }
            Claim::Release => {
                patch_pod(api, &pod, &owners::release_patch(&pod.metadata, &uid)).await?;
            }
            Claim::Ignore => {}
        }
    }
    Ok(mine)
}

/// A merge patch of a pod; `None` when the pod is gone or changed meanwhile.
async fn patch_pod(api: &Api<Pod>, pod: &Pod, patch: &Value) -> Result<Option<Pod>, Error> {
    match api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(pod) => Ok(Some(pod)),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(None),
        Err(error) => Err(error.into()),
    }
}

struct Sync<'a> {
    job: &'a Job,
    spec: &'a JobSpec,
    api: &'a Api<Pod>,
    jobs: &'a Api<Job>,
    context: &'a Context,
}

/// When a pod ended: its containers' last finish, else its deletion, else `now`.
fn finish_time(pod: &Pod, now: Timestamp) -> Timestamp {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    let finished = statuses
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref().map(|t| t.0))
        .max();
    finished.or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0)).unwrap_or(now)
}

/// The backoff after newly ended pods: a success resets it, failures after the last
/// success add to it.
fn next_backoff(previous: Option<Backoff>, ended: &[(&Pod, Outcome)], now: Timestamp) -> Option<Backoff> {
    let last_success = ended.iter().filter(|(_, o)| *o == Outcome::Succeeded).map(|(p, _)| finish_time(p, now)).max();
    let failures: Vec<Timestamp> = ended
        .iter()
        .filter(|(_, o)| *o == Outcome::Failed)
        .map(|(p, _)| finish_time(p, now))
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .collect();
    let base = if last_success.is_some() { None } else { previous };
    let Some(latest) = failures.iter().max().copied() else { return base };
    let count = u32::try_from(failures.len()).unwrap_or(u32::MAX);
    Some(match base {
        Some(b) => Backoff { failures: b.failures.saturating_add(count), last_failure: b.last_failure.max(latest) },
        None => Backoff { failures: count, last_failure: latest },
    })
}

impl Sync<'_> {
    fn reference(&self) -> ObjectReference {
        self.job.object_ref(&())
    }

    fn uid(&self) -> String {
        self.job.uid().unwrap_or_default()
    }

    async fn run(&self, pods: Vec<Pod>) -> Result<Action, Error> {
        let now = Timestamp::now();
        let old = self.job.status.clone().unwrap_or_default();
        let shape = Shape::of(self.spec);
        let completions = self.spec.completions.unwrap_or(0);
        let only_failed_phase =
            self.spec.pod_replacement_policy.as_deref() == Some("Failed") || self.spec.pod_failure_policy.is_some();
        let finished = cond::finished(Some(&old));
        let mut completed = indexes::parse(old.completed_indexes.as_deref().unwrap_or(""), completions);
        let mut uncounted = Uncounted::from_status(old.uncounted_terminated_pods.as_ref());

        // 1. Record the pods that ended before anything lets go of them.
        if finished.is_none() {
            let ended = tracking::newly_ended(&pods, &uncounted, only_failed_phase);
            if !ended.is_empty() {
                for (pod, outcome) in &ended {
                    let uid = tracking::uid(pod).to_owned();
                    match outcome {
                        Outcome::Succeeded => {
                            if let Some(index) = indexes::of(pod).filter(|i| shape.indexed && *i < completions) {
                                completed.insert(index);
                            }
                            uncounted.succeeded.insert(uid);
                        }
                        Outcome::Failed => {
                            uncounted.failed.insert(uid);
                        }
                    }
                }
                self.note_backoff(&ended, now);
                let mut patch = json!({"uncountedTerminatedPods": uncounted.to_json()});
                if shape.indexed {
                    patch["completedIndexes"] = json!(indexes::format(&completed));
                }
                self.patch_status(patch).await?;
            }
        }

        // 2. Let go of the recorded pods (of every pod, once the Job has ended).
        let holding: Vec<&Pod> = pods
            .iter()
            .filter(|p| tracking::has_finalizer(p))
            .filter(|p| finished.is_some() || uncounted.contains(tracking::uid(p)))
            .collect();
        let released = self.release(&holding).await?;

        // 3. Count what was let go.
        let (newly_succeeded, newly_failed, left) = tracking::settle(&uncounted, &pods, &released);
        uncounted = left;
        let succeeded = if shape.indexed {
            i32::try_from(completed.len()).unwrap_or(i32::MAX)
        } else {
            old.succeeded.unwrap_or(0) + newly_succeeded
        };
        let failed = old.failed.unwrap_or(0) + newly_failed;
        let pending = |set: &BTreeSet<String>| i32::try_from(set.len()).unwrap_or(i32::MAX);

        let mut active: Vec<Pod> = pods.iter().filter(|p| tracking::is_active(p)).cloned().collect();
        let terminating = pods.iter().filter(|p| tracking::is_terminating(p)).count();
        let mut conditions = old.conditions.clone().unwrap_or_default();
        let mut start_time = old.start_time.clone().map(|t| t.0);
        let mut completion_time = old.completion_time.clone().map(|t| t.0);
        let mut requeue = RESYNC;
        let mut ending: Option<(&str, (String, String))> = None;

        if finished.is_none() {
            // Suspension stops the pods and the deadline; resuming restarts the clock.
            let suspended = cond::is_true(&conditions, SUSPENDED);
            if shape.suspend && !suspended {
                cond::set(&mut conditions, SUSPENDED, true, cond::JOB_SUSPENDED, now);
                self.context.events.normal(&self.reference(), "Suspended", "Job suspended".into()).await;
            } else if !shape.suspend && suspended {
                cond::set(&mut conditions, SUSPENDED, false, cond::JOB_RESUMED, now);
                self.context.events.normal(&self.reference(), "Resumed", "Job resumed".into()).await;
                start_time = Some(now);
            }
            if start_time.is_none() && !shape.suspend {
                start_time = Some(now);
            }

            let restarts = if self.restarts_on_failure() { active.iter().map(container_restarts).sum() } else { 0 };
            let counts = Counts {
                succeeded: succeeded + if shape.indexed { 0 } else { pending(&uncounted.succeeded) },
                failed: failed + pending(&uncounted.failed) + restarts,
                active: i32::try_from(active.len()).unwrap_or(i32::MAX),
            };
            // A verdict once reached stands (upstream's "target" conditions).
            let decided = if let Some(c) = cond::true_condition(&conditions, FAILURE_TARGET) {
                Some((FAILURE_TARGET, FAILED, reason_of(c)))
            } else if let Some(c) = cond::true_condition(&conditions, SUCCESS_CRITERIA_MET) {
                Some((SUCCESS_CRITERIA_MET, COMPLETE, reason_of(c)))
            } else {
                match policy::verdict(&shape, counts, start_time, now) {
                    Verdict::Fails(why) => Some((FAILURE_TARGET, FAILED, owned(why))),
                    Verdict::Succeeds(why) => Some((SUCCESS_CRITERIA_MET, COMPLETE, owned(why))),
                    Verdict::Runs => None,
                }
            };
            if let Some((target, terminal, why)) = decided {
                let why_ref = (why.0.as_str(), why.1.as_str());
                cond::set(&mut conditions, target, true, why_ref, now);
                // The Job's verdict is in: nothing of it runs any longer.
                let stopped = self.delete_pods(std::mem::take(&mut active)).await?;
                if stopped == 0 && terminating == 0 && uncounted.is_empty() {
                    cond::set(&mut conditions, terminal, true, why_ref, now);
                    if terminal == COMPLETE {
                        completion_time = Some(now);
                    }
                    ending = Some((terminal, why));
                }
            } else {
                if let Some(wait) = self.manage(&shape, &mut active, &completed, succeeded, now).await? {
                    requeue = requeue.min(wait);
                }
                if let Some(left) = policy::deadline_left(&shape, start_time, now).filter(|_| !shape.suspend) {
                    requeue = requeue.min(left + Duration::from_millis(100));
                }
            }
        }

        let ready = active.iter().filter(|p| pods::is_ready(p)).count();
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        let status = JobStatus {
            active: Some(count(active.len())),
            ready: Some(count(ready)),
            terminating: Some(count(terminating)),
            succeeded: Some(succeeded),
            failed: Some(failed),
            start_time: start_time.map(Time),
            completion_time: completion_time.map(Time),
            conditions: (!conditions.is_empty()).then_some(conditions),
            uncounted_terminated_pods: Some(UncountedTerminatedPods {
                succeeded: Some(uncounted.succeeded.iter().cloned().collect()),
                failed: Some(uncounted.failed.iter().cloned().collect()),
            }),
            completed_indexes: shape.indexed.then(|| indexes::format(&completed)),
            failed_indexes: old.failed_indexes.clone(),
        };
        if normalized(&status) != normalized(&old) {
            self.patch_status(serde_json::to_value(&status).unwrap_or_default()).await?;
        }
        match ending.clone() {
            Some((COMPLETE, _)) => {
                self.context.events.normal(&self.reference(), "Completed", "Job completed".into()).await
            }
            Some((_, (reason, message))) => self.context.events.warning(&self.reference(), &reason, message).await,
            None => {}
        }
        if ending.is_some() {
            self.context.backoffs.lock().expect("backoff lock").remove(&self.uid());
        }
        Ok(Action::requeue(requeue))
    }

    /// Updates the Job's backoff with pods that just ended.
    fn note_backoff(&self, ended: &[(&Pod, Outcome)], now: Timestamp) {
        let mut backoffs = self.context.backoffs.lock().expect("backoff lock");
        let previous = backoffs.get(&self.uid()).copied();
        match next_backoff(previous, ended, now) {
            Some(next) => backoffs.insert(self.uid(), next),
            None => backoffs.remove(&self.uid()),
        };
    }

    fn restarts_on_failure(&self) -> bool {
        let spec = self.spec.template.spec.as_ref();
        spec.and_then(|s| s.restart_policy.as_deref()) == Some("OnFailure")
    }

    /// Starts or stops pods so that as many run as the Job wants. Returns how long to
    /// wait when failures hold new pods back.
    async fn manage(
        &self,
        shape: &Shape,
        active: &mut Vec<Pod>,
        completed: &BTreeSet<i32>,
        succeeded: i32,
        now: Timestamp,
    ) -> Result<Option<Duration>, Error> {
        let completions = shape.completions.unwrap_or(0);
        if shape.indexed {
            // A pod with no valid index, an index already completed, or one another pod
            // runs too, is surplus.
            let mut seen = BTreeSet::new();
            let (keep, surplus): (Vec<Pod>, Vec<Pod>) = std::mem::take(active).into_iter().partition(|p| {
                indexes::of(p).is_some_and(|i| i < completions && !completed.contains(&i) && seen.insert(i))
            });
            *active = keep;
            self.delete_pods(surplus).await?;
        }
        let running = i32::try_from(active.len()).unwrap_or(i32::MAX);
        let want = policy::want_active(shape, succeeded, running);
        if running > want {
            let excess = usize::try_from(running - want).unwrap_or(0).min(BURST);
            active.sort_by(pods::deletion_order);
            let doomed: Vec<Pod> = active.drain(..excess).collect();
            self.delete_pods(doomed).await?;
            return Ok(None);
        }
        if running == want {
            return Ok(None);
        }
        let backoff = self.context.backoffs.lock().expect("backoff lock").get(&self.uid()).copied();
        let wait = policy::backoff_left(backoff, now);
        if !wait.is_zero() {
            tracing::debug!(job = %self.job.name_any(), ?wait, "holding new pods back after failures");
            return Ok(Some(wait));
        }
        let missing = usize::try_from(want - running).unwrap_or(0).min(BURST);
        let slots: Vec<Option<i32>> = if shape.indexed {
            let running: BTreeSet<i32> = active.iter().filter_map(indexes::of).collect();
            policy::indexes_to_start(completions, completed, &running, missing).into_iter().map(Some).collect()
        } else {
            vec![None; missing]
        };
        self.create_pods(&slots, active).await?;
        Ok(None)
    }

    /// Creates pods in batches of 1, 2, 4, ..., stopping at the first failure.
    async fn create_pods(&self, slots: &[Option<i32>], active: &mut Vec<Pod>) -> Result<(), Error> {
        let reference = self.reference();
        let params = PostParams::default();
        let (mut done, mut batch) = (0, 1);
        while done < slots.len() {
            let n = batch.min(slots.len() - done);
            let pods: Vec<Pod> = slots[done..done + n].iter().map(|index| template::pod(self.job, *index)).collect();
            let results = join_all(pods.iter().map(|pod| self.api.create(&params, pod))).await;
            let mut failure = None;
            for result in results {
                match result {
                    Ok(created) => {
                        let note = format!("Created pod: {}", created.name_any());
                        self.context.events.normal(&reference, "SuccessfulCreate", note).await;
                        active.push(created);
                    }
                    Err(error) => failure = Some(error),
                }
            }
            if let Some(error) = failure {
                let message = match &error {
                    kube::Error::Api(status) => status.message.clone(),
                    other => other.to_string(),
                };
                self.context.events.warning(&reference, "FailedCreate", format!("Error creating: {message}")).await;
                return Err(error.into());
            }
            done += n;
            batch *= 2;
        }
        Ok(())
    }

    /// Deletes pods the Job no longer wants; they are let go of first, so that they
    /// are not counted as failures. Returns how many were deleted.
    async fn delete_pods(&self, doomed: Vec<Pod>) -> Result<usize, Error> {
        if doomed.is_empty() {
            return Ok(0);
        }
        let reference = self.reference();
        let holding: Vec<&Pod> = doomed.iter().filter(|p| tracking::has_finalizer(p)).collect();
        self.release(&holding).await?;
        let names: Vec<String> = doomed.iter().map(|p| p.name_any()).collect();
        let params = DeleteParams::default();
        let results = join_all(names.iter().map(|name| self.api.delete(name, &params))).await;
        let mut deleted = 0;
        for (name, result) in names.iter().zip(results) {
            match result {
                Ok(_) => {
                    deleted += 1;
                    self.context.events.normal(&reference, "SuccessfulDelete", format!("Deleted pod: {name}")).await;
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => {
                    let note = format!("Error deleting: {error}");
                    self.context.events.warning(&reference, "FailedDelete", note).await;
                    return Err(error.into());
                }
            }
        }
        Ok(deleted)
    }

    /// Takes the tracking finalizer off `holding`; returns the uids let go of (or
    /// gone). A pod changed meanwhile keeps it until the next sync.
    async fn release(&self, holding: &[&Pod]) -> Result<BTreeSet<String>, Error> {
        let results = join_all(holding.iter().map(|pod| {
            let patch = tracking::release_patch(pod);
            async move {
                match self.api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(status)) if status.code == 404 => Ok(true),
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                    Err(error) => Err(error),
                }
            }
        }))
        .await;
        let mut released = BTreeSet::new();
        for (pod, result) in holding.iter().zip(results) {
            if result? {
                released.insert(tracking::uid(pod).to_owned());
            }
        }
        Ok(released)
    }

    async fn patch_status(&self, status: Value) -> Result<(), Error> {
        let patch = json!({"status": status});
        match self.jobs.patch_status(&self.job.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

/// A status with absent and empty lists alike, to tell whether a write is needed.
fn normalized(status: &JobStatus) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    value["uncountedTerminatedPods"] = json!({
        "succeeded": uncounted.succeeded.unwrap_or_default(),
        "failed": uncounted.failed.unwrap_or_default(),
    });
    for field in ["active", "ready", "terminating", "succeeded", "failed"] {
        if value.get(field).is_none_or(Value::is_null) {
            value[field] = json!(0);
        }
    }
    value
}

/// A condition's reason and message, owned.
fn reason_of(condition: &JobCondition) -> (String, String) {
    (condition.reason.clone().unwrap_or_default(), condition.message.clone().unwrap_or_default())
}

fn owned((reason, message): (&str, &str)) -> (String, String) {
    (reason.to_owned(), message.to_owned())
}

fn container_restarts(pod: &Pod) -> i32 {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    statuses.into_iter().flatten().map(|c| c.restart_count).sum()
}
