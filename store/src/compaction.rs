//! Periodic compaction for any [`Store`]: keeps at least the last
//! `keep_revisions` revisions AND at least the last `keep_for` of history, and
//! forgets everything older.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::{Revision, Store, StoreError};

/// How much history auto-compaction keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// How often to look at the store.
    pub interval: Duration,
    /// Keep at least this many of the newest revisions.
    pub keep_revisions: Revision,
    /// Keep at least the revisions written during this long.
    pub keep_for: Duration,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            interval: Duration::from_secs(60),
            keep_revisions: 10_000,
            keep_for: Duration::from_secs(300),
        }
    }
}

/// Revisions the store had at past instants, oldest first.
#[derive(Debug, Default)]
pub struct RevisionHistory {
    samples: VecDeque<(Instant, Revision)>,
}

impl RevisionHistory {
    /// Records the store's revision at `now` and returns the revision to compact to,
    /// if any history is old enough to forget.
    pub fn target(
        &mut self,
        policy: &CompactionPolicy,
        now: Instant,
        current: Revision,
    ) -> Option<Revision> {
        self.samples.push_back((now, current));
        // The newest sample at least `keep_for` old bounds what may go; older ones are useless.
        let old_enough = |t: &Instant| now.saturating_duration_since(*t) >= policy.keep_for;
        while self.samples.len() > 1 && old_enough(&self.samples[1].0) {
            self.samples.pop_front();
        }
        let (taken, by_time) = *self.samples.front()?;
        if !old_enough(&taken) {
            return None;
        }
        let target = by_time.min(current - policy.keep_revisions);
        (target > 0).then_some(target)
    }
}

/// Compacts `store` every `policy.interval` until the returned task is aborted.
pub fn spawn_auto_compaction(
    store: Arc<dyn Store>,
    policy: CompactionPolicy,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut history = RevisionHistory::default();
        let mut compacted = 0;
        let mut ticker = tokio::time::interval(policy.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let current = match store.current_revision().await {
                Ok(current) => current,
                Err(err) => {
                    tracing::warn!(error = %err, "auto-compaction: cannot read the current revision");
                    continue;
                }
            };
            let Some(target) = history.target(&policy, Instant::now(), current) else {
                continue;
            };
            if target <= compacted {
                continue;
            }
            match store.compact(target).await {
                Ok(()) | Err(StoreError::Compacted { .. }) => {
                    tracing::debug!(revision = target, "auto-compaction done");
                    compacted = target;
                }
                Err(err) => {
                    tracing::warn!(error = %err, revision = target, "auto-compaction failed")
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CompactionPolicy {
        CompactionPolicy {
            interval: Duration::from_secs(60),
            keep_revisions: 100,
            keep_for: Duration::from_secs(300),
        }
    }

    #[test]
    fn nothing_is_compacted_before_keep_for_has_passed() {
        let mut history = RevisionHistory::default();
        let start = Instant::now();
        assert_eq!(history.target(&policy(), start, 5_000), None);
        assert_eq!(
            history.target(&policy(), start + Duration::from_secs(299), 9_000),
            None
        );
    }

    #[test]
    fn keeps_both_the_time_window_and_the_revision_count() {
        let mut history = RevisionHistory::default();
        let start = Instant::now();
        for minute in 0..=5u64 {
            history.target(
                &policy(),
                start + Duration::from_secs(60 * minute),
                1_000 * minute as Revision,
            );
        }
        // Five minutes ago the store was at 1_000: the time window bounds the target.
        assert_eq!(
            history.target(&policy(), start + Duration::from_secs(360), 6_000),
            Some(1_000)
        );
        // A quiet store: the revision count bounds it.
        let mut quiet = RevisionHistory::default();
        quiet.target(&policy(), start, 150);
        assert_eq!(
            quiet.target(&policy(), start + Duration::from_secs(300), 160),
            Some(60)
        );
        assert_eq!(
            quiet.target(&policy(), start + Duration::from_secs(600), 170),
            Some(70)
        );
    }

    #[test]
    fn a_young_store_is_not_compacted() {
        let mut history = RevisionHistory::default();
        let start = Instant::now();
        history.target(&policy(), start, 10);
        assert_eq!(
            history.target(&policy(), start + Duration::from_secs(400), 50),
            None
        );
    }
}
