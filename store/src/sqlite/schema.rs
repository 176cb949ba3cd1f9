//! The on-disk layout: a kine-style log plus a current-state table, and the
//! conversions from log rows to [`WatchEvent`]s.
//!
//! * `log`: one row per write; `id` is the revision. A row records whether it
//!   created or deleted the key, the key's create revision, the revision it replaced
//!   (`prev_revision`) and the value it replaced (`old_value`), so a watch event with
//!   its previous value is read from one row.
//! * `kv`: the latest value of every live key, maintained in the same transaction,
//!   so reads of the latest state never scan the log.
//! * `meta`: the compacted revision.
//!
//! Keys are stored as BLOBs so that range bounds compare byte-wise.

use rusqlite::{Connection, Row};

use super::Synchronous;
use crate::{KeyValue, Revision, StoreError, WatchEvent};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY,
    key BLOB NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB,
    old_value BLOB
);
CREATE INDEX IF NOT EXISTS log_key_id ON log (key, id);
CREATE TABLE IF NOT EXISTS kv (
    key BLOB PRIMARY KEY,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (name, value) VALUES ('compact_revision', 0);
";

/// Columns selected by [`event_from_row`], in order.
pub(crate) const LOG_COLUMNS: &str =
    "id, key, created, deleted, create_revision, prev_revision, value, old_value";

pub(crate) fn backend(err: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("sqlite: {err}"))
}

/// Opens a connection with the pragmas every connection needs.
pub(crate) fn connect(path: &str, synchronous: Synchronous) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(backend)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "sqlite: {path} refused WAL mode (got {mode})"
        )));
    }
    let sync = match synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)
        .map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(backend)?;
    Ok(conn)
}

/// Creates the tables if missing.
pub(crate) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA).map_err(backend)
}

/// The newest revision in the log (0 for an empty store). Compaction never removes
/// the newest row, so this is the store's revision.
pub(crate) fn max_revision(conn: &Connection) -> Result<Revision, StoreError> {
    conn.query_row("SELECT COALESCE(MAX(id), 0) FROM log", [], |r| r.get(0))
        .map_err(backend)
}

pub(crate) fn compact_revision(conn: &Connection) -> Result<Revision, StoreError> {
    conn.query_row(
        "SELECT value FROM meta WHERE name = 'compact_revision'",
        [],
        |r| r.get(0),
    )
    .map_err(backend)
}

pub(crate) fn key_from_blob(bytes: Vec<u8>) -> rusqlite::Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, Box::new(e))
    })
}

/// A `kv` row selected as `key, create_revision, mod_revision, value`.
pub(crate) fn kv_from_row(row: &Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: key_from_blob(row.get(0)?)?,
        create_revision: row.get(1)?,
        mod_revision: row.get(2)?,
        value: row.get(3)?,
    })
}

/// A `log` row selected as [`LOG_COLUMNS`].
pub(crate) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<WatchEvent> {
    let revision: Revision = row.get(0)?;
    let key = key_from_blob(row.get(1)?)?;
    let created: bool = row.get(2)?;
    let deleted: bool = row.get(3)?;
    let create_revision: Revision = row.get(4)?;
    let prev_revision: Revision = row.get(5)?;
    let value: Option<Vec<u8>> = row.get(6)?;
    let old_value: Option<Vec<u8>> = row.get(7)?;
    let prev = (!created).then(|| KeyValue {
        key: key.clone(),
        value: old_value.unwrap_or_default(),
        create_revision,
        mod_revision: prev_revision,
    });
    Ok(match prev {
        Some(prev) if deleted => WatchEvent::Delete { prev, revision },
        prev => WatchEvent::Put {
            kv: KeyValue {
                key,
                value: value.unwrap_or_default(),
                create_revision,
                mod_revision: revision,
            },
            prev,
        },
    })
}
