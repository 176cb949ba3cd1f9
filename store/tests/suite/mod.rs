//! The one behaviour suite every backend must pass. Each function takes a fresh,
//! empty store; `store_suite!` turns them into `#[tokio::test]`s for a backend.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use waggle_store::{KeyValue, ListOptions, Revision, Store, StoreError, WatchEvent, WatchStream};

/// Watch buffer for every test except the slow-watcher one.
pub const DEFAULT_BUFFER: usize = 16_384;
/// Watch buffer for the slow-watcher test.
pub const SMALL_BUFFER: usize = 64;

const STEP: Duration = Duration::from_secs(20);

/// Generates the suite's tests for a backend. `$fixture(watch_buffer)` is an async
/// fn returning `(Arc<dyn Store>, guard)`; the guard lives until the test ends.
#[macro_export]
macro_rules! store_suite {
    ($fixture:path) => {
        $crate::store_suite!(@tests $fixture;
            crud, revisions_are_gap_free, list_prefix_and_pages, list_at_revision,
            watch_replays_then_follows, watch_while_writers_run, watch_reports_deletes_with_prev,
            compaction_forgets_history, concurrent_cas_has_one_winner, counters_under_contention,
            watch_reports_progress);
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn slow_watcher_is_dropped() {
            let (store, _guard) = $fixture(suite::SMALL_BUFFER).await;
            suite::slow_watcher_is_dropped(store, suite::SMALL_BUFFER).await;
        }
    };
    (@tests $fixture:path; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (store, _guard) = $fixture(suite::DEFAULT_BUFFER).await;
                suite::$name(store).await;
            }
        )*
    };
}

fn v(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

async fn next(stream: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(STEP, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(err))) => panic!("watch failed: {err}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {STEP:?}"),
    }
}

/// Next event that is not a progress notification.
async fn next_change(stream: &mut WatchStream) -> WatchEvent {
    loop {
        let event = next(stream).await;
        if !matches!(event, WatchEvent::Progress { .. }) {
            return event;
        }
    }
}

pub async fn crud(store: Arc<dyn Store>) {
    assert_eq!(store.get("/a").await.unwrap(), None);
    let r1 = store.create("/a", v("one")).await.unwrap();
    let kv = store.get("/a").await.unwrap().expect("created key");
    assert_eq!(
        kv,
        KeyValue {
            key: "/a".into(),
            value: v("one"),
            create_revision: r1,
            mod_revision: r1
        }
    );

    match store.create("/a", v("again")).await {
        Err(StoreError::AlreadyExists { key }) => assert_eq!(key, "/a"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }

    let r2 = store.update("/a", v("two"), r1).await.unwrap();
    assert_eq!(r2, r1 + 1);
    let kv = store.get("/a").await.unwrap().unwrap();
    assert_eq!(
        (kv.value, kv.create_revision, kv.mod_revision),
        (v("two"), r1, r2)
    );

    match store.update("/a", v("stale"), r1).await {
        Err(StoreError::Conflict {
            key,
            expected,
            current,
        }) => assert_eq!((key.as_str(), expected, current), ("/a", r1, r2)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    match store.delete("/a", Some(r1)).await {
        Err(StoreError::Conflict { current, .. }) => assert_eq!(current, r2),
        other => panic!("expected Conflict, got {other:?}"),
    }
    match store.update("/missing", v("x"), 1).await {
        Err(StoreError::NotFound { key }) => assert_eq!(key, "/missing"),
        other => panic!("expected NotFound, got {other:?}"),
    }

    let (prev, r3) = store.delete("/a", Some(r2)).await.unwrap();
    assert_eq!(r3, r2 + 1);
    assert_eq!(
        prev,
        KeyValue {
            key: "/a".into(),
            value: v("two"),
            create_revision: r1,
            mod_revision: r2
        }
    );
    assert_eq!(store.get("/a").await.unwrap(), None);
    assert!(matches!(
        store.delete("/a", None).await,
        Err(StoreError::NotFound { .. })
    ));

    let r4 = store.create("/a", v("reborn")).await.unwrap();
    assert_eq!(r4, r3 + 1);
    let kv = store.get("/a").await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (r4, r4));
    let (prev, r5) = store.delete("/a", None).await.unwrap();
    assert_eq!((prev.value, r5), (v("reborn"), r4 + 1));
    assert_eq!(store.current_revision().await.unwrap(), r5);
}

pub async fn revisions_are_gap_free(store: Arc<dyn Store>) {
    let mut last = store.current_revision().await.unwrap();
    let mut mods: BTreeMap<String, Revision> = BTreeMap::new();
    for i in 0..60 {
        let key = format!("/k/{}", i % 7);
        let rev = match mods.get(&key).copied() {
            None => store.create(&key, v("c")).await.unwrap(),
            Some(m) if i % 3 == 0 => {
                // A failed write must not consume a revision.
                assert!(store.update(&key, v("x"), m - 1).await.is_err());
                assert!(store.create(&key, v("x")).await.is_err());
                store.delete(&key, Some(m)).await.unwrap().1
            }
            Some(m) => store.update(&key, v(&format!("u{i}")), m).await.unwrap(),
        };
        assert_eq!(rev, last + 1, "write {i} to {key}");
        if i % 3 == 0 && mods.contains_key(&key) {
            mods.remove(&key);
        } else {
            mods.insert(key, rev);
        }
        last = rev;
        assert_eq!(store.current_revision().await.unwrap(), last);
    }
}

pub async fn list_prefix_and_pages(store: Arc<dyn Store>) {
    for i in 1..=9 {
        store
            .create(&format!("/a/{i}"), v(&format!("a{i}")))
            .await
            .unwrap();
    }
    store.create("/b/1", v("b1")).await.unwrap();
    store.create("/a", v("not under /a/")).await.unwrap();
    let current = store.current_revision().await.unwrap();

    let all = store
        .list(&ListOptions {
            prefix: "/a/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<_> = all.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, (1..=9).map(|i| format!("/a/{i}")).collect::<Vec<_>>());
    assert_eq!((all.remaining, all.revision), (0, current));
    assert_eq!(all.items[2].value, v("a3"));

    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(&ListOptions {
                prefix: "/a/".into(),
                start_after: after.clone(),
                limit: Some(4),
                ..Default::default()
            })
            .await
            .unwrap();
        let seen: usize = pages.iter().map(|p: &Vec<String>| p.len()).sum();
        assert_eq!(
            page.remaining as usize,
            9 - seen - page.items.len(),
            "remaining after page {}",
            pages.len()
        );
        after = page.items.last().map(|kv| kv.key.clone());
        pages.push(page.items.into_iter().map(|kv| kv.key).collect());
        if page.remaining == 0 {
            break;
        }
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![4, 4, 1]
    );
    assert_eq!(pages.concat(), keys);

    let everything = store.list(&ListOptions::default()).await.unwrap();
    assert_eq!(everything.items.len(), 11);
    let b = store
        .list(&ListOptions {
            prefix: "/b/".into(),
            limit: Some(10),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((b.items.len(), b.remaining), (1, 0));
    let none = store
        .list(&ListOptions {
            prefix: "/c/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.items.is_empty());
}

pub async fn list_at_revision(store: Arc<dyn Store>) {
    let mut revs = BTreeMap::new();
    for i in 1..=5 {
        revs.insert(
            i,
            store
                .create(&format!("/p/{i}"), v(&format!("v{i}")))
                .await
                .unwrap(),
        );
    }
    let before = store
        .list(&ListOptions {
            prefix: "/p/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let r = before.revision;
    store.update("/p/1", v("changed"), revs[&1]).await.unwrap();
    store.delete("/p/2", None).await.unwrap();
    store.create("/p/6", v("v6")).await.unwrap();
    store.create("/p/2", v("again")).await.unwrap();

    let old = store
        .list(&ListOptions {
            prefix: "/p/".into(),
            at_revision: Some(r),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(old.items, before.items);
    assert_eq!(old.revision, r);

    let page = store
        .list(&ListOptions {
            prefix: "/p/".into(),
            at_revision: Some(r),
            limit: Some(2),
            start_after: Some("/p/1".into()),
        })
        .await
        .unwrap();
    assert_eq!(page.items, before.items[1..3].to_vec());
    assert_eq!(page.remaining, 2);

    let mid = store
        .list(&ListOptions {
            prefix: "/p/".into(),
            at_revision: Some(r + 2),
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<_> = mid
        .items
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("/p/1", v("changed")),
            ("/p/3", v("v3")),
            ("/p/4", v("v4")),
            ("/p/5", v("v5"))
        ]
    );

    let current = store.current_revision().await.unwrap();
    match store
        .list(&ListOptions {
            at_revision: Some(current + 10),
            ..Default::default()
        })
        .await
    {
        Err(StoreError::FutureRevision { requested, .. }) => assert_eq!(requested, current + 10),
        other => panic!("expected FutureRevision, got {other:?}"),
    }
}

pub async fn watch_replays_then_follows(store: Arc<dyn Store>) {
    let r1 = store.create("/w/a", v("a1")).await.unwrap();
    let r2 = store.create("/w/b", v("b1")).await.unwrap();
    store.create("/other/x", v("x")).await.unwrap();
    let r4 = store.update("/w/a", v("a2"), r1).await.unwrap();

    let mut watch = store.watch("/w/", r1).await.unwrap();
    match next_change(&mut watch).await {
        WatchEvent::Put { kv, prev: None } => {
            assert_eq!((kv.key.as_str(), kv.mod_revision), ("/w/b", r2))
        }
        other => panic!("unexpected {other:?}"),
    }
    match next_change(&mut watch).await {
        WatchEvent::Put {
            kv,
            prev: Some(prev),
        } => {
            assert_eq!(
                (
                    kv.key.as_str(),
                    kv.value,
                    kv.create_revision,
                    kv.mod_revision
                ),
                ("/w/a", v("a2"), r1, r4)
            );
            assert_eq!((prev.value, prev.mod_revision), (v("a1"), r1));
        }
        other => panic!("unexpected {other:?}"),
    }
    store.create("/other/y", v("y")).await.unwrap();
    let r6 = store.update("/w/b", v("b2"), r2).await.unwrap();
    match next_change(&mut watch).await {
        WatchEvent::Put { kv, prev } => {
            assert_eq!((kv.key.as_str(), kv.mod_revision), ("/w/b", r6));
            assert_eq!(prev.map(|p| p.value), Some(v("b1")));
        }
        other => panic!("unexpected {other:?}"),
    }
    // A watch from the current revision sees only later writes.
    let mut fresh = store.watch("/w/", r6).await.unwrap();
    let r7 = store.create("/w/c", v("c")).await.unwrap();
    assert_eq!(next_change(&mut fresh).await.revision(), r7);
    assert_eq!(next_change(&mut watch).await.revision(), r7);
}

/// Watches started while several writers run see every write exactly once, in order.
pub async fn watch_while_writers_run(store: Arc<dyn Store>) {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 150;
    let start = store.current_revision().await.unwrap();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..PER_WRITER {
                let key = format!("/c/{w}/{}", i % 10);
                let rev = match store.get(&key).await.unwrap() {
                    None => store.create(&key, v(&format!("{i}"))).await.unwrap(),
                    Some(kv) if i % 4 == 0 => {
                        store.delete(&key, Some(kv.mod_revision)).await.unwrap().1
                    }
                    Some(kv) => store
                        .update(&key, v(&format!("{i}")), kv.mod_revision)
                        .await
                        .unwrap(),
                };
                revs.push(rev);
            }
            revs
        }));
    }
    // Start watches at different moments while the writers run.
    let mut watches = Vec::new();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        watches.push(store.watch("/c/", start).await.unwrap());
    }
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    written.sort_unstable();
    let expected: Vec<Revision> =
        (start + 1..=start + (WRITERS * PER_WRITER) as Revision).collect();
    assert_eq!(written, expected, "revisions of all writes are gap-free");
    for (i, watch) in watches.iter_mut().enumerate() {
        let mut seen = Vec::with_capacity(expected.len());
        while seen.len() < expected.len() {
            seen.push(next_change(watch).await.revision());
        }
        assert_eq!(seen, expected, "watch {i} saw every write once, in order");
    }
}

pub async fn watch_reports_deletes_with_prev(store: Arc<dyn Store>) {
    let r1 = store.create("/d/x", v("x1")).await.unwrap();
    let r2 = store.update("/d/x", v("x2"), r1).await.unwrap();
    let mut watch = store.watch("/d/", r2).await.unwrap();
    let (_, r3) = store.delete("/d/x", Some(r2)).await.unwrap();
    match next_change(&mut watch).await {
        WatchEvent::Delete { prev, revision } => {
            assert_eq!(revision, r3);
            assert_eq!(
                prev,
                KeyValue {
                    key: "/d/x".into(),
                    value: v("x2"),
                    create_revision: r1,
                    mod_revision: r2
                }
            );
        }
        other => panic!("expected Delete, got {other:?}"),
    }
    // The same delete replayed from history.
    let mut replay = store.watch("/d/", r2).await.unwrap();
    match next_change(&mut replay).await {
        WatchEvent::Delete { prev, revision } => {
            assert_eq!((prev.value, prev.mod_revision, revision), (v("x2"), r2, r3))
        }
        other => panic!("expected Delete, got {other:?}"),
    }
}

pub async fn compaction_forgets_history(store: Arc<dyn Store>) {
    let mut mods = BTreeMap::new();
    for round in 0..5 {
        for k in 0..20 {
            let key = format!("/h/{k}");
            let rev = match mods.get(&key) {
                None => store.create(&key, v(&format!("{round}"))).await.unwrap(),
                Some(m) => store
                    .update(&key, v(&format!("{round}")), *m)
                    .await
                    .unwrap(),
            };
            mods.insert(key, rev);
        }
        if round == 2 {
            for k in 0..5 {
                let key = format!("/h/{k}");
                store.delete(&key, None).await.unwrap();
                mods.remove(&key);
            }
        }
    }
    let at = store.current_revision().await.unwrap() - 30;
    let before = store
        .list(&ListOptions {
            prefix: "/h/".into(),
            at_revision: Some(at),
            ..Default::default()
        })
        .await
        .unwrap();
    let latest = store
        .list(&ListOptions {
            prefix: "/h/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    store.compact(at).await.unwrap();
    store.compact(at - 5).await.unwrap(); // older than the compacted revision: a no-op

    match store.watch("/h/", at - 2).await {
        Err(StoreError::Compacted { .. }) => {}
        Err(other) => panic!("expected Compacted, got {other}"),
        Ok(mut watch) => match tokio::time::timeout(STEP, watch.next()).await {
            Ok(Some(Err(StoreError::Compacted { .. }))) => {}
            other => panic!("expected Compacted from the stream, got {other:?}"),
        },
    }
    match store
        .list(&ListOptions {
            prefix: "/h/".into(),
            at_revision: Some(at - 1),
            ..Default::default()
        })
        .await
    {
        Err(StoreError::Compacted { requested, .. }) => assert_eq!(requested, at - 1),
        other => panic!("expected Compacted, got {other:?}"),
    }
    // The compacted revision itself is still readable, exactly.
    let after = store
        .list(&ListOptions {
            prefix: "/h/".into(),
            at_revision: Some(at),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(after.items, before.items);
    assert_eq!(
        store
            .list(&ListOptions {
                prefix: "/h/".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .items,
        latest.items
    );
    // A watch from just before the compacted revision replays everything since.
    let mut watch = store.watch("/h/", at - 1).await.unwrap();
    let current = store.current_revision().await.unwrap();
    for expected in at..=current {
        assert_eq!(next_change(&mut watch).await.revision(), expected);
    }
    // Writing continues normally after a compaction.
    let key = "/h/19";
    let rev = store.update(key, v("after"), mods[key]).await.unwrap();
    assert_eq!(rev, current + 1);
    assert_eq!(next_change(&mut watch).await.revision(), rev);
    match store.compact(rev + 100).await {
        Err(StoreError::FutureRevision { .. }) => {}
        other => panic!("expected FutureRevision, got {other:?}"),
    }
}

/// Many tasks race to update one key from the same revision: exactly one wins.
pub async fn concurrent_cas_has_one_winner(store: Arc<dyn Store>) {
    let mut rev = store.create("/cas", v("0")).await.unwrap();
    for round in 0..5 {
        let mut tasks = Vec::new();
        for t in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.update("/cas", v(&format!("{round}-{t}")), rev).await
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(new) => winners.push(new),
                Err(StoreError::Conflict {
                    expected, current, ..
                }) => {
                    assert_eq!(expected, rev);
                    assert!(current > rev);
                }
                Err(other) => panic!("unexpected error {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        assert_eq!(winners[0], rev + 1);
        rev = winners[0];
    }
}

/// Read-modify-write loops from many tasks lose no increment.
pub async fn counters_under_contention(store: Arc<dyn Store>) {
    store.create("/counter", v("0")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for _ in 0..10 {
                loop {
                    let kv = store.get("/counter").await.unwrap().unwrap();
                    let n: u64 = String::from_utf8(kv.value).unwrap().parse().unwrap();
                    match store
                        .update("/counter", v(&(n + 1).to_string()), kv.mod_revision)
                        .await
                    {
                        Ok(rev) => {
                            revs.push(rev);
                            break;
                        }
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(other) => panic!("unexpected error {other}"),
                    }
                }
            }
            revs
        }));
    }
    let mut revs = HashSet::new();
    for task in tasks {
        for rev in task.await.unwrap() {
            assert!(revs.insert(rev), "revision {rev} won twice");
        }
    }
    let kv = store.get("/counter").await.unwrap().unwrap();
    assert_eq!(kv.value, v("160"));
    assert_eq!(revs.len(), 160);
}

/// A watcher that does not read is dropped with `WatcherTooSlow`; writers never wait.
pub async fn slow_watcher_is_dropped(store: Arc<dyn Store>, buffer: usize) {
    let mut slow = store.watch("/s/", 0).await.unwrap();
    let writes = buffer * 8;
    let payload = vec![b'x'; 300];
    tokio::time::timeout(Duration::from_secs(60), async {
        for i in 0..writes {
            store
                .create(&format!("/s/{i:05}"), payload.clone())
                .await
                .unwrap();
        }
    })
    .await
    .expect("writes blocked by a slow watcher");
    let mut received = 0;
    loop {
        match tokio::time::timeout(STEP, slow.next())
            .await
            .expect("slow watcher neither fed nor dropped")
        {
            Some(Ok(_)) => {
                received += 1;
                assert!(received < writes, "slow watcher was never dropped");
            }
            Some(Err(StoreError::WatcherTooSlow)) => break,
            Some(Err(other)) => panic!("expected WatcherTooSlow, got {other}"),
            None => panic!("stream ended without WatcherTooSlow"),
        }
    }
    assert!(
        tokio::time::timeout(STEP, slow.next())
            .await
            .unwrap()
            .is_none(),
        "stream ends after WatcherTooSlow"
    );
    // A fresh watcher works.
    let current = store.current_revision().await.unwrap();
    let mut fresh = store.watch("/s/", current).await.unwrap();
    let rev = store.create("/s/new", v("n")).await.unwrap();
    assert_eq!(next_change(&mut fresh).await.revision(), rev);
}

/// A watch that sees only other prefixes' writes reports how far it has got.
pub async fn watch_reports_progress(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut quiet = store.watch("/quiet/", start).await.unwrap();
    store.create("/busy/1", v("1")).await.unwrap();
    let last = store.create("/busy/2", v("2")).await.unwrap();
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let event = tokio::time::timeout_at(deadline, quiet.next())
            .await
            .unwrap_or_else(|_| panic!("no progress to {last} within {STEP:?}"));
        match event {
            Some(Ok(WatchEvent::Progress { revision })) if revision >= last => break,
            Some(Ok(WatchEvent::Progress { revision })) => assert!(revision >= start),
            other => panic!("expected only progress, got {other:?}"),
        }
    }
    // Progress never runs ahead of an undelivered event.
    let rev = store.create("/quiet/1", v("q")).await.unwrap();
    loop {
        match next(&mut quiet).await {
            WatchEvent::Progress { revision } => {
                assert!(revision < rev, "progress {revision} passed event {rev}")
            }
            event => {
                assert_eq!(event.revision(), rev);
                break;
            }
        }
    }
}
