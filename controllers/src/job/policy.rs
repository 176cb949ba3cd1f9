//! The decisions of a Job's sync that need no API: whether it has failed or
//! succeeded, how many pods should run, which indexes to start, and how long to wait
//! after failures before starting pods again.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::JobSpec;

use super::conditions::{BACKOFF_LIMIT_EXCEEDED, COMPLETIONS_REACHED, DEADLINE_EXCEEDED};

/// The first delay before replacing failed pods; it doubles with each failure since
/// the last success, up to [`MAX_BACKOFF`] (upstream's `DefaultJobPodFailureBackOff`
/// and `MaxJobPodFailureBackOff`).
pub const BASE_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// The shape of a Job, from its (defaulted) spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    pub parallelism: i32,
    /// `None`: a work queue, done once any pod succeeded and none is left running.
    pub completions: Option<i32>,
    pub indexed: bool,
    pub backoff_limit: i32,
    pub active_deadline_seconds: Option<i64>,
    pub suspend: bool,
}

impl Shape {
    pub fn of(spec: &JobSpec) -> Shape {
        Shape {
            parallelism: spec.parallelism.unwrap_or(1).max(0),
            completions: spec.completions,
            indexed: spec.completion_mode.as_deref() == Some("Indexed"),
            backoff_limit: spec.backoff_limit.unwrap_or(6),
            active_deadline_seconds: spec.active_deadline_seconds,
            suspend: spec.suspend.unwrap_or(false),
        }
    }
}

/// What the pods' counts say about a running Job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Failed: the reason and message of `FailureTarget` and `Failed`.
    Fails((&'static str, &'static str)),
    /// Succeeded: `SuccessCriteriaMet`, then `Complete`.
    Succeeds((&'static str, &'static str)),
    Runs,
}

/// Counts the verdict is decided on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Succeeded pods, or completed indexes for an Indexed Job (counted or not yet).
    pub succeeded: i32,
    /// Failed pods (counted or not yet), plus container restarts of active pods when
    /// the template restarts containers on failure.
    pub failed: i32,
    pub active: i32,
}

/// Upstream's order: the backoff limit, then the deadline, then success.
pub fn verdict(shape: &Shape, counts: Counts, start: Option<Timestamp>, now: Timestamp) -> Verdict {
    if counts.failed > shape.backoff_limit {
        return Verdict::Fails(BACKOFF_LIMIT_EXCEEDED);
    }
    if !shape.suspend && deadline_left(shape, start, now) == Some(Duration::ZERO) {
        return Verdict::Fails(DEADLINE_EXCEEDED);
    }
    let complete = match shape.completions {
        None => counts.succeeded > 0 && counts.active == 0,
        Some(completions) => counts.succeeded >= completions && counts.active == 0,
    };
    if complete { Verdict::Succeeds(COMPLETIONS_REACHED) } else { Verdict::Runs }
}

/// Time left before `activeDeadlineSeconds` runs out (zero once it has), if the Job
/// has a deadline and has started.
pub fn deadline_left(shape: &Shape, start: Option<Timestamp>, now: Timestamp) -> Option<Duration> {
    let seconds = shape.active_deadline_seconds?;
    let start = start?;
    let end = start.as_millisecond().saturating_add(seconds.saturating_mul(1000));
    let left = end.saturating_sub(now.as_millisecond());
    Some(Duration::from_millis(u64::try_from(left).unwrap_or(0)))
}

/// How many pods should be running: no more than `parallelism`, and no more than
/// the completions still missing. A work queue starts no new pods once one succeeded.
pub fn want_active(shape: &Shape, succeeded: i32, active: i32) -> i32 {
    if shape.suspend {
        return 0;
    }
    match shape.completions {
        None if succeeded > 0 => active.min(shape.parallelism),
        None => shape.parallelism,
        Some(completions) => (completions - succeeded).clamp(0, shape.parallelism),
    }
}

/// The indexes to start pods for, lowest first: neither completed nor running.
pub fn indexes_to_start(completions: i32, completed: &BTreeSet<i32>, running: &BTreeSet<i32>, n: usize) -> Vec<i32> {
    (0..completions).filter(|i| !completed.contains(i) && !running.contains(i)).take(n).collect()
}

/// Failures since the last success, and when the last one happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub failures: u32,
    pub last_failure: Timestamp,
}

/// How long to wait before starting pods after `backoff` (zero: start now).
pub fn backoff_left(backoff: Option<Backoff>, now: Timestamp) -> Duration {
    let Some(Backoff { failures, last_failure }) = backoff.filter(|b| b.failures > 0) else {
        return Duration::ZERO;
    };
    let doublings = (failures - 1).min(16);
    let delay = BASE_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF);
    let since = Duration::from_millis(u64::try_from(now.as_millisecond() - last_failure.as_millisecond()).unwrap_or(0));
    delay.saturating_sub(since)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn shape(parallelism: i32, completions: Option<i32>) -> Shape {
        Shape {
            parallelism,
            completions,
            indexed: false,
            backoff_limit: 6,
            active_deadline_seconds: None,
            suspend: false,
        }
    }

    #[test]
    fn completions_and_work_queues_succeed_differently() {
        let now = at("2026-01-01T00:00:00Z");
        let fixed = shape(2, Some(3));
        let counts = |succeeded, failed, active| Counts { succeeded, failed, active };
        assert_eq!(verdict(&fixed, counts(2, 0, 1), None, now), Verdict::Runs);
        assert_eq!(verdict(&fixed, counts(3, 0, 0), None, now), Verdict::Succeeds(COMPLETIONS_REACHED));
        let queue = shape(3, None);
        assert_eq!(verdict(&queue, counts(1, 0, 2), None, now), Verdict::Runs);
        assert_eq!(verdict(&queue, counts(1, 0, 0), None, now), Verdict::Succeeds(COMPLETIONS_REACHED));
        assert_eq!(verdict(&queue, counts(0, 0, 0), None, now), Verdict::Runs);
    }

    #[test]
    fn failures_beyond_the_backoff_limit_then_the_deadline_fail() {
        let start = at("2026-01-01T00:00:00Z");
        let mut s = shape(1, Some(1));
        s.backoff_limit = 1;
        s.active_deadline_seconds = Some(30);
        let counts = |failed| Counts { succeeded: 0, failed, active: 1 };
        assert_eq!(verdict(&s, counts(1), Some(start), at("2026-01-01T00:00:10Z")), Verdict::Runs);
        assert_eq!(
            verdict(&s, counts(2), Some(start), at("2026-01-01T00:00:10Z")),
            Verdict::Fails(BACKOFF_LIMIT_EXCEEDED)
        );
        assert_eq!(verdict(&s, counts(0), Some(start), at("2026-01-01T00:00:30Z")), Verdict::Fails(DEADLINE_EXCEEDED));
        assert_eq!(deadline_left(&s, Some(start), at("2026-01-01T00:00:10Z")), Some(Duration::from_secs(20)));
        // Suspended, or not started: the deadline does not run.
        assert_eq!(verdict(&s, counts(0), None, at("2026-01-01T00:01:00Z")), Verdict::Runs);
        s.suspend = true;
        assert_eq!(verdict(&s, counts(0), Some(start), at("2026-01-01T00:01:00Z")), Verdict::Runs);
    }

    #[test]
    fn active_pods_are_bounded_by_parallelism_and_remaining_completions() {
        assert_eq!(want_active(&shape(2, Some(3)), 0, 0), 2);
        assert_eq!(want_active(&shape(2, Some(3)), 2, 1), 1);
        assert_eq!(want_active(&shape(2, Some(3)), 4, 0), 0);
        assert_eq!(want_active(&shape(3, None), 0, 0), 3);
        assert_eq!(want_active(&shape(3, None), 1, 2), 2);
        let mut suspended = shape(2, Some(3));
        suspended.suspend = true;
        assert_eq!(want_active(&suspended, 0, 2), 0);
    }

    #[test]
    fn missing_indexes_start_lowest_first() {
        let completed: BTreeSet<i32> = [0, 2].into();
        let running: BTreeSet<i32> = [1].into();
        assert_eq!(indexes_to_start(6, &completed, &running, 2), [3, 4]);
        assert_eq!(indexes_to_start(3, &completed, &running, 2), Vec::<i32>::new());
    }

    #[test]
    fn backoff_doubles_per_failure_up_to_the_cap() {
        let failed = at("2026-01-01T00:00:00Z");
        let b = |failures| Some(Backoff { failures, last_failure: failed });
        assert_eq!(backoff_left(None, failed), Duration::ZERO);
        assert_eq!(backoff_left(b(1), failed), Duration::from_secs(10));
        assert_eq!(backoff_left(b(1), at("2026-01-01T00:00:04Z")), Duration::from_secs(6));
        assert_eq!(backoff_left(b(3), at("2026-01-01T00:00:10Z")), Duration::from_secs(30));
        assert_eq!(backoff_left(b(30), failed), MAX_BACKOFF);
        assert_eq!(backoff_left(b(1), at("2026-01-01T00:01:00Z")), Duration::ZERO);
    }
}
