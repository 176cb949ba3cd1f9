//! The embedded backend: one SQLite file in WAL mode.
//!
//! Start at [`SqliteStore::open`]. Writes go to a dedicated writer thread
//! (`writer.rs`) that group-commits concurrent writes; reads use a small pool of
//! snapshot connections (`reader.rs`); watches replay the log and then follow an
//! in-process broadcast of committed events (`watch.rs`); WAL checkpoints run
//! on their own thread (`checkpoint.rs`). The layout is in `schema.rs`.
//!
//! Durability: by default `synchronous=FULL`, so SQLite fsyncs the WAL at every
//! commit and an acknowledged write survives both `kill -9` and power loss. Group
//! commit pays one fsync per batch, which keeps throughput high. `Normal` (WAL
//! synced only at checkpoints) still survives a process crash, since committed
//! frames are in the OS page cache, but not a power loss.

mod checkpoint;
mod reader;
mod schema;
mod watch;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{KeyValue, ListOptions, ListResult, Revision, Store, StoreError, WatchStream};
use writer::{Op, Request, Written};

/// When SQLite syncs the WAL to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync at every commit: acknowledged writes survive power loss.
    #[default]
    Full,
    /// fsync at checkpoints only: acknowledged writes survive a process crash.
    Normal,
}

/// Tuning for [`SqliteStore`].
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// Most writes committed in one transaction.
    pub max_batch: usize,
    /// Idle read connections kept open.
    pub read_connections: usize,
    /// Events a watcher may fall behind before it is dropped. The broadcast ring keeps
    /// this many recent events resident, so it is also a memory bound (the API server
    /// shares one store watch per resource among all its watchers).
    pub watch_buffer: usize,
    /// How often a watch reports `Progress` when it saw only other prefixes' writes.
    pub progress_interval: Option<Duration>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            max_batch: 1024,
            read_connections: 4,
            watch_buffer: 4096,
            progress_interval: Some(Duration::from_secs(5)),
        }
    }
}

/// The SQLite-backed [`Store`]. Only one `SqliteStore` may have a database file open.
pub struct SqliteStore {
    shared: Arc<Shared>,
}

struct Shared {
    writes: mpsc::Sender<Request>,
    readers: reader::Pool,
    events: broadcast::Sender<Arc<crate::WatchEvent>>,
    revision: Arc<AtomicI64>,
    progress_interval: Option<Duration>,
    /// Dropping it stops the checkpoint thread.
    _stop_checkpoints: std::sync::mpsc::Sender<()>,
    /// Held for the store's life: one writer per database file.
    _lock: std::fs::File,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default options.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    pub fn open_with(
        path: impl AsRef<std::path::Path>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        let path = path
            .as_ref()
            .to_str()
            .ok_or_else(|| {
                StoreError::Backend(format!("sqlite: path {:?} is not UTF-8", path.as_ref()))
            })?
            .to_owned();
        let lock = lock_exclusively(&path)?;
        let conn = schema::connect(&path, options.synchronous)?;
        schema::migrate(&conn)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(schema::backend)?;
        // Once checkpointed, a WAL that grew during a burst is cut back to 64 MiB.
        conn.pragma_update(None, "journal_size_limit", 64 << 20)
            .map_err(schema::backend)?;
        let (stop_checkpoints, checkpoint_stop) = std::sync::mpsc::channel();
        checkpoint::spawn(&path, options.synchronous, checkpoint_stop)?;
        let revision = Arc::new(AtomicI64::new(schema::max_revision(&conn)?));
        let (writes, requests) = mpsc::channel(options.max_batch.max(1) * 4);
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let writer = writer::Writer::new(
            conn,
            requests,
            events.clone(),
            revision.clone(),
            options.max_batch,
        );
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Backend(format!("sqlite: cannot start writer thread: {e}")))?;
        let readers = reader::Pool::new(path, options.synchronous, options.read_connections);
        Ok(SqliteStore {
            shared: Arc::new(Shared {
                writes,
                readers,
                events,
                revision,
                progress_interval: options.progress_interval,
                _stop_checkpoints: stop_checkpoints,
                _lock: lock,
            }),
        })
    }

    async fn write(&self, op: Op) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .writes
            .send(Request::Write { op, reply })
            .await
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    async fn read<R: Send + 'static>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.readers.read(read))
            .await
            .map_err(|e| StoreError::Backend(format!("sqlite: read task failed: {e}")))?
    }
}

/// Locks `PATH-lock`, so that a second process (or store) cannot open the same
/// database: two writers would each number revisions on their own. The OS drops
/// the lock when the process dies, even by `kill -9`.
fn lock_exclusively(path: &str) -> Result<std::fs::File, StoreError> {
    let lock_path = format!("{path}-lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Backend(format!("sqlite: cannot open {lock_path}: {e}")))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Backend(format!(
            "sqlite: {path} is already open in another store (lock {lock_path} is held)"
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Backend(format!(
            "sqlite: cannot lock {lock_path}: {e}"
        ))),
    }
}

fn writer_gone() -> StoreError {
    StoreError::Backend("sqlite: writer thread stopped".into())
}

fn revision_of(written: Written) -> Revision {
    match written {
        Written::Revision(revision) | Written::Deleted(_, revision) => revision,
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError> {
        self.write(Op::Create {
            key: key.to_owned(),
            value,
        })
        .await
        .map(revision_of)
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_owned();
        self.read(move |conn| reader::get(conn, &key)).await
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<Revision, StoreError> {
        self.write(Op::Update {
            key: key.to_owned(),
            value,
            expected,
        })
        .await
        .map(revision_of)
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError> {
        match self
            .write(Op::Delete {
                key: key.to_owned(),
                expected,
            })
            .await?
        {
            Written::Deleted(prev, revision) => Ok((prev, revision)),
            Written::Revision(_) => Err(StoreError::Backend(
                "sqlite: delete answered without its value".into(),
            )),
        }
    }

    async fn list(&self, options: &ListOptions) -> Result<ListResult, StoreError> {
        let options = options.clone();
        self.read(move |conn| reader::list(conn, &options)).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        // Subscribe first: see the `watch` module for why this gives no gap.
        let live = self.shared.events.subscribe();
        let owned = prefix.to_owned();
        let (history, snapshot) = self
            .read(move |conn| reader::history(conn, &owned, after))
            .await?;
        Ok(watch::stream(
            history,
            live,
            prefix.to_owned(),
            after,
            snapshot.max(after),
            self.shared.progress_interval,
        ))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .writes
            .send(Request::Compact { revision, reply })
            .await
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}
