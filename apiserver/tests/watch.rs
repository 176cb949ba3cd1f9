//! Watch through kube-rs: resume from a resourceVersion, selector transitions,
//! bookmarks, timeouts and 410 after compaction.

mod support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use support::{Backend, TestServer};

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

fn describe(event: &WatchEvent<ConfigMap>) -> String {
    match event {
        WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.as_deref().unwrap_or_default()),
        WatchEvent::Modified(o) => format!(
            "MODIFIED {}",
            o.metadata.name.as_deref().unwrap_or_default()
        ),
        WatchEvent::Deleted(o) => {
            format!("DELETED {}", o.metadata.name.as_deref().unwrap_or_default())
        }
        WatchEvent::Bookmark(_) => "BOOKMARK".into(),
        WatchEvent::Error(e) => format!("ERROR {}", e.code),
    }
}

async fn next_events(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
    n: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .expect("watch event within 10s")
            .expect("watch stream ok")
            .expect("watch stream not ended");
        out.push(describe(&event));
    }
    out
}

both_backends!(
    resumes_from_resource_version,
    |backend: Backend| async move {
        let server = TestServer::start(backend).await;
        let api: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
        let a = api
            .create(&PostParams::default(), &cm("a", json!({})))
            .await
            .unwrap();
        let rv = a.metadata.resource_version.unwrap();
        api.create(&PostParams::default(), &cm("b", json!({})))
            .await
            .unwrap();
        api.patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "w"}})),
        )
        .await
        .unwrap();
        api.delete("a", &DeleteParams::default()).await.unwrap();
        let mut stream = api
            .watch(&WatchParams::default(), &rv)
            .await
            .unwrap()
            .boxed();
        assert_eq!(
            next_events(&mut stream, 3).await,
            ["ADDED b", "MODIFIED b", "DELETED a"]
        );
        // Live events follow the replay.
        api.create(&PostParams::default(), &cm("c", json!({})))
            .await
            .unwrap();
        assert_eq!(next_events(&mut stream, 1).await, ["ADDED c"]);
    }
);

both_backends!(selector_transitions, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let api: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    let start = api
        .create(&PostParams::default(), &cm("other", json!({})))
        .await
        .unwrap();
    let rv = start.metadata.resource_version.unwrap();
    let params = WatchParams::default().labels("app=web");
    let mut stream = api.watch(&params, &rv).await.unwrap().boxed();
    api.create(&PostParams::default(), &cm("x", json!({"app": "db"})))
        .await
        .unwrap();
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await
    .unwrap();
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}})),
    )
    .await
    .unwrap();
    assert_eq!(
        next_events(&mut stream, 3).await,
        ["ADDED x", "MODIFIED x", "DELETED x"]
    );
});

both_backends!(bookmarks_and_timeouts, |backend: Backend| async move {
    let server = TestServer::start_with(backend, |c| {
        c.settings.bookmark_interval = Duration::from_millis(200)
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    let a = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let rv = a.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    assert_eq!(next_events(&mut stream, 1).await, ["BOOKMARK"]);

    let started = std::time::Instant::now();
    let mut short = api
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .unwrap()
        .boxed();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while short.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "a watch with timeoutSeconds=1 ends");
    assert!(started.elapsed() >= Duration::from_millis(900));
});

both_backends!(gone_after_compaction, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let api: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    let a = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let old = a.metadata.resource_version.unwrap();
    for i in 0..5 {
        api.patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    let current = server.store.current_revision().await.unwrap();
    server.store.compact(current).await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    let event = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match event {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected 410, got {}", describe(&other)),
    }
});

both_backends!(initial_events_then_changes, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let api: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    api.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    // resourceVersion=0: the current state as ADDED events, then changes.
    let mut stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let first = next_events(&mut stream, 1).await;
    assert!(
        first[0] == "ADDED a" || first[0] == "ADDED kube-root-ca.crt",
        "{first:?}"
    );
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    let mut seen = first;
    while !seen.contains(&"ADDED b".to_owned()) {
        seen.extend(next_events(&mut stream, 1).await);
    }
    assert!(seen.contains(&"ADDED a".to_owned()));
});

both_backends!(kube_runtime_watcher_works, |backend: Backend| async move {
    use kube::runtime::{WatchStreamExt, watcher};
    let server = TestServer::start(backend).await;
    let api: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    api.create(&PostParams::default(), &cm("a", json!({"app": "w"})))
        .await
        .unwrap();
    let mut objects = watcher(api.clone(), watcher::Config::default().labels("app=w"))
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), objects.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("a"));
    api.create(&PostParams::default(), &cm("b", json!({"app": "w"})))
        .await
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(10), objects.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.metadata.name.as_deref(), Some("b"));
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watchers_are_dropped_without_blocking_writers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.settings.watch_send_timeout = Duration::from_millis(300)
    })
    .await;
    let addr = server.running.http_addr.unwrap();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = "GET /api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    socket.write_all(request.as_bytes()).await.unwrap();
    // The watcher never reads while 600 large objects are written.
    let api: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    let started = std::time::Instant::now();
    let big = "x".repeat(16 * 1024);
    for i in 0..600 {
        let obj: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("big-{i}")}, "data": {"k": big}}),
        )
        .unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "writers were not held up"
    );
    // The server gave up on the watcher: its stream ends (EOF) once drained.
    let mut sink = Vec::new();
    let drained =
        tokio::time::timeout(Duration::from_secs(20), socket.read_to_end(&mut sink)).await;
    assert!(
        drained.is_ok(),
        "the slow watcher's stream was closed by the server"
    );
}

both_backends!(
    gone_after_compaction_while_a_watch_shares_the_history,
    |backend: Backend| async move {
        let server = TestServer::start(backend).await;
        let api: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
        let a = api
            .create(&PostParams::default(), &cm("a", json!({})))
            .await
            .unwrap();
        let old = a.metadata.resource_version.unwrap();
        // A live watch keeps the resource's shared hub (and its recent changes) around.
        let mut live = api
            .watch(&WatchParams::default(), &old)
            .await
            .unwrap()
            .boxed();
        for i in 0..5 {
            api.patch(
                "a",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"k": i.to_string()}})),
            )
            .await
            .unwrap();
        }
        assert_eq!(next_events(&mut live, 5).await, ["MODIFIED a"; 5]);
        let current = server.store.current_revision().await.unwrap();
        server.store.compact(current).await.unwrap();
        let mut stream = api
            .watch(&WatchParams::default(), &old)
            .await
            .unwrap()
            .boxed();
        assert_eq!(next_events(&mut stream, 1).await, ["ERROR 410"]);
    }
);

both_backends!(
    many_watchers_share_one_ordered_stream,
    |backend: Backend| async move {
        let server = TestServer::start(backend).await;
        let api: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
        let other: Api<ConfigMap> = Api::namespaced(server.client.clone(), "kube-system");
        let start = api
            .create(&PostParams::default(), &cm("start", json!({})))
            .await
            .unwrap();
        let rv = start.metadata.resource_version.unwrap();
        let mut plain = Vec::new();
        for _ in 0..20 {
            plain.push(
                api.watch(&WatchParams::default(), &rv)
                    .await
                    .unwrap()
                    .boxed(),
            );
        }
        let mut selected = api
            .watch(&WatchParams::default().labels("app=web"), &rv)
            .await
            .unwrap()
            .boxed();
        let mut single = api
            .watch(&WatchParams::default().fields("metadata.name=b"), &rv)
            .await
            .unwrap()
            .boxed();
        api.create(&PostParams::default(), &cm("a", json!({"app": "web"})))
            .await
            .unwrap();
        other
            .create(
                &PostParams::default(),
                &cm("elsewhere", json!({"app": "web"})),
            )
            .await
            .unwrap();
        api.create(&PostParams::default(), &cm("b", json!({})))
            .await
            .unwrap();
        api.patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}})),
        )
        .await
        .unwrap();
        api.delete("b", &DeleteParams::default()).await.unwrap();
        // A late joiner from the same revision replays what the others saw live.
        plain.push(
            api.watch(&WatchParams::default(), &rv)
                .await
                .unwrap()
                .boxed(),
        );
        for stream in &mut plain {
            assert_eq!(
                next_events(stream, 4).await,
                ["ADDED a", "ADDED b", "MODIFIED a", "DELETED b"]
            );
        }
        assert_eq!(
            next_events(&mut selected, 2).await,
            ["ADDED a", "DELETED a"]
        );
        assert_eq!(next_events(&mut single, 2).await, ["ADDED b", "DELETED b"]);
        // Nothing more (no duplicate) until the next change.
        api.create(&PostParams::default(), &cm("c", json!({})))
            .await
            .unwrap();
        for stream in &mut plain {
            assert_eq!(next_events(stream, 1).await, ["ADDED c"]);
        }
    }
);
