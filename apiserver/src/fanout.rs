//! Watch fan-out: one store watch per resource, shared by every watcher of it.
//!
//! A [`Hub`] follows the store under a resource's cluster-wide prefix and publishes
//! each change once, as an `Arc<Item>`, to all its subscribers through a broadcast
//! ring. A [`Change`] decodes and renders its object lazily and at most once per
//! form (the JSON watch line of `ADDED`, `MODIFIED` or `DELETED`, the decoded tree
//! for selectors and Tables), so a thousand watchers of one kind cost one decode and
//! one serialization per event, plus a reference-count bump each.
//!
//! No gap, no duplicate: the hub keeps its most recent changes; a subscriber joins
//! under the hub's lock, taking the kept changes after its revision and the live
//! ones published after that point. A watch from before what the hub kept is served
//! by its own store watch instead ([`Fanout::subscribe`] returns `None`), which is
//! where `410 Gone` for compacted history comes from. A subscriber that falls a full
//! ring behind is dropped ([`StoreError::WatcherTooSlow`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::broadcast;
use waggle_store::{Revision, Store, StoreError, WatchEvent, WatchStream};

use crate::status::ApiError;
use crate::{objects, raw};

/// Changes a hub keeps for watchers that join slightly behind it.
const KEPT: usize = 256;
/// Changes a subscriber may fall behind before it is dropped.
const RING: usize = 4096;

/// The watch event types a change can be rendered as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One store change with its renderings, computed on first use and then shared.
pub struct Change {
    pub event: WatchEvent,
    current: OnceLock<Result<Value, String>>,
    previous: OnceLock<Result<Value, String>>,
    lines: [OnceLock<Result<Bytes, String>>; 3],
}

impl Change {
    pub fn new(event: WatchEvent) -> Self {
        Change {
            event,
            current: OnceLock::new(),
            previous: OnceLock::new(),
            lines: Default::default(),
        }
    }

    pub fn revision(&self) -> Revision {
        self.event.revision()
    }

    pub fn key(&self) -> &str {
        match &self.event {
            WatchEvent::Put { kv, .. } => &kv.key,
            WatchEvent::Delete { prev, .. } => &prev.key,
            WatchEvent::Progress { .. } => "",
        }
    }

    /// The object after a put, decoded, with its `resourceVersion`.
    pub fn current(&self) -> Result<&Value, ApiError> {
        let decoded = self.current.get_or_init(|| match &self.event {
            WatchEvent::Put { kv, .. } => objects::decode(kv).map_err(|e| e.to_string()),
            _ => Err("a change without a current object".into()),
        });
        decoded.as_ref().map_err(|e| ApiError::internal(e.clone()))
    }

    /// The object before the change (if any), decoded, with `resourceVersion` set to
    /// the change's revision (as a `DELETED` event carries it).
    pub fn previous(&self) -> Result<Option<&Value>, ApiError> {
        let prev = match &self.event {
            WatchEvent::Put {
                prev: Some(prev), ..
            }
            | WatchEvent::Delete { prev, .. } => prev,
            _ => return Ok(None),
        };
        let decoded = self.previous.get_or_init(|| {
            let mut obj = objects::decode(prev).map_err(|e| e.to_string())?;
            objects::set_resource_version(&mut obj, self.revision());
            Ok(obj)
        });
        decoded
            .as_ref()
            .map(Some)
            .map_err(|e| ApiError::internal(e.clone()))
    }

    /// The JSON watch line `{"type":TYPE,"object":OBJECT}\n`: the current object for
    /// `ADDED`/`MODIFIED`, the previous one for `DELETED`.
    pub fn line(&self, kind: EventType) -> Result<Bytes, ApiError> {
        let line = self.lines[kind as usize].get_or_init(|| {
            let object = match (&self.event, kind) {
                (WatchEvent::Put { kv, .. }, EventType::Added | EventType::Modified) => {
                    raw::object_bytes(kv)
                }
                (
                    WatchEvent::Put {
                        prev: Some(prev), ..
                    }
                    | WatchEvent::Delete { prev, .. },
                    EventType::Deleted,
                ) => raw::object_bytes_at(prev, self.revision()),
                _ => Err(ApiError::internal("no object for this watch event")),
            };
            object
                .map(|object| line_bytes(kind.as_str(), &object))
                .map_err(|e| e.to_string())
        });
        line.clone().map_err(ApiError::internal)
    }
}

/// `{"type":KIND,"object":OBJECT}\n` from an already serialized object.
pub fn line_bytes(kind: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + kind.len() + 24);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// What a hub publishes.
pub enum Item {
    Change(Change),
    /// The store has reached this revision without a change under the prefix.
    Progress(Revision),
    /// The hub's store watch ended; subscribers end too.
    Ended(Ended),
}

pub enum Ended {
    Closed,
    Gone(String),
    Failed(String),
}

impl Item {
    fn from_store(item: Result<WatchEvent, StoreError>) -> Item {
        match item {
            Ok(WatchEvent::Progress { revision }) => Item::Progress(revision),
            Ok(event) => Item::Change(Change::new(event)),
            Err(StoreError::Compacted {
                requested,
                compacted,
            }) => Item::Ended(Ended::Gone(format!(
                "too old resource version: {requested} ({compacted})"
            ))),
            Err(StoreError::WatcherTooSlow) => Item::Ended(Ended::Closed),
            Err(e) => Item::Ended(Ended::Failed(e.to_string())),
        }
    }
}

/// One resource's shared store watch.
struct Hub {
    state: parking_lot::Mutex<HubState>,
}

struct HubState {
    kept: VecDeque<Arc<Item>>,
    /// Every change after this revision is in `kept` or not yet published.
    floor: Revision,
    sender: broadcast::Sender<Arc<Item>>,
    ended: bool,
}

impl Hub {
    fn subscribe(&self, after: Revision) -> Option<Subscription> {
        let state = self.state.lock();
        if state.ended || after < state.floor {
            return None;
        }
        let backlog = state
            .kept
            .iter()
            .filter(|item| matches!(&***item, Item::Change(c) if c.revision() > after))
            .cloned()
            .collect();
        Some(Subscription {
            backlog,
            live: state.sender.subscribe(),
            after,
        })
    }

    fn publish(&self, item: Item) -> bool {
        let ended = matches!(item, Item::Ended(_));
        let item = Arc::new(item);
        let mut state = self.state.lock();
        if matches!(&*item, Item::Change(_)) {
            state.kept.push_back(item.clone());
            if state.kept.len() > KEPT
                && let Some(Item::Change(oldest)) = state.kept.pop_front().as_deref()
            {
                state.floor = oldest.revision();
            }
        }
        state.ended |= ended;
        let _ = state.sender.send(item);
        !ended
    }

    async fn run(self: Arc<Self>, mut stream: WatchStream, fanout: Arc<HubMap>, root: String) {
        loop {
            let item = match stream.next().await {
                Some(item) => Item::from_store(item),
                None => Item::Ended(Ended::Closed),
            };
            if !self.publish(item) {
                break;
            }
        }
        let mut hubs = fanout.lock().await;
        if hubs.get(&root).is_some_and(|hub| Arc::ptr_eq(hub, &self)) {
            hubs.remove(&root);
        }
    }
}

type HubMap = tokio::sync::Mutex<HashMap<String, Arc<Hub>>>;

/// A watcher's view of a hub: the kept changes after its revision, then live ones.
pub struct Subscription {
    backlog: VecDeque<Arc<Item>>,
    live: broadcast::Receiver<Arc<Item>>,
    after: Revision,
}

impl Subscription {
    /// The next item; `None` when the hub is gone. A subscriber that fell behind gets
    /// [`StoreError::WatcherTooSlow`].
    pub async fn next(&mut self) -> Option<Result<Arc<Item>, StoreError>> {
        if let Some(item) = self.backlog.pop_front() {
            return Some(Ok(item));
        }
        loop {
            match self.live.recv().await {
                Ok(item) if Self::is_after(&item, self.after) => return Some(Ok(item)),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some(Err(StoreError::WatcherTooSlow));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Subscription {
    /// The next item if one is ready now, without waiting.
    pub fn try_next(&mut self) -> Option<Result<Arc<Item>, StoreError>> {
        if let Some(item) = self.backlog.pop_front() {
            return Some(Ok(item));
        }
        loop {
            match self.live.try_recv() {
                Ok(item) if Self::is_after(&item, self.after) => return Some(Ok(item)),
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    return Some(Err(StoreError::WatcherTooSlow));
                }
                Err(
                    broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed,
                ) => return None,
            }
        }
    }

    /// Whether a live item is news to a subscriber that started after `after`.
    fn is_after(item: &Item, after: Revision) -> bool {
        match item {
            Item::Change(change) => change.revision() > after,
            Item::Progress(revision) => *revision > after,
            Item::Ended(_) => true,
        }
    }
}

/// The hubs of one API server, one per watched resource, started on first use.
pub struct Fanout {
    store: Arc<dyn Store>,
    hubs: Arc<HubMap>,
}

impl Fanout {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Fanout {
            store,
            hubs: Arc::default(),
        }
    }

    /// Subscribes to the changes under `root` (a resource's cluster-wide prefix) after
    /// revision `after`. `Ok(None)`: the shared hub no longer has that history; use a
    /// store watch of your own.
    pub async fn subscribe(
        &self,
        root: &str,
        after: Revision,
    ) -> Result<Option<Subscription>, StoreError> {
        let mut hubs = self.hubs.lock().await;
        if let Some(hub) = hubs.get(root) {
            if let Some(subscription) = hub.subscribe(after) {
                return Ok(Some(subscription));
            }
            if !hub.state.lock().ended {
                return Ok(None);
            }
            hubs.remove(root);
        }
        let stream = self.store.watch(root, after).await?;
        let (sender, _) = broadcast::channel(RING);
        let state = HubState {
            kept: VecDeque::new(),
            floor: after,
            sender,
            ended: false,
        };
        let hub = Arc::new(Hub {
            state: parking_lot::Mutex::new(state),
        });
        let subscription = hub.subscribe(after);
        hubs.insert(root.to_owned(), hub.clone());
        tokio::spawn(hub.run(stream, self.hubs.clone(), root.to_owned()));
        Ok(subscription)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use waggle_store::KeyValue;

    fn put(key: &str, revision: Revision) -> Item {
        let kv = KeyValue {
            key: key.into(),
            value: br#"{"metadata":{"name":"a"}}"#.to_vec(),
            create_revision: revision,
            mod_revision: revision,
        };
        Item::Change(Change::new(WatchEvent::Put { kv, prev: None }))
    }

    fn revisions(subscription: &Subscription) -> Vec<Revision> {
        subscription
            .backlog
            .iter()
            .filter_map(|item| match &**item {
                Item::Change(c) => Some(c.revision()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn joiners_get_kept_changes_after_their_revision_then_live_ones() {
        let (sender, _) = broadcast::channel(RING);
        let hub = Hub {
            state: parking_lot::Mutex::new(HubState {
                kept: VecDeque::new(),
                floor: 0,
                sender,
                ended: false,
            }),
        };
        for revision in 1..=(KEPT as Revision + 10) {
            hub.publish(put("/k", revision));
        }
        // The oldest changes were let go: a watch from before them needs the store.
        assert!(hub.subscribe(5).is_none());
        let mut late = hub.subscribe(KEPT as Revision + 7).unwrap();
        assert_eq!(
            revisions(&late),
            [
                KEPT as Revision + 8,
                KEPT as Revision + 9,
                KEPT as Revision + 10
            ]
        );
        hub.publish(put("/k", KEPT as Revision + 11));
        for want in KEPT as Revision + 8..=KEPT as Revision + 11 {
            match &*late.next().await.unwrap().unwrap() {
                Item::Change(c) => assert_eq!(c.revision(), want),
                _ => panic!("expected a change"),
            }
        }
        assert!(!hub.publish(Item::Ended(Ended::Closed)));
        assert!(
            hub.subscribe(KEPT as Revision + 11).is_none(),
            "an ended hub takes no subscribers"
        );
    }

    #[test]
    fn lines_are_rendered_once_and_shared() {
        let Item::Change(change) = put("/k", 3) else {
            unreachable!()
        };
        let first = change.line(EventType::Added).unwrap();
        let second = change.line(EventType::Added).unwrap();
        assert_eq!(first.as_ptr(), second.as_ptr());
        assert_eq!(&first[..], b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"3\"}}}\n");
        assert!(
            change.line(EventType::Deleted).is_err(),
            "a create has no previous object"
        );
    }
}
