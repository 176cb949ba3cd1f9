//! Non-resource endpoints and content negotiation: version, health, metrics,
//! discovery, Tables, streaming-list watches.

mod support;

use serde_json::Value;
use support::{Backend, TestServer};

async fn get(server: &TestServer, path: &str, accept: Option<&str>) -> (u16, String) {
    let mut request = server.raw().get(format!("{}{path}", server.http));
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_health_metrics_discovery() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (code, body) = get(&server, "/version", None).await;
    let version: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((code, version["major"].as_str(), version["minor"].as_str()), (200, Some("1"), Some("32")));
    assert!(version["gitVersion"].as_str().unwrap().starts_with("v1.32."));
    for path in ["/healthz", "/livez", "/readyz", "/readyz/etcd", "/livez/ping"] {
        assert_eq!(get(&server, path, None).await, (200, "ok".to_owned()));
    }
    assert_eq!(
        get(&server, "/readyz?verbose", None).await,
        (200, "[+]ping ok\n[+]log ok\n[+]etcd ok\nreadyz check passed\n".to_owned())
    );
    assert_eq!(
        get(&server, "/livez?verbose&exclude=etcd", None).await,
        (200, "[+]ping ok\n[+]log ok\n[+]etcd excluded: ok\nlivez check passed\n".to_owned())
    );
    assert_eq!(get(&server, "/readyz/nope", None).await.0, 404);
    let (_, core) = get(&server, "/api/v1", None).await;
    let core: Value = serde_json::from_str(&core).unwrap();
    assert!(core["resources"].as_array().unwrap().iter().any(|r| r["name"] == "pods/status"));
    let (code, apps) = get(&server, "/apis/apps/v1", None).await;
    assert_eq!(code, 200);
    assert!(apps.contains("\"deployments/scale\""));
    let (code, status) = get(&server, "/apis/nope/v1", None).await;
    assert_eq!(code, 404, "{status}");
    let (_, metrics) = get(&server, "/metrics", None).await;
    assert!(metrics.contains("apiserver_request_total{verb=\"GET\",resource=\"\""), "{metrics}");
    assert!(metrics.contains("apiserver_request_duration_seconds_bucket"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_for_kubectl() {
    let server = TestServer::start(Backend::Sqlite).await;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let (code, body) = get(&server, "/api/v1/namespaces", Some(accept)).await;
    assert_eq!(code, 200);
    let table: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["rows"].as_array().unwrap().len(), 4);
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let (_, plain) = get(&server, "/api/v1/namespaces", Some("application/json")).await;
    assert_eq!(serde_json::from_str::<Value>(&plain).unwrap()["kind"], "NamespaceList");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_initial_events_ends_with_a_marked_bookmark() {
    let server = TestServer::start(Backend::Sqlite).await;
    let url = format!(
        "{}/api/v1/namespaces?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
        server.http
    );
    let body = server.raw().get(url).send().await.unwrap().text().await.unwrap();
    let events: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "ADDED", "ADDED", "ADDED", "BOOKMARK"]);
    assert_eq!(events[4]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
}
