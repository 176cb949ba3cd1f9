//! When a CronJob runs: the scheduling decision, from the schedule, the CronJob's
//! policies and status, and `now`, with no API in sight.

use jiff::Timestamp;

use super::schedule::Schedule;

/// More missed start times than this are reported, as upstream reports them.
pub const TOO_MANY_MISSED: usize = 100;

/// What a CronJob's spec and status say about scheduling.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    pub schedule: &'a Schedule,
    /// `lastScheduleTime`, else the CronJob's creation.
    pub earliest: Timestamp,
    pub starting_deadline_seconds: Option<i64>,
    pub concurrency: Concurrency,
    pub suspend: bool,
    /// Names of the Jobs still running.
    pub active: &'a [String],
    /// The CronJob's name, which prefixes its Jobs'.
    pub name: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concurrency {
    Allow,
    Forbid,
    Replace,
}

impl Concurrency {
    pub fn of(policy: Option<&str>) -> Concurrency {
        match policy {
            Some("Forbid") => Concurrency::Forbid,
            Some("Replace") => Concurrency::Replace,
            _ => Concurrency::Allow,
        }
    }
}

/// The decision, with the next time to look again (`None`: no time ahead).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Suspended: nothing runs until resumed.
    Suspended,
    /// No scheduled time has come since the last run.
    Wait { next: Option<Timestamp> },
    /// The most recent scheduled time is older than `startingDeadlineSeconds` allows.
    Missed { scheduled: Timestamp, next: Option<Timestamp> },
    /// The Job of the scheduled time already runs.
    AlreadyRunning { next: Option<Timestamp> },
    /// `Forbid`, and an earlier run still runs.
    Forbidden { next: Option<Timestamp> },
    /// Start the Job of `scheduled` (after deleting the running ones when `replace`).
    /// `missed` counts the scheduled times since the last run, up to
    /// [`TOO_MANY_MISSED`] + 1.
    Run { scheduled: Timestamp, job: String, replace: bool, missed: usize, next: Option<Timestamp> },
}

/// A Job's name: the CronJob's and its scheduled time in minutes since the epoch.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// The most recent scheduled time in (earliest, now], if any, and how many there
/// were (counted up to [`TOO_MANY_MISSED`] + 1).
pub fn most_recent(schedule: &Schedule, earliest: Timestamp, now: Timestamp) -> Option<(Timestamp, usize)> {
    let first = schedule.next_after(earliest).filter(|t| *t <= now)?;
    let last = schedule.last_at_or_before(now).filter(|t| *t >= first).unwrap_or(first);
    let mut missed = 1;
    let mut t = first;
    while missed <= TOO_MANY_MISSED {
        match schedule.next_after(t) {
            Some(next) if next <= now => {
                missed += 1;
                t = next;
            }
            _ => break,
        }
    }
    Some((last, missed))
}

pub fn decide(inputs: &Inputs<'_>, now: Timestamp) -> Decision {
    if inputs.suspend {
        return Decision::Suspended;
    }
    let next = inputs.schedule.next_after(now);
    let mut earliest = inputs.earliest;
    if let Some(deadline) = inputs.starting_deadline_seconds {
        let limit = now.checked_sub(jiff::SignedDuration::from_secs(deadline)).unwrap_or(now);
        earliest = earliest.max(limit);
    }
    let Some((scheduled, missed)) = most_recent(inputs.schedule, earliest, now) else {
        // With a starting deadline, a time that came but is past it is a miss.
        return match inputs.starting_deadline_seconds.and_then(|_| most_recent(inputs.schedule, inputs.earliest, now)) {
            Some((scheduled, _)) => Decision::Missed { scheduled, next },
            None => Decision::Wait { next },
        };
    };
    let job = job_name(inputs.name, scheduled);
    if inputs.active.contains(&job) {
        return Decision::AlreadyRunning { next };
    }
    match inputs.concurrency {
        Concurrency::Forbid if !inputs.active.is_empty() => Decision::Forbidden { next },
        concurrency => Decision::Run {
            scheduled,
            job,
            replace: concurrency == Concurrency::Replace && !inputs.active.is_empty(),
            missed,
            next,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn inputs<'a>(schedule: &'a Schedule, earliest: &str, active: &'a [String]) -> Inputs<'a> {
        Inputs {
            schedule,
            earliest: at(earliest),
            starting_deadline_seconds: None,
            concurrency: Concurrency::Allow,
            suspend: false,
            active,
            name: "tick",
        }
    }

    #[test]
    fn job_names_count_minutes_since_the_epoch() {
        assert_eq!(job_name("tick", at("2026-01-01T00:00:00Z")), "tick-29453760");
    }

    #[test]
    fn the_most_recent_time_since_the_last_run_runs() {
        let every = Schedule::parse("* * * * *", Some("UTC")).unwrap();
        let none: [String; 0] = [];
        let i = inputs(&every, "2026-01-01T00:00:00Z", &none);
        assert_eq!(decide(&i, at("2026-01-01T00:00:40Z")), Decision::Wait { next: Some(at("2026-01-01T00:01:00Z")) });
        let Decision::Run { scheduled, job, replace, missed, next } = decide(&i, at("2026-01-01T00:03:10Z")) else {
            panic!("not run")
        };
        assert_eq!((scheduled, missed, replace), (at("2026-01-01T00:03:00Z"), 3, false));
        assert_eq!(job, job_name("tick", at("2026-01-01T00:03:00Z")));
        assert_eq!(next, Some(at("2026-01-01T00:04:00Z")));
        // A long outage is counted only up to the report threshold.
        let Decision::Run { missed, .. } = decide(&i, at("2026-01-02T00:00:00Z")) else { panic!("not run") };
        assert_eq!(missed, TOO_MANY_MISSED + 1);
        let mut suspended = i.clone();
        suspended.suspend = true;
        assert_eq!(decide(&suspended, at("2026-01-01T00:03:10Z")), Decision::Suspended);
    }

    #[test]
    fn a_starting_deadline_turns_late_times_into_misses() {
        let hourly = Schedule::parse("@hourly", Some("UTC")).unwrap();
        let none: [String; 0] = [];
        let mut i = inputs(&hourly, "2026-01-01T00:00:00Z", &none);
        i.starting_deadline_seconds = Some(60);
        assert!(matches!(decide(&i, at("2026-01-01T01:00:30Z")), Decision::Run { .. }));
        assert_eq!(
            decide(&i, at("2026-01-01T01:05:00Z")),
            Decision::Missed { scheduled: at("2026-01-01T01:00:00Z"), next: Some(at("2026-01-01T02:00:00Z")) }
        );
    }

    #[test]
    fn concurrency_policies() {
        let every = Schedule::parse("* * * * *", Some("UTC")).unwrap();
        let running = [job_name("tick", at("2026-01-01T00:01:00Z"))];
        let mut i = inputs(&every, "2026-01-01T00:01:00Z", &running);
        let now = at("2026-01-01T00:02:05Z");
        assert!(matches!(decide(&i, now), Decision::Run { replace: false, .. }));
        i.concurrency = Concurrency::Forbid;
        assert!(matches!(decide(&i, now), Decision::Forbidden { .. }));
        i.concurrency = Concurrency::Replace;
        assert!(matches!(decide(&i, now), Decision::Run { replace: true, .. }));
        // The Job of the very time scheduled already runs.
        i.earliest = at("2026-01-01T00:00:00Z");
        assert!(matches!(decide(&i, at("2026-01-01T00:01:30Z")), Decision::AlreadyRunning { .. }));
        assert_eq!(Concurrency::of(Some("Forbid")), Concurrency::Forbid);
        assert_eq!(Concurrency::of(None), Concurrency::Allow);
    }
}
