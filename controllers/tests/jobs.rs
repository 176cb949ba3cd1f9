//! The Job, TTL-after-finished and CronJob controllers against Waggle's API server,
//! through kube-rs. No kubelet runs here, so the test plays its part
//! ([`support::play_kubelet`]): a pod whose command is `false` fails, one whose command
//! is `sleep` runs (and is ready), any other succeeds.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::{Bed, eventually};
use waggle_controllers::Controller;

const TRACKING: &str = "batch.kubernetes.io/job-tracking";
const INDEX: &str = "batch.kubernetes.io/job-completion-index";

fn job(name: &str, command: &[&str], spec: serde_json::Value) -> Job {
    let mut value = json!({
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": command}]},
            },
        },
    });
    for (key, field) in spec.as_object().unwrap() {
        value["spec"][key] = field.clone();
    }
    serde_json::from_value(value).unwrap()
}

fn condition<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == type_ && c.status == "True")
}

async fn finished(jobs: &Api<Job>, name: &str, type_: &str) -> Job {
    eventually(&format!("job {name} {type_}"), Duration::from_secs(40), || async {
        let job = jobs.get(name).await.unwrap();
        condition(&job, type_).is_some().then_some(job)
    })
    .await
}

async fn pods_of(pods: &Api<Pod>, job: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}"))).await.unwrap().items
}

fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.finalizers().iter().any(|f| f == TRACKING)
}

async fn reasons(bed: &Bed, about: &str) -> Vec<String> {
    let events: Api<Event> = bed.api();
    let list = events.list(&ListParams::default()).await.unwrap().items;
    list.into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(about))
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_complete_with_counts_conditions_and_finalizers_gone() {
    let bed = Bed::start(&[Controller::Job], true).await;
    let jobs: Api<Job> = bed.api();
    let pods: Api<Pod> = bed.api();
    jobs.create(&PostParams::default(), &job("pi", &["true"], json!({"completions": 3, "parallelism": 2})))
        .await
        .unwrap();
    // Never more than `parallelism` pods at once.
    let sampler = tokio::spawn({
        let pods = pods.clone();
        async move {
            let mut most = 0;
            for _ in 0..100 {
                let live = pods_of(&pods, "pi").await;
                let running =
                    live.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Succeeded"));
                most = most.max(running.count());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            most
        }
    });
    let done = finished(&jobs, "pi", "Complete").await;
    assert!(sampler.await.unwrap() <= 2, "more pods than the parallelism ran at once");
    let status = done.status.clone().unwrap();
    assert_eq!(
        (status.succeeded, status.failed, status.active, status.ready, status.terminating),
        (Some(3), Some(0), Some(0), Some(0), Some(0))
    );
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    assert!(status.start_time.unwrap().0 <= status.completion_time.unwrap().0);
    let uncounted = status.uncounted_terminated_pods.unwrap();
    assert!(uncounted.succeeded.unwrap_or_default().is_empty() && uncounted.failed.unwrap_or_default().is_empty());
    assert_eq!(condition(&done, "SuccessCriteriaMet").unwrap().reason.as_deref(), Some("CompletionsReached"));
    assert_eq!(condition(&done, "Complete").unwrap().reason.as_deref(), Some("CompletionsReached"));

    let mine = pods_of(&pods, "pi").await;
    assert_eq!(mine.len(), 3);
    for pod in &mine {
        assert!(pod.name_any().starts_with("pi-"), "{}", pod.name_any());
        assert!(!has_tracking_finalizer(pod), "{} still has the tracking finalizer", pod.name_any());
        assert_eq!(pod.labels()["batch.kubernetes.io/controller-uid"], done.uid().unwrap());
        assert_eq!(pod.labels()["controller-uid"], done.uid().unwrap());
        assert_eq!(pod.labels()["job-name"], "pi");
        let owner = &pod.owner_references()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
    }
    let seen = reasons(&bed, "pi").await;
    assert!(seen.iter().filter(|r| *r == "SuccessfulCreate").count() >= 1, "{seen:?}");
    assert!(seen.contains(&"Completed".to_string()), "{seen:?}");

    // A work queue (parallelism without completions) is done once one succeeded and
    // the others ended.
    jobs.create(&PostParams::default(), &job("queue", &["true"], json!({"parallelism": 2}))).await.unwrap();
    let queue = finished(&jobs, "queue", "Complete").await;
    assert_eq!(queue.spec.as_ref().unwrap().completions, None);
    assert_eq!(queue.status.as_ref().unwrap().succeeded, Some(2));
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_jobs_run_each_index_once() {
    let bed = Bed::start(&[Controller::Job], true).await;
    let jobs: Api<Job> = bed.api();
    let pods: Api<Pod> = bed.api();
    let spec = json!({"completions": 4, "parallelism": 2, "completionMode": "Indexed"});
    jobs.create(&PostParams::default(), &job("shards", &["true"], spec)).await.unwrap();
    let done = finished(&jobs, "shards", "Complete").await;
    let status = done.status.unwrap();
    assert_eq!(status.completed_indexes.as_deref(), Some("0-3"));
    assert_eq!(status.succeeded, Some(4));
    let mine = pods_of(&pods, "shards").await;
    let indexes: BTreeSet<String> = mine.iter().map(|p| p.annotations()[INDEX].clone()).collect();
    assert_eq!(mine.len(), 4, "an index ran twice");
    assert_eq!(indexes, ["0", "1", "2", "3"].into_iter().map(String::from).collect());
    for pod in &mine {
        let index = &pod.annotations()[INDEX];
        assert_eq!(&pod.labels()[INDEX], index);
        assert!(pod.name_any().starts_with(&format!("shards-{index}-")), "{}", pod.name_any());
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some(format!("shards-{index}").as_str()));
        let env = spec.containers[0].env.as_ref().unwrap();
        assert!(env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX"));
        assert!(!has_tracking_finalizer(pod));
    }
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_past_the_backoff_limit_fail_the_job_and_stop_its_pods() {
    let bed = Bed::start(&[Controller::Job], true).await;
    let jobs: Api<Job> = bed.api();
    let pods: Api<Pod> = bed.api();
    // Both pods fail: two failures exceed a backoff limit of one.
    let spec = json!({"completions": 2, "parallelism": 2, "backoffLimit": 1});
    jobs.create(&PostParams::default(), &job("broken", &["false"], spec)).await.unwrap();
    let failed = finished(&jobs, "broken", "Failed").await;
    let condition_of = |job: &Job, type_: &str| {
        let c = condition(job, type_).unwrap();
        (c.reason.clone().unwrap(), c.message.clone().unwrap())
    };
    let expected = ("BackoffLimitExceeded".to_string(), "Job has reached the specified backoff limit".to_string());
    assert_eq!(condition_of(&failed, "Failed"), expected);
    assert_eq!(condition_of(&failed, "FailureTarget"), expected);
    assert!(condition(&failed, "Complete").is_none());
    let status = failed.status.clone().unwrap();
    assert_eq!((status.failed, status.succeeded, status.active), (Some(2), Some(0), Some(0)));
    assert!(status.completion_time.is_none());
    assert!(pods_of(&pods, "broken").await.iter().all(|p| !has_tracking_finalizer(p)));
    assert!(reasons(&bed, "broken").await.contains(&"BackoffLimitExceeded".to_string()));

    // One of three running pods fails with no failure allowed: the other two are deleted.
    let spec = json!({"completions": 3, "parallelism": 3, "backoffLimit": 0});
    jobs.create(&PostParams::default(), &job("fragile", &["sleep", "3600"], spec)).await.unwrap();
    let running = eventually("three running pods", Duration::from_secs(30), || async {
        let live = pods_of(&pods, "fragile").await;
        let running = live.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
        (running.count() == 3).then_some(live)
    })
    .await;
    let victim = running[0].name_any();
    let fail = json!({"status": {"phase": "Failed"}});
    pods.patch_status(&victim, &PatchParams::default(), &Patch::Merge(&fail)).await.unwrap();
    let failed = finished(&jobs, "fragile", "Failed").await;
    assert_eq!(condition_of(&failed, "Failed").0, "BackoffLimitExceeded");
    let status = failed.status.unwrap();
    assert_eq!((status.failed, status.active, status.terminating), (Some(1), Some(0), Some(0)));
    let left = pods_of(&pods, "fragile").await;
    assert_eq!(left.iter().map(|p| p.name_any()).collect::<Vec<_>>(), [victim], "active pods were not deleted");
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_deadline_ends_a_job() {
    let bed = Bed::start(&[Controller::Job], true).await;
    let jobs: Api<Job> = bed.api();
    let pods: Api<Pod> = bed.api();
    let spec = json!({"completions": 2, "parallelism": 2, "activeDeadlineSeconds": 2});
    jobs.create(&PostParams::default(), &job("slow", &["sleep", "3600"], spec)).await.unwrap();
    eventually("two running pods", Duration::from_secs(30), || async {
        let job = jobs.get("slow").await.unwrap();
        (job.status.and_then(|s| s.ready) == Some(2)).then_some(())
    })
    .await;
    let failed = finished(&jobs, "slow", "Failed").await;
    let c = condition(&failed, "Failed").unwrap();
    assert_eq!(c.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(c.message.as_deref(), Some("Job was active longer than specified deadline"));
    let status = failed.status.clone().unwrap();
    let ran = c.last_transition_time.as_ref().unwrap().0.duration_since(status.start_time.unwrap().0);
    assert!(ran >= jiff::SignedDuration::from_secs(2), "failed after {ran:?}");
    assert_eq!((status.active, status.failed), (Some(0), Some(0)));
    assert!(pods_of(&pods, "slow").await.is_empty(), "the running pods were not deleted");
    assert!(reasons(&bed, "slow").await.contains(&"DeadlineExceeded".to_string()));
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_jobs_run_nothing_until_resumed() {
    let bed = Bed::start(&[Controller::Job], true).await;
    let jobs: Api<Job> = bed.api();
    let pods: Api<Pod> = bed.api();
    let spec = json!({"completions": 2, "parallelism": 2, "suspend": true});
    jobs.create(&PostParams::default(), &job("later", &["sleep", "3600"], spec)).await.unwrap();
    let suspended = finished(&jobs, "later", "Suspended").await;
    assert_eq!(condition(&suspended, "Suspended").unwrap().reason.as_deref(), Some("JobSuspended"));
    assert!(suspended.status.as_ref().unwrap().start_time.is_none());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(pods_of(&pods, "later").await.is_empty(), "a suspended job started pods");

    let resume = json!({"spec": {"suspend": false}});
    jobs.patch("later", &PatchParams::default(), &Patch::Merge(&resume)).await.unwrap();
    let resumed = eventually("the resumed job's pods", Duration::from_secs(30), || async {
        let job = jobs.get("later").await.unwrap();
        (job.status.as_ref().and_then(|s| s.ready) == Some(2)).then_some(job)
    })
    .await;
    let c = resumed.status.as_ref().unwrap().conditions.as_ref().unwrap().iter().find(|c| c.type_ == "Suspended");
    assert_eq!(c.map(|c| (c.status.as_str(), c.reason.as_deref())), Some(("False", Some("JobResumed"))));
    assert!(resumed.status.as_ref().unwrap().start_time.is_some());

    let suspend = json!({"spec": {"suspend": true}});
    jobs.patch("later", &PatchParams::default(), &Patch::Merge(&suspend)).await.unwrap();
    let again = eventually("the pods stopped", Duration::from_secs(30), || async {
        let job = jobs.get("later").await.unwrap();
        let stopped = pods_of(&pods, "later").await.is_empty() && condition(&job, "Suspended").is_some();
        (stopped && job.status.as_ref().and_then(|s| s.active) == Some(0)).then_some(job)
    })
    .await;
    assert_eq!(again.status.unwrap().failed, Some(0), "suspension counted failures");
    let seen = reasons(&bed, "later").await;
    assert!(seen.contains(&"Suspended".to_string()) && seen.contains(&"Resumed".to_string()), "{seen:?}");
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_are_deleted_after_their_ttl() {
    let bed = Bed::start(&[Controller::Job, Controller::TtlAfterFinished], true).await;
    let jobs: Api<Job> = bed.api();
    jobs.create(&PostParams::default(), &job("brief", &["true"], json!({"ttlSecondsAfterFinished": 1}))).await.unwrap();
    jobs.create(&PostParams::default(), &job("kept", &["true"], json!({}))).await.unwrap();
    finished(&jobs, "kept", "Complete").await;
    // Deleted in the foreground: with no garbage collector running here, it stays
    // marked for deletion behind its pods.
    eventually("the expired job's deletion", Duration::from_secs(30), || async {
        let job = jobs.get("brief").await.unwrap();
        let foreground = job.finalizers().iter().any(|f| f == "foregroundDeletion");
        (job.metadata.deletion_timestamp.is_some() && foreground).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kept = jobs.get("kept").await.unwrap();
    assert!(kept.metadata.deletion_timestamp.is_none(), "a job without a ttl was deleted");
    bed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjobs_start_the_job_that_is_due() {
    let bed = Bed::start(&[Controller::CronJob, Controller::Job], true).await;
    let cronjobs: Api<CronJob> = bed.api();
    let jobs: Api<Job> = bed.api();
    let cronjob: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "tick"},
        "spec": {
            "schedule": "* * * * *",
            "timeZone": "Etc/UTC",
            "successfulJobsHistoryLimit": 0,
            "jobTemplate": {
                "metadata": {"labels": {"from": "tick"}},
                "spec": {"template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
                }}},
            },
        },
    }))
    .unwrap();
    let created = cronjobs.create(&PostParams::default(), &cronjob).await.unwrap();
    // As if it last ran five minutes ago: the most recent minute is due now.
    let five_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(5);
    let status = json!({"status": {"lastScheduleTime": five_ago.to_string()}});
    cronjobs.patch_status("tick", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();

    let started = eventually("the due job", Duration::from_secs(30), || async {
        let list = jobs.list(&ListParams::default().labels("from=tick")).await.unwrap().items;
        list.into_iter().next()
    })
    .await;
    let scheduled: jiff::Timestamp =
        started.annotations()["batch.kubernetes.io/cronjob-scheduled-timestamp"].parse().unwrap();
    assert!(scheduled > five_ago && scheduled <= jiff::Timestamp::now());
    assert_eq!(scheduled.as_second() % 60, 0);
    assert_eq!(started.name_any(), format!("tick-{}", scheduled.as_second() / 60));
    let owner = &started.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("CronJob", created.uid().unwrap().as_str(), Some(true))
    );

    // It runs to completion; the CronJob notes the success and, keeping no history
    // of successes, deletes it.
    let tick = eventually("the success noted", Duration::from_secs(40), || async {
        let tick = cronjobs.get("tick").await.unwrap();
        let status = tick.status.clone().unwrap_or_default();
        (status.last_successful_time.is_some() && status.active.unwrap_or_default().is_empty()).then_some(tick)
    })
    .await;
    assert!(tick.status.unwrap().last_schedule_time.unwrap().0 >= scheduled);
    eventually("the finished job deleted", Duration::from_secs(30), || async {
        let job = jobs.get_opt(&started.name_any()).await.unwrap();
        job.is_none_or(|j| j.metadata.deletion_timestamp.is_some()).then_some(())
    })
    .await;
    let seen = reasons(&bed, "tick").await;
    for reason in ["SuccessfulCreate", "SawCompletedJob", "SuccessfulDelete"] {
        assert!(seen.contains(&reason.to_string()), "{reason} missing from {seen:?}");
    }
    bed.stop().await;
}
