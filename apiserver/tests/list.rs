//! Lists: label and field selectors, pagination, continue tokens, resourceVersion.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams, VersionMatch};
use serde_json::json;
use support::{Backend, TestServer};

async fn seed_pods(server: &TestServer) -> Api<Pod> {
    let api: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    for (name, app, tier, node) in [("a", "web", "front", "n1"), ("b", "web", "back", ""), ("c", "db", "back", "n2"), ("d", "cache", "", "")] {
        let mut labels = json!({"app": app});
        if !tier.is_empty() {
            labels["tier"] = json!(tier);
        }
        let mut spec = json!({"containers": [{"name": "c", "image": "i:1"}]});
        if !node.is_empty() {
            spec["nodeName"] = json!(node);
        }
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "spec": spec})).unwrap();
        api.create(&PostParams::default(), &pod).await.unwrap();
    }
    api
}

async fn names(api: &Api<Pod>, params: &ListParams) -> Vec<String> {
    api.list(params).await.unwrap().items.into_iter().filter_map(|p| p.metadata.name).collect()
}

both_backends!(label_and_field_selectors, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let api = seed_pods(&server).await;
    let lp = |s: &str| ListParams::default().labels(s);
    assert_eq!(names(&api, &lp("app=web")).await, ["a", "b"]);
    assert_eq!(names(&api, &lp("app==web,tier!=front")).await, ["b"]);
    assert_eq!(names(&api, &lp("app in (db, cache)")).await, ["c", "d"]);
    assert_eq!(names(&api, &lp("app notin (web)")).await, ["c", "d"]);
    assert_eq!(names(&api, &lp("tier")).await, ["a", "b", "c"]);
    assert_eq!(names(&api, &lp("!tier")).await, ["d"]);
    let fp = |s: &str| ListParams::default().fields(s);
    assert_eq!(names(&api, &fp("spec.nodeName=")).await, ["b", "d"]);
    assert_eq!(names(&api, &fp("spec.nodeName!=,metadata.name!=a")).await, ["c"]);
    assert_eq!(names(&api, &fp("metadata.namespace=default,status.phase=Pending")).await, ["a", "b", "c", "d"]);
    match api.list(&fp("spec.bogus=x")).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 400);
            assert_eq!(s.message, "field label not supported: spec.bogus");
        }
        other => panic!("expected 400, got {other:?}"),
    }
    // Across namespaces.
    let all: Api<Pod> = Api::all(server.client.clone());
    assert_eq!(all.list(&ListParams::default()).await.unwrap().items.len(), 4);
});

both_backends!(pagination, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let api: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    for i in 0..25 {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cm-{i:02}"), "labels": {"even": (i % 2 == 0).to_string()}}})).unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(10);
    let mut pages = 0;
    let mut first_rv = None;
    loop {
        let page = api.list(&params).await.unwrap();
        pages += 1;
        first_rv.get_or_insert(page.metadata.resource_version.clone());
        assert_eq!(page.metadata.resource_version, *first_rv.as_ref().unwrap(), "pages share the list revision");
        seen.extend(page.items.into_iter().filter_map(|c| c.metadata.name));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => {
                if pages == 1 {
                    assert_eq!(page.metadata.remaining_item_count, Some(15));
                    // Writes between pages do not show up in the paged list.
                    let late: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "cm-99"}})).unwrap();
                    api.create(&PostParams::default(), &late).await.unwrap();
                }
                params = params.continue_token(&token);
            }
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("cm-{i:02}")).collect();
    assert_eq!(seen, expected);

    // Selectors fill pages from further down the collection.
    let evens = api.list(&ListParams::default().labels("even=true").limit(5)).await.unwrap();
    assert_eq!(evens.items.len(), 5);
    assert!(evens.metadata.continue_.is_some_and(|c| !c.is_empty()));

    // An exact resourceVersion reads the past.
    let rv = first_rv.unwrap().unwrap();
    let past = api.list(&ListParams::default().at(&rv).matching(VersionMatch::Exact)).await.unwrap();
    assert_eq!(past.items.len(), 25);

    // A continue token older than the compacted revision is 410 Gone.
    let page = api.list(&ListParams::default().limit(10)).await.unwrap();
    let token = page.metadata.continue_.unwrap();
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "zz"}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let current = server.store.current_revision().await.unwrap();
    server.store.compact(current).await.unwrap();
    match api.list(&ListParams::default().limit(10).continue_token(&token)).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 410);
            assert!(s.message.starts_with("The provided continue parameter is too old"), "{}", s.message);
        }
        other => panic!("expected 410, got {other:?}"),
    }
});
