//! The shared suite on the etcd backend, against a real etcd started per test.

mod suite;

use std::sync::Arc;

use waggle_store::Store;
use waggle_store::etcd::{EtcdOptions, EtcdStore, LocalEtcd};

/// Keeps the etcd process and its data dir alive for a test.
struct Guard {
    _etcd: LocalEtcd,
    _dir: tempfile::TempDir,
}

async fn start_etcd() -> (LocalEtcd, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let etcd = LocalEtcd::start(&dir.path().join("etcd"))
        .await
        .unwrap_or_else(|err| panic!("cannot start a real etcd for the test: {err}"));
    (etcd, dir)
}

async fn fixture(watch_buffer: usize) -> (Arc<dyn Store>, Guard) {
    let (etcd, dir) = start_etcd().await;
    let options = EtcdOptions {
        prefix: "/test".into(),
        watch_buffer,
        ..EtcdOptions::new(vec![etcd.endpoint()])
    };
    let store = EtcdStore::connect(options).await.unwrap();
    (
        Arc::new(store),
        Guard {
            _etcd: etcd,
            _dir: dir,
        },
    )
}

store_suite!(fixture);

/// Two stores with different prefixes on one etcd see only their own keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_isolate_stores() {
    use waggle_store::ListOptions;
    let (etcd, _dir) = start_etcd().await;
    let a = waggle_store::open(&format!("etcd://{}/a", etcd.host_port()))
        .await
        .unwrap();
    let b = waggle_store::open(&format!("etcd://{}/b", etcd.host_port()))
        .await
        .unwrap();
    a.create("/x", b"a".to_vec()).await.unwrap();
    b.create("/x", b"b".to_vec()).await.unwrap();
    b.create("/y", b"b".to_vec()).await.unwrap();
    let listed = a.list(&ListOptions::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        (
            listed.items[0].key.as_str(),
            listed.items[0].value.as_slice()
        ),
        ("/x", &b"a"[..])
    );
    assert_eq!(
        b.list(&ListOptions::default()).await.unwrap().items.len(),
        2
    );
    assert_eq!(a.get("/y").await.unwrap(), None);
}

mod durability;

/// `kill -9` of etcd mid-stream loses no acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_etcd_kill_9() {
    let (mut etcd, _dir) = start_etcd().await;
    let spec = format!("etcd://{}/durable", etcd.host_port());
    let mut writer = durability::Writer::spawn(&spec, "/k/", 1_000_000, 16);
    writer.read_until(1_000);
    etcd.kill();
    // Whatever the writer printed was acknowledged by etcd before the kill.
    writer.kill_and_drain();
    let acknowledged = std::mem::take(&mut writer.acknowledged);
    assert!(
        acknowledged.len() >= 1_000,
        "killed mid-stream after {} writes",
        acknowledged.len()
    );
    etcd.crash_and_restart().await.unwrap();
    let store = waggle_store::open(&spec).await.unwrap();
    durability::assert_all_present(&store, &acknowledged).await;
}
