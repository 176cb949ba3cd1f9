//! Validation and request errors: Status codes, reasons, causes and messages.

mod support;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use support::{Backend, TestServer};

async fn post(server: &TestServer, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = server
        .raw()
        .post(format!("{}{path}", server.http))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

fn causes(status: &Value) -> Vec<String> {
    status["details"]["causes"].as_array().map(|c| c.iter().map(|c| c["field"].as_str().unwrap_or_default().to_owned()).collect()).unwrap_or_default()
}

both_backends!(invalid_objects, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c"}]}})).unwrap();
    match pods.create(&PostParams::default(), &pod).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
            assert_eq!(s.message, "Pod \"x\" is invalid: spec.containers[0].image: Required value");
        }
        other => panic!("expected 422, got {other:?}"),
    }
    let ns = "/api/v1/namespaces/default";
    let (code, status) = post(&server, &format!("{ns}/pods"), "application/json", json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name", "labels": {"-x": "y"}},
        "spec": {"containers": [
            {"name": "a", "image": "i", "ports": [{"containerPort": 70000, "protocol": "XTP"}]},
            {"name": "a", "image": "i", "resources": {"limits": {"cpu": "lots"}}}
        ]}
    }).to_string()).await;
    assert_eq!(code, 422);
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(causes(&status), [
        "metadata.name",
        "metadata.labels",
        "spec.containers[0].ports[0].containerPort",
        "spec.containers[0].ports[0].protocol",
        "spec.containers[1].name",
        "spec.containers[1].resources.limits[cpu]",
    ]);
    // No containers at all.
    let (code, status) = post(&server, &format!("{ns}/pods"), "application/json", r#"{"metadata":{"name":"e"},"spec":{"containers":[]}}"#).await;
    assert_eq!((code, causes(&status)), (422, vec!["spec.containers".to_owned()]));
    // Services need ports; deployments need a selector matching the template.
    let (code, status) = post(&server, &format!("{ns}/services"), "application/json", r#"{"metadata":{"name":"s"},"spec":{"type":"Weird"}}"#).await;
    assert_eq!(code, 422);
    assert_eq!(causes(&status), ["spec.type", "spec.ports"]);
    let (code, status) = post(&server, "/apis/apps/v1/namespaces/default/deployments", "application/json", json!({
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    }).to_string()).await;
    assert_eq!(code, 422);
    assert_eq!(causes(&status), ["spec.template.metadata.labels"]);
    // Nothing was written by the failures.
    assert!(pods.get_opt("x").await.unwrap().is_none());
});

both_backends!(malformed_requests, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, status) = post(&server, cms, "application/json", "{not json").await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    let (code, status) = post(&server, cms, "application/json", r#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"a"}}"#).await;
    assert_eq!(code, 400, "{status}");
    let (code, _) = post(&server, cms, "application/json", r#"{"kind":"Secret","metadata":{"name":"a"}}"#).await;
    assert_eq!(code, 400);
    let (code, status) = post(&server, cms, "application/json", r#"{"metadata":{"name":"a","namespace":"other"}}"#).await;
    assert_eq!(code, 400);
    assert_eq!(status["message"], "the namespace of the provided object does not match the namespace sent on the request");
    let (code, _) = post(&server, cms, "application/json", r#"{"data":{"a":1}}"#).await;
    assert_eq!(code, 400, "type errors are bad requests");
    let big = format!(r#"{{"metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#, "x".repeat(4 * 1024 * 1024));
    let (code, status) = post(&server, cms, "application/json", big).await;
    assert_eq!((code, status["reason"].as_str()), (413, Some("RequestEntityTooLarge")));
    // YAML bodies.
    let (code, created) = post(&server, cms, "application/yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n").await;
    assert_eq!((code, created["data"]["k"].as_str()), (201, Some("v")));
    // Name in the body must match the URL on update.
    let response = server.raw().put(format!("{}{cms}/y", server.http)).header("Content-Type", "application/json")
        .body(r#"{"metadata":{"name":"z"}}"#).send().await.unwrap();
    assert_eq!(response.status(), 400);
    // Missing namespace: 404 for the namespace.
    let (code, status) = post(&server, "/api/v1/namespaces/nope/configmaps", "application/json", r#"{"metadata":{"name":"a"}}"#).await;
    assert_eq!(code, 404);
    assert_eq!(status["message"], "namespaces \"nope\" not found");
});

both_backends!(field_validation_modes, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let body = r#"{"metadata":{"name":"f"},"data":{"a":"b"},"bogus":1}"#;
    let cms = format!("{}/api/v1/namespaces/default/configmaps", server.http);
    let strict = server.raw().post(format!("{cms}?fieldValidation=Strict")).header("Content-Type", "application/json").body(body).send().await.unwrap();
    assert_eq!(strict.status(), 400);
    let status: Value = strict.json().await.unwrap();
    assert_eq!(status["message"], "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"bogus\"");
    let warn = server.raw().post(&cms).header("Content-Type", "application/json").body(body).send().await.unwrap();
    assert_eq!(warn.status(), 201);
    let warning = warn.headers().get("warning").unwrap().to_str().unwrap().to_owned();
    assert_eq!(warning, r#"299 - "unknown field \"bogus\"""#);
    let stored: Value = warn.json().await.unwrap();
    assert_eq!(stored["bogus"], 1, "unknown fields are preserved");
});
