//! The shared suite on the SQLite backend, plus SQLite-specific durability.

mod suite;

use std::sync::Arc;

use waggle_store::Store;
use waggle_store::sqlite::{SqliteOptions, SqliteStore};

async fn fixture(watch_buffer: usize) -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        watch_buffer,
        progress_interval: Some(std::time::Duration::from_millis(200)),
        ..Default::default()
    };
    let store = SqliteStore::open_with(dir.path().join("store.db"), options).unwrap();
    (Arc::new(store), dir)
}

store_suite!(fixture);

mod durability;

/// `kill -9` of the process that owns the database loses no acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let spec = format!("sqlite://{}", path.display());
    let mut writer = durability::Writer::spawn(&spec, "/durable/", 1_000_000, 16);
    writer.read_until(2_000);
    writer.kill_and_drain();
    let acknowledged = std::mem::take(&mut writer.acknowledged);
    assert!(
        acknowledged.len() >= 2_000,
        "killed mid-stream after {} writes",
        acknowledged.len()
    );
    let store = waggle_store::open(&spec).await.unwrap();
    durability::assert_all_present(&store, &acknowledged).await;
    // Revisions stay gap-free across the crash: the next write follows the last one.
    let last = store.current_revision().await.unwrap();
    assert!(last >= acknowledged.iter().map(|(r, _)| *r).max().unwrap());
    assert_eq!(
        store.create("/after-crash", b"x".to_vec()).await.unwrap(),
        last + 1
    );
    let listed = store
        .list(&waggle_store::ListOptions {
            prefix: "/durable/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listed.items.len() as i64,
        last,
        "every committed revision is one create"
    );
}

/// Compaction removes superseded rows from the log, not just hides them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_shrinks_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let mut mods = Vec::new();
    for k in 0..10 {
        mods.push(
            store
                .create(&format!("/k/{k}"), b"0".to_vec())
                .await
                .unwrap(),
        );
    }
    for round in 1..=9 {
        for (k, rev) in mods.iter_mut().enumerate() {
            *rev = store
                .update(&format!("/k/{k}"), format!("{round}").into_bytes(), *rev)
                .await
                .unwrap();
        }
    }
    store.delete("/k/0", None).await.unwrap();
    let current = store.current_revision().await.unwrap();
    assert_eq!(current, 101);
    store.compact(current).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM log", [], |r| r.get(0))
        .unwrap();
    // Kept: the newest row of the 9 live keys (all below 101) and the tombstone at 101.
    assert_eq!(rows, 10);
    let listed = store
        .list(&waggle_store::ListOptions {
            at_revision: Some(current),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 9);
    assert!(listed.items.iter().all(|kv| kv.value == b"9"));
}

/// A second store on the same file is refused while the first is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_store_per_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let first = SqliteStore::open(&path).unwrap();
    match SqliteStore::open(&path) {
        Err(waggle_store::StoreError::Backend(message)) => {
            assert!(message.contains("already open"), "{message}")
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a second store opened the same database"),
    }
    drop(first);
    SqliteStore::open(&path).expect("the file is free again once the first store is gone");
}
