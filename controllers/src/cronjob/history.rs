//! A CronJob's Jobs: which still run, when one last succeeded, and which finished
//! ones fall beyond the history limits.

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;

/// How a Job ended, if it has: `Complete` or `Failed`.
pub fn finished(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    ["Complete", "Failed"].into_iter().find(|t| conditions.iter().any(|c| c.type_ == *t && c.status == "True"))
}

/// When a Job started: its `startTime`, else its creation.
fn started(job: &Job) -> Option<Timestamp> {
    let status = job.status.as_ref().and_then(|s| s.start_time.as_ref());
    status.or(job.metadata.creation_timestamp.as_ref()).map(|t| t.0)
}

/// The latest completion among succeeded Jobs, if later than `last`.
pub fn last_success(jobs: &[Job], last: Option<Timestamp>) -> Option<Timestamp> {
    let latest = jobs
        .iter()
        .filter(|j| finished(j) == Some("Complete"))
        .filter_map(|j| j.status.as_ref()?.completion_time.as_ref().map(|t| t.0))
        .max();
    match (latest, last) {
        (Some(latest), Some(last)) => Some(latest.max(last)),
        (latest, last) => latest.or(last),
    }
}

/// The finished Jobs to delete: the oldest succeeded beyond `keep_succeeded`, the
/// oldest failed beyond `keep_failed`.
pub fn beyond_limits(jobs: &[Job], keep_succeeded: i32, keep_failed: i32) -> Vec<String> {
    let mut doomed = Vec::new();
    for (outcome, keep) in [("Complete", keep_succeeded), ("Failed", keep_failed)] {
        let mut ended: Vec<&Job> = jobs.iter().filter(|j| finished(j) == Some(outcome)).collect();
        ended.sort_by_key(|j| (started(j), j.name_any()));
        let excess = ended.len().saturating_sub(usize::try_from(keep.max(0)).unwrap_or(0));
        doomed.extend(ended[..excess].iter().map(|j| j.name_any()));
    }
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(name: &str, outcome: Option<&str>, start: &str) -> Job {
        let conditions: Vec<_> = outcome.map(|t| json!({"type": t, "status": "True"})).into_iter().collect();
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"startTime": start, "completionTime": start, "conditions": conditions},
        }))
        .unwrap()
    }

    #[test]
    fn history_keeps_the_newest_finished_jobs() {
        let jobs = [
            job("s3", Some("Complete"), "2026-01-01T00:03:00Z"),
            job("s1", Some("Complete"), "2026-01-01T00:01:00Z"),
            job("f1", Some("Failed"), "2026-01-01T00:01:30Z"),
            job("s2", Some("Complete"), "2026-01-01T00:02:00Z"),
            job("f2", Some("Failed"), "2026-01-01T00:02:30Z"),
            job("running", None, "2026-01-01T00:00:00Z"),
        ];
        assert_eq!(beyond_limits(&jobs, 3, 1), ["f1"]);
        assert_eq!(beyond_limits(&jobs, 1, 0), ["s1", "s2", "f1", "f2"]);
        assert_eq!(finished(&jobs[5]), None);
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(last_success(&jobs, None), Some(at("2026-01-01T00:03:00Z")));
        assert_eq!(last_success(&jobs, Some(at("2026-01-02T00:00:00Z"))), Some(at("2026-01-02T00:00:00Z")));
        assert_eq!(last_success(&jobs[2..3], None), None);
    }
}
