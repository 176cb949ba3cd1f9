//! Reads: a small pool of read-only connections, each read in one snapshot
//! transaction (WAL readers never block the writer, nor it them).

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};

use super::Synchronous;
use super::schema::{self, backend};
use crate::keys::{prefix_end, successor};
use crate::{KeyValue, ListOptions, ListResult, Revision, StoreError, WatchEvent};

pub(crate) struct Pool {
    path: String,
    synchronous: Synchronous,
    max_idle: usize,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    pub(crate) fn new(path: String, synchronous: Synchronous, max_idle: usize) -> Self {
        Pool {
            path,
            synchronous,
            max_idle: max_idle.max(1),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` in a snapshot on a pooled connection (blocking: call from a
    /// blocking thread).
    pub(crate) fn read<R>(
        &self,
        read: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let pooled = self.idle.lock().pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = schema::connect(&self.path, self.synchronous)?;
                conn.pragma_update(None, "query_only", true)
                    .map_err(backend)?;
                conn
            }
        };
        let result = (|| {
            let tx = conn.transaction().map_err(backend)?;
            let result = read(&tx)?;
            tx.finish().map_err(backend)?;
            Ok(result)
        })();
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
        result
    }
}

pub(crate) fn get(conn: &Connection, key: &str) -> Result<Option<KeyValue>, StoreError> {
    conn.prepare_cached("SELECT key, create_revision, mod_revision, value FROM kv WHERE key = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([key.as_bytes()], schema::kv_from_row)
                .optional()
        })
        .map_err(backend)
}

/// The key bounds of a list: `lower <= key < upper`.
struct Bounds {
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
}

impl Bounds {
    fn new(options: &ListOptions) -> Self {
        let prefix = options.prefix.as_bytes().to_vec();
        let upper = prefix_end(&prefix);
        let lower = match &options.start_after {
            Some(after) if after.as_bytes() >= prefix.as_slice() => successor(after.as_bytes()),
            _ => prefix,
        };
        Bounds { lower, upper }
    }
}

pub(crate) fn list(conn: &Connection, options: &ListOptions) -> Result<ListResult, StoreError> {
    let current = schema::max_revision(conn)?;
    let revision = match options.at_revision {
        None => current,
        Some(requested) if requested > current => {
            return Err(StoreError::FutureRevision { requested, current });
        }
        Some(requested) => {
            let compacted = schema::compact_revision(conn)?;
            if requested < compacted {
                return Err(StoreError::Compacted {
                    requested,
                    compacted,
                });
            }
            requested
        }
    };
    let bounds = Bounds::new(options);
    let limit = options
        .limit
        .filter(|l| *l > 0)
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let (items, total) = if revision == current {
        latest(conn, &bounds, limit)
    } else {
        historical(conn, &bounds, limit, revision)
    }
    .map_err(backend)?;
    let remaining = total.saturating_sub(items.len() as u64);
    Ok(ListResult {
        items,
        revision,
        remaining,
    })
}

/// Reads from the current-state table.
fn latest(
    conn: &Connection,
    bounds: &Bounds,
    limit: i64,
) -> rusqlite::Result<(Vec<KeyValue>, u64)> {
    const RANGE: &str = "key >= ?1 AND (?2 IS NULL OR key < ?2)";
    let items = conn
        .prepare_cached(&format!(
            "SELECT key, create_revision, mod_revision, value FROM kv WHERE {RANGE} ORDER BY key LIMIT ?3"
        ))?
        .query_map(params![bounds.lower, bounds.upper, limit], schema::kv_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let total = if limit >= 0 && items.len() as i64 == limit {
        conn.prepare_cached(&format!("SELECT COUNT(*) FROM kv WHERE {RANGE}"))?
            .query_row(params![bounds.lower, bounds.upper], |r| r.get::<_, i64>(0))? as u64
    } else {
        items.len() as u64
    };
    Ok((items, total))
}

/// Reads the state as of `revision` from the log: per key, the newest row at or
/// below `revision`, unless it is a tombstone.
fn historical(
    conn: &Connection,
    bounds: &Bounds,
    limit: i64,
    revision: Revision,
) -> rusqlite::Result<(Vec<KeyValue>, u64)> {
    const VISIBLE: &str =
        "l.key >= ?1 AND (?2 IS NULL OR l.key < ?2) AND l.id <= ?3 AND l.deleted = 0
        AND NOT EXISTS (SELECT 1 FROM log AS n WHERE n.key = l.key AND n.id > l.id AND n.id <= ?3)";
    let items = conn
        .prepare_cached(&format!(
            "SELECT l.key, l.create_revision, l.id, l.value FROM log AS l WHERE {VISIBLE} ORDER BY l.key LIMIT ?4"
        ))?
        .query_map(params![bounds.lower, bounds.upper, revision, limit], schema::kv_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let total = if limit >= 0 && items.len() as i64 == limit {
        conn.prepare_cached(&format!("SELECT COUNT(*) FROM log AS l WHERE {VISIBLE}"))?
            .query_row(params![bounds.lower, bounds.upper, revision], |r| {
                r.get::<_, i64>(0)
            })? as u64
    } else {
        items.len() as u64
    };
    Ok((items, total))
}

/// The events under `prefix` with revision > `after`, and the snapshot's revision.
pub(crate) fn history(
    conn: &Connection,
    prefix: &str,
    after: Revision,
) -> Result<(Vec<WatchEvent>, Revision), StoreError> {
    let compacted = schema::compact_revision(conn)?;
    // Events at revisions >= compacted are all kept (see the writer's compaction).
    if after + 1 < compacted {
        return Err(StoreError::Compacted {
            requested: after,
            compacted,
        });
    }
    let snapshot = schema::max_revision(conn)?;
    let lower = prefix.as_bytes();
    let upper = prefix_end(lower);
    let events = conn
        .prepare_cached(&format!(
            "SELECT {} FROM log WHERE id > ?1 AND id <= ?2 AND key >= ?3 AND (?4 IS NULL OR key < ?4) ORDER BY id",
            schema::LOG_COLUMNS
        ))
        .and_then(|mut stmt| {
            stmt.query_map(params![after, snapshot, lower, upper], schema::event_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(backend)?;
    Ok((events, snapshot))
}
