//! Storage for Waggle's API server.
//!
//! A [`Store`] is a revisioned key-value store with etcd's semantics, as kine gives
//! Kubernetes on SQL: one global, gap-free revision counter that every write bumps;
//! every key remembers the revision that created it and the one that last modified
//! it; writes are compare-and-swap on the key's `mod_revision`; a watch replays the
//! history after a revision in revision order, then follows live writes; compaction
//! forgets history older than a revision, and a watch from before it fails with
//! [`StoreError::Compacted`] (the API server's `410 Gone`).
//!
//! Backends: [`sqlite`] (embedded, the default) and [`etcd`]. Both pass the one
//! shared suite in `tests/suite/`. Servers open one with [`open`] from a spec
//! (`sqlite:///path.db`, `etcd://host:port/prefix/`) and keep history bounded with
//! [`spawn_auto_compaction`]. [`etcd::LocalEtcd`] runs a throwaway etcd for tests.
//!
//! The API server stores objects as JSON without `metadata.resourceVersion`; it sets
//! that field from `mod_revision` on every read, as kube-apiserver's etcd3 store does.

use std::pin::Pin;

use futures::Stream;

pub mod compaction;
pub mod etcd;
pub mod sqlite;

mod keys;
mod open;

pub use compaction::{CompactionPolicy, spawn_auto_compaction};
pub use open::{StoreSpec, open};

/// A global store revision: positive, gap-free, increasing with every write.
pub type Revision = i64;

/// One stored key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that created this incarnation of the key.
    pub create_revision: Revision,
    /// Revision of the last write to this key.
    pub mod_revision: Revision,
}

/// A change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// A create (`prev == None`) or an update. `kv.mod_revision` is the event's revision.
    Put { kv: KeyValue, prev: Option<KeyValue> },
    /// A delete at `revision`; `prev` is the value just before.
    Delete { prev: KeyValue, revision: Revision },
    /// No change, but the store has reached `revision` (for watch bookmarks).
    Progress { revision: Revision },
}

impl WatchEvent {
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put { kv, .. } => kv.mod_revision,
            WatchEvent::Delete { revision, .. } | WatchEvent::Progress { revision } => *revision,
        }
    }
}

/// The result of a (possibly paginated) range read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The store revision the list is consistent with.
    pub revision: Revision,
    /// How many more keys match after the last returned one (0 when complete).
    pub remaining: u64,
}

/// What a range read asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Only keys that start with this prefix.
    pub prefix: String,
    /// Only keys strictly greater than this one (pagination continue token).
    pub start_after: Option<String>,
    /// At most this many items.
    pub limit: Option<u64>,
    /// Read as of this revision (must not be compacted); `None` reads the latest.
    pub at_revision: Option<Revision>,
}

/// A live watch: events in revision order, ending with an error if the watcher
/// falls too far behind or the store fails.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    #[error("key {key} not found")]
    NotFound { key: String },
    /// The compare-and-swap failed: the key was modified since `expected`.
    #[error("key {key} was modified (expected revision {expected}, current {current})")]
    Conflict { key: String, expected: Revision, current: Revision },
    /// The requested revision is older than the compacted one.
    #[error("revision {requested} has been compacted (oldest kept {compacted})")]
    Compacted { requested: Revision, compacted: Revision },
    /// The requested revision is newer than the store has.
    #[error("revision {requested} is in the future (current {current})")]
    FutureRevision { requested: Revision, current: Revision },
    /// The watcher could not keep up and was dropped; it must re-list.
    #[error("watcher fell too far behind and was dropped")]
    WatcherTooSlow,
    #[error("storage backend: {0}")]
    Backend(String),
}

/// Every key under `prefix`, read page by page at one revision; with that revision
/// (what a follower loads before it watches from there).
pub async fn list_prefix(store: &dyn Store, prefix: &str) -> Result<ListResult, StoreError> {
    let mut options = ListOptions { prefix: prefix.to_owned(), ..Default::default() };
    let mut items = Vec::new();
    loop {
        let page = store.list(&options).await?;
        let done = page.remaining == 0 || page.items.is_empty();
        options.start_after = page.items.last().map(|kv| kv.key.clone());
        options.at_revision = Some(page.revision);
        items.extend(page.items);
        if done {
            return Ok(ListResult { items, revision: page.revision, remaining: 0 });
        }
    }
}

/// A revisioned key-value store (see the crate docs for its semantics).
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates `key`; fails with `AlreadyExists` if present. Returns the new revision.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError>;

    /// The current value of `key`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Replaces `key` if its `mod_revision` is still `expected`. Returns the new revision.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision, StoreError>;

    /// Deletes `key`, if `expected` is given only when its `mod_revision` is still that.
    /// Returns the deleted value and the revision of the delete.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision), StoreError>;

    /// Keys in lexical order.
    async fn list(&self, options: &ListOptions) -> Result<ListResult, StoreError>;

    /// Events for keys under `prefix` with revision > `after`, in revision order, then
    /// live ones. Fails with `Compacted` if history after `after` is gone.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;

    /// The latest revision.
    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// Forgets history at revisions below `revision` (current values are kept).
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
}
