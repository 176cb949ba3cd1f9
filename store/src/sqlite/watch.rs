//! Watch streams: history replayed from the log, then live events from the
//! in-process broadcast, without gap or duplicate.
//!
//! The caller subscribes to the broadcast BEFORE reading history. Every write is
//! committed before it is broadcast, so a write is either in the history snapshot
//! (revision <= snapshot) or broadcast after the subscription; live events at or
//! below the snapshot are the ones already replayed and are skipped.
//!
//! The broadcast ring is the per-watcher bound: a watcher that falls more than its
//! capacity behind gets [`StoreError::WatcherTooSlow`] and its stream ends. Writers
//! never wait for watchers.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::{Revision, StoreError, WatchEvent, WatchStream};

/// Joins replayed `history` with the `live` subscription, skipping live events at
/// or below `replayed_through`. Every `progress` (if set), a watch that has seen
/// writes it did not deliver (other prefixes) reports `Progress` with the newest
/// revision it has fully processed.
pub(crate) fn stream(
    history: Vec<WatchEvent>,
    live: broadcast::Receiver<Arc<WatchEvent>>,
    prefix: String,
    after: Revision,
    replayed_through: Revision,
    progress: Option<Duration>,
) -> WatchStream {
    let reported = history.last().map_or(after, WatchEvent::revision);
    let state = Live {
        receiver: live,
        prefix,
        skip_through: replayed_through,
        seen: replayed_through,
        reported,
        ticker: progress.map(|period| tokio::time::interval_at(Instant::now() + period, period)),
    };
    let live = futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        let item = state.next().await?;
        let more = item.is_ok().then_some(state);
        Some((item, more))
    });
    futures::stream::iter(history.into_iter().map(Ok))
        .chain(live)
        .boxed()
}

struct Live {
    receiver: broadcast::Receiver<Arc<WatchEvent>>,
    prefix: String,
    /// Live events at or below this were replayed from history.
    skip_through: Revision,
    /// Every event up to here has been delivered or filtered out.
    seen: Revision,
    /// The newest revision the consumer knows about.
    reported: Revision,
    ticker: Option<tokio::time::Interval>,
}

impl Live {
    /// The next item; `None` when the store is gone.
    async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        loop {
            let received = match &mut self.ticker {
                Some(ticker) => tokio::select! {
                    biased;
                    received = self.receiver.recv() => received,
                    _ = ticker.tick() => {
                        if self.seen > self.reported {
                            self.reported = self.seen;
                            return Some(Ok(WatchEvent::Progress { revision: self.seen }));
                        }
                        continue;
                    }
                },
                None => self.receiver.recv().await,
            };
            match received {
                Ok(event) => {
                    let revision = event.revision();
                    self.seen = self.seen.max(revision);
                    if revision <= self.skip_through || !key_of(&event).starts_with(&self.prefix) {
                        continue;
                    }
                    self.reported = revision;
                    return Some(Ok(WatchEvent::clone(&event)));
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "sqlite watcher too slow; dropped");
                    return Some(Err(StoreError::WatcherTooSlow));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

fn key_of(event: &WatchEvent) -> &str {
    match event {
        WatchEvent::Put { kv, .. } => &kv.key,
        WatchEvent::Delete { prev, .. } => &prev.key,
        WatchEvent::Progress { .. } => "",
    }
}
