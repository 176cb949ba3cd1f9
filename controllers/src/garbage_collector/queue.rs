//! A work queue in the manner of client-go's: an item waits at most once, is never
//! handed to two workers at a time (one added while it is being worked on waits until
//! that work is done), and one whose work failed comes back after a growing delay.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

/// The delay before the first retry of an item; it doubles with each failure.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest delay between retries.
const LAST_RETRY: Duration = Duration::from_secs(120);

/// Items to work on; clones share the queue.
pub struct Queue<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue { shared: self.shared.clone() }
    }
}

struct Shared<T> {
    state: Mutex<State<T>>,
    ready: Notify,
}

struct State<T> {
    waiting: VecDeque<T>,
    queued: HashSet<T>,
    working: HashSet<T>,
    /// Added again while being worked on.
    again: HashSet<T>,
    failures: HashMap<T, u32>,
}

impl<T: Clone + Eq + Hash + Send + 'static> Queue<T> {
    pub fn new() -> Queue<T> {
        let state = State {
            waiting: VecDeque::new(),
            queued: HashSet::new(),
            working: HashSet::new(),
            again: HashSet::new(),
            failures: HashMap::new(),
        };
        Queue { shared: Arc::new(Shared { state: Mutex::new(state), ready: Notify::new() }) }
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        // The state stays consistent even if a holder panicked: every change is one step.
        self.shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `item` unless it is already waiting.
    pub fn add(&self, item: T) {
        let mut state = self.state();
        if state.working.contains(&item) {
            state.again.insert(item);
            return;
        }
        if state.queued.insert(item.clone()) {
            state.waiting.push_back(item);
            drop(state);
            self.shared.ready.notify_one();
        }
    }

    pub fn extend(&self, items: impl IntoIterator<Item = T>) {
        for item in items {
            self.add(item);
        }
    }

    /// The next item to work on; the caller reports with [`Queue::done`] or [`Queue::retry`].
    pub async fn next(&self) -> T {
        loop {
            let ready = self.shared.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            {
                let mut state = self.state();
                if let Some(item) = state.waiting.pop_front() {
                    state.queued.remove(&item);
                    state.working.insert(item.clone());
                    let more = !state.waiting.is_empty();
                    drop(state);
                    if more {
                        // Another worker may be idle.
                        self.shared.ready.notify_one();
                    }
                    return item;
                }
            }
            ready.await;
        }
    }

    /// The work on `item` succeeded.
    pub fn done(&self, item: &T) {
        let again = {
            let mut state = self.state();
            state.failures.remove(item);
            state.working.remove(item);
            state.again.remove(item)
        };
        if again {
            self.add(item.clone());
        }
    }

    /// The work on `item` failed: it comes back after a delay that grows with each
    /// failure in a row. Returns the delay.
    pub fn retry(&self, item: T) -> Duration {
        let delay = {
            let mut state = self.state();
            state.working.remove(&item);
            state.again.remove(&item);
            let failures = state.failures.entry(item.clone()).or_insert(0);
            let delay = FIRST_RETRY.saturating_mul(2u32.saturating_pow(*failures)).min(LAST_RETRY);
            *failures = failures.saturating_add(1);
            delay
        };
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(item);
        });
        delay
    }

    /// How many items wait (not counting those being worked on).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.state().waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_wait_once_and_one_at_a_time() {
        let queue = Queue::new();
        queue.extend(["a", "b", "a"]);
        assert_eq!(queue.len(), 2);
        let a = queue.next().await;
        assert_eq!(a, "a");
        // Added while being worked on: waits for the work to finish.
        queue.add("a");
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.next().await, "b");
        queue.done(&"b");
        queue.done(&a);
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.next().await, "a");
    }

    #[tokio::test]
    async fn failures_come_back_later_and_later() {
        let queue = Queue::new();
        queue.add("x");
        let item = queue.next().await;
        assert_eq!(queue.retry(item), FIRST_RETRY);
        assert_eq!(queue.len(), 0);
        let item = queue.next().await;
        assert_eq!(queue.retry(item), FIRST_RETRY * 2);
        let item = queue.next().await;
        queue.done(&item);
        queue.add("x");
        let item = queue.next().await;
        assert_eq!(queue.retry(item), FIRST_RETRY, "a success resets the delay");
    }
}
