//! WAL checkpoints off the write path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the
//! threshold, so one write in ~a thousand pages would wait for the copy back into
//! the database file and its fsync. The writer connection disables it
//! (`wal_autocheckpoint=0`) and this thread runs `PASSIVE` checkpoints (which never
//! block the writer or readers) on its own connection instead.

use std::sync::mpsc;
use std::time::Duration;

use super::Synchronous;
use super::schema;
use crate::StoreError;

const PERIOD: Duration = Duration::from_millis(250);

/// Starts the checkpoint thread; it stops when `stop`'s sender is dropped.
pub(crate) fn spawn(
    path: &str,
    synchronous: Synchronous,
    stop: mpsc::Receiver<()>,
) -> Result<(), StoreError> {
    let conn = schema::connect(path, synchronous)?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(PERIOD) {
                let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                });
                if let Err(err) = result {
                    tracing::warn!(error = %err, "sqlite checkpoint failed");
                }
            }
            // A last full checkpoint leaves a small WAL behind on a clean shutdown.
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        })
        .map_err(|e| StoreError::Backend(format!("sqlite: cannot start checkpoint thread: {e}")))?;
    Ok(())
}
