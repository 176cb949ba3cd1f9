//! A Job's conditions. A Job ends in two steps, as upstream's does since 1.31: the
//! controller first adds `SuccessCriteriaMet` or `FailureTarget` and stops or deletes
//! its pods, then, once none is left running or uncounted, the terminal `Complete` or
//! `Failed`, which is what `kubectl wait --for=condition=complete` waits for.

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const SUSPENDED: &str = "Suspended";

/// Why a Job failed or succeeded (the conditions' reasons and messages).
pub const BACKOFF_LIMIT_EXCEEDED: (&str, &str) =
    ("BackoffLimitExceeded", "Job has reached the specified backoff limit");
pub const DEADLINE_EXCEEDED: (&str, &str) = ("DeadlineExceeded", "Job was active longer than specified deadline");
pub const COMPLETIONS_REACHED: (&str, &str) = ("CompletionsReached", "Reached expected number of succeeded pods");
pub const JOB_SUSPENDED: (&str, &str) = ("JobSuspended", "Job suspended");
pub const JOB_RESUMED: (&str, &str) = ("JobResumed", "Job resumed");

/// The condition of `type_`, if its status is `True`.
pub fn true_condition<'a>(conditions: &'a [JobCondition], type_: &str) -> Option<&'a JobCondition> {
    conditions.iter().find(|c| c.type_ == type_ && c.status == "True")
}

pub fn is_true(conditions: &[JobCondition], type_: &str) -> bool {
    true_condition(conditions, type_).is_some()
}

/// `Complete` or `Failed`, when the Job has ended.
pub fn finished(status: Option<&JobStatus>) -> Option<&'static str> {
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    [COMPLETE, FAILED].into_iter().find(|t| is_true(conditions, t))
}

/// Sets a condition; the transition time moves only when the status changes.
/// Returns whether anything changed.
pub fn set(
    conditions: &mut Vec<JobCondition>,
    type_: &str,
    status: bool,
    (reason, message): (&str, &str),
    now: Timestamp,
) -> bool {
    let status = if status { "True" } else { "False" };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c)
            if c.status == status && c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(message) =>
        {
            false
        }
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(Time(now));
            }
            c.status = status.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
            c.last_probe_time = Some(Time(now));
            true
        }
        None => {
            conditions.push(JobCondition {
                type_: type_.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_probe_time: Some(Time(now)),
                last_transition_time: Some(Time(now)),
            });
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_keep_their_time_until_the_status_changes() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let mut conditions = Vec::new();
        assert!(set(&mut conditions, SUSPENDED, true, JOB_SUSPENDED, t0));
        assert!(!set(&mut conditions, SUSPENDED, true, JOB_SUSPENDED, t1));
        assert!(is_true(&conditions, SUSPENDED));
        assert!(set(&mut conditions, SUSPENDED, false, JOB_RESUMED, t1));
        assert!(!is_true(&conditions, SUSPENDED));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, Some(Time(t1)));
        assert_eq!(conditions[0].reason.as_deref(), Some("JobResumed"));

        let status = JobStatus { conditions: Some(conditions.clone()), ..JobStatus::default() };
        assert_eq!(finished(Some(&status)), None);
        set(&mut conditions, FAILED, true, DEADLINE_EXCEEDED, t1);
        let status = JobStatus { conditions: Some(conditions), ..JobStatus::default() };
        assert_eq!(finished(Some(&status)), Some(FAILED));
    }
}
