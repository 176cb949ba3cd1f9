//! The single writer thread: group commit with per-write compare-and-swap.
//!
//! Writers send [`Request`]s over a bounded channel. The thread takes every request
//! waiting (up to `max_batch`), applies them in arrival order inside ONE transaction
//! — each write checks its own precondition against the state left by the writes
//! before it, and only successful writes take a revision, so revisions stay
//! gap-free — commits once (one fsync for the batch), publishes the events in
//! revision order, and then answers each caller. A write is acknowledged only after
//! its transaction committed.
//!
//! Compaction runs here too, in chunks between write batches, so it never holds the
//! write lock for long.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::schema::{self, backend};
use crate::{KeyValue, Revision, StoreError, WatchEvent};

/// Log rows examined per compaction step.
const COMPACTION_CHUNK: i64 = 2_000;

pub(crate) enum Op {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

/// What a successful write returns.
pub(crate) enum Written {
    Revision(Revision),
    Deleted(KeyValue, Revision),
}

pub(crate) enum Request {
    Write {
        op: Op,
        reply: oneshot::Sender<Result<Written, StoreError>>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

pub(crate) struct Writer {
    conn: Connection,
    requests: mpsc::Receiver<Request>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    /// The last committed revision, shared with readers of `current_revision`.
    revision: Arc<AtomicI64>,
    max_batch: usize,
    compaction: Option<Compaction>,
}

/// A compaction in progress: rows with `id < target` are examined from `next` up.
struct Compaction {
    target: Revision,
    next: Revision,
    replies: Vec<oneshot::Sender<Result<(), StoreError>>>,
}

/// Why one write of a batch did not apply.
enum Rejected {
    /// The precondition failed; the batch goes on.
    Precondition(StoreError),
    /// SQLite failed; the whole batch is rolled back.
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for Rejected {
    fn from(err: rusqlite::Error) -> Self {
        Rejected::Sql(err)
    }
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        requests: mpsc::Receiver<Request>,
        events: broadcast::Sender<Arc<WatchEvent>>,
        revision: Arc<AtomicI64>,
        max_batch: usize,
    ) -> Self {
        Writer {
            conn,
            requests,
            events,
            revision,
            max_batch: max_batch.max(1),
            compaction: None,
        }
    }

    /// Serves requests until every sender is gone.
    pub(crate) fn run(mut self) {
        loop {
            let first = if self.compaction.is_some() {
                match self.requests.try_recv() {
                    Ok(request) => Some(request),
                    Err(mpsc::error::TryRecvError::Empty) => None,
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            } else {
                match self.requests.blocking_recv() {
                    Some(request) => Some(request),
                    None => break,
                }
            };
            let mut writes = Vec::new();
            if let Some(first) = first {
                self.accept(first, &mut writes);
                while writes.len() < self.max_batch {
                    match self.requests.try_recv() {
                        Ok(request) => self.accept(request, &mut writes),
                        Err(_) => break,
                    }
                }
            }
            if !writes.is_empty() {
                self.commit(writes);
            }
            self.compaction_step();
        }
        tracing::debug!("sqlite writer stopped");
    }

    fn accept(
        &mut self,
        request: Request,
        writes: &mut Vec<(Op, oneshot::Sender<Result<Written, StoreError>>)>,
    ) {
        match request {
            Request::Write { op, reply } => writes.push((op, reply)),
            Request::Compact { revision, reply } => self.start_compaction(revision, reply),
        }
    }

    fn commit(&mut self, writes: Vec<(Op, oneshot::Sender<Result<Written, StoreError>>)>) {
        let committed = self.revision.load(Ordering::Acquire);
        let mut results = Vec::with_capacity(writes.len());
        let mut events = Vec::with_capacity(writes.len());
        let outcome = (|| -> Result<(), rusqlite::Error> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut next = committed + 1;
            for (op, _) in &writes {
                match apply(&tx, op, next) {
                    Ok((written, event)) => {
                        next += 1;
                        results.push(Ok(written));
                        events.push(event);
                    }
                    Err(Rejected::Precondition(err)) => results.push(Err(err)),
                    Err(Rejected::Sql(err)) => return Err(err),
                }
            }
            tx.commit()
        })();
        if let Err(err) = outcome {
            tracing::error!(error = %err, writes = writes.len(), "sqlite write batch failed; rolled back");
            for (_, reply) in writes {
                let _ = reply.send(Err(backend_message(&err)));
            }
            return;
        }
        self.revision
            .store(committed + events.len() as i64, Ordering::Release);
        for event in events {
            // No receivers is fine: nobody is watching.
            let _ = self.events.send(Arc::new(event));
        }
        for ((_, reply), result) in writes.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }

    fn start_compaction(
        &mut self,
        target: Revision,
        reply: oneshot::Sender<Result<(), StoreError>>,
    ) {
        let current = self.revision.load(Ordering::Acquire);
        if target > current {
            let _ = reply.send(Err(StoreError::FutureRevision {
                requested: target,
                current,
            }));
            return;
        }
        let recorded = (|| -> Result<Revision, rusqlite::Error> {
            let compacted: Revision = self.conn.query_row(
                "SELECT value FROM meta WHERE name = 'compact_revision'",
                [],
                |r| r.get(0),
            )?;
            if target > compacted {
                // Readers check this in their snapshot before trusting old history.
                self.conn.execute(
                    "UPDATE meta SET value = ?1 WHERE name = 'compact_revision'",
                    [target],
                )?;
            }
            Ok(compacted)
        })();
        let compacted = match recorded {
            Ok(compacted) => compacted,
            Err(err) => {
                let _ = reply.send(Err(backend(err)));
                return;
            }
        };
        match &mut self.compaction {
            Some(job) => {
                if target > job.target {
                    job.target = target;
                    job.next = 0;
                }
                job.replies.push(reply);
            }
            None if target <= compacted => {
                let _ = reply.send(Ok(()));
            }
            None => {
                self.compaction = Some(Compaction {
                    target,
                    next: 0,
                    replies: vec![reply],
                })
            }
        }
    }

    /// Deletes one chunk of history below the compaction target: every tombstone,
    /// and every row that a newer row of the same key at or below the target supersedes
    /// (reads at the target and later never need it).
    fn compaction_step(&mut self) {
        let Some(job) = &mut self.compaction else {
            return;
        };
        let step = (|| -> Result<Option<Revision>, rusqlite::Error> {
            let start: Option<Revision> = self.conn.query_row(
                "SELECT MIN(id) FROM log WHERE id >= ?1 AND id < ?2",
                [job.next, job.target],
                |r| r.get(0),
            )?;
            let Some(start) = start else { return Ok(None) };
            let end = (start + COMPACTION_CHUNK).min(job.target);
            self.conn.execute(
                "DELETE FROM log WHERE id >= ?1 AND id < ?2 AND (deleted = 1 OR EXISTS (
                     SELECT 1 FROM log AS newer
                     WHERE newer.key = log.key AND newer.id > log.id AND newer.id <= ?3))",
                params![start, end, job.target],
            )?;
            Ok(Some(end))
        })();
        match step {
            Ok(Some(next)) => job.next = next,
            Ok(None) => {
                tracing::debug!(revision = job.target, "sqlite compaction done");
                for reply in self
                    .compaction
                    .take()
                    .into_iter()
                    .flat_map(|job| job.replies)
                {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "sqlite compaction failed");
                for reply in self
                    .compaction
                    .take()
                    .into_iter()
                    .flat_map(|job| job.replies)
                {
                    let _ = reply.send(Err(backend_message(&err)));
                }
            }
        }
    }
}

/// `rusqlite::Error` is not `Clone`: one failed batch reports it to many callers.
fn backend_message(err: &rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("sqlite: {err}"))
}

/// The current row of `key`.
fn current(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    tx.prepare_cached("SELECT key, create_revision, mod_revision, value FROM kv WHERE key = ?1")?
        .query_row([key.as_bytes()], schema::kv_from_row)
        .optional()
}

/// One `log` row.
struct LogRow<'a> {
    revision: Revision,
    key: &'a str,
    created: bool,
    deleted: bool,
    create_revision: Revision,
    prev_revision: Revision,
    value: Option<&'a [u8]>,
    old_value: Option<&'a [u8]>,
}

fn append(tx: &Transaction<'_>, row: LogRow<'_>) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO log (id, key, created, deleted, create_revision, prev_revision, value, old_value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        row.revision,
        row.key.as_bytes(),
        row.created,
        row.deleted,
        row.create_revision,
        row.prev_revision,
        row.value,
        row.old_value
    ])?;
    Ok(())
}

/// Applies one write at `revision` if its precondition holds.
fn apply(
    tx: &Transaction<'_>,
    op: &Op,
    revision: Revision,
) -> Result<(Written, WatchEvent), Rejected> {
    match op {
        Op::Create { key, value } => {
            if current(tx, key)?.is_some() {
                return Err(Rejected::Precondition(StoreError::AlreadyExists {
                    key: key.clone(),
                }));
            }
            append(
                tx,
                LogRow {
                    revision,
                    key,
                    created: true,
                    deleted: false,
                    create_revision: revision,
                    prev_revision: 0,
                    value: Some(value),
                    old_value: None,
                },
            )?;
            tx.prepare_cached("INSERT INTO kv (key, create_revision, mod_revision, value) VALUES (?1, ?2, ?2, ?3)")?
                .execute(params![key.as_bytes(), revision, value])?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: revision,
                mod_revision: revision,
            };
            Ok((
                Written::Revision(revision),
                WatchEvent::Put { kv, prev: None },
            ))
        }
        Op::Update {
            key,
            value,
            expected,
        } => {
            let Some(prev) = current(tx, key)? else {
                return Err(Rejected::Precondition(StoreError::NotFound {
                    key: key.clone(),
                }));
            };
            if prev.mod_revision != *expected {
                return Err(Rejected::Precondition(StoreError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    current: prev.mod_revision,
                }));
            }
            append(
                tx,
                LogRow {
                    revision,
                    key,
                    created: false,
                    deleted: false,
                    create_revision: prev.create_revision,
                    prev_revision: prev.mod_revision,
                    value: Some(value),
                    old_value: Some(&prev.value),
                },
            )?;
            tx.prepare_cached("UPDATE kv SET mod_revision = ?2, value = ?3 WHERE key = ?1")?
                .execute(params![key.as_bytes(), revision, value])?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: prev.create_revision,
                mod_revision: revision,
            };
            Ok((
                Written::Revision(revision),
                WatchEvent::Put {
                    kv,
                    prev: Some(prev),
                },
            ))
        }
        Op::Delete { key, expected } => {
            let Some(prev) = current(tx, key)? else {
                return Err(Rejected::Precondition(StoreError::NotFound {
                    key: key.clone(),
                }));
            };
            if let Some(expected) = expected
                && prev.mod_revision != *expected
            {
                return Err(Rejected::Precondition(StoreError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    current: prev.mod_revision,
                }));
            }
            append(
                tx,
                LogRow {
                    revision,
                    key,
                    created: false,
                    deleted: true,
                    create_revision: prev.create_revision,
                    prev_revision: prev.mod_revision,
                    value: None,
                    old_value: Some(&prev.value),
                },
            )?;
            tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?
                .execute([key.as_bytes()])?;
            Ok((
                Written::Deleted(prev.clone(), revision),
                WatchEvent::Delete { prev, revision },
            ))
        }
    }
}
