//! The endpoint controllers against Waggle's API server: a Service's selected pods
//! become EndpointSlices and v1 Endpoints, and follow the pods' readiness, labels,
//! ports and deletion. Pods get their addresses and readiness from the test (no
//! kubelet runs here).

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use support::{Bed, eventually};
use waggle_controllers::Controller;

const WITHIN: Duration = Duration::from_secs(30);

async fn add_pod(pods: &Api<Pod>, name: &str, ip: &str, ready: bool, port_name: &str, port: i32) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"name": port_name, "containerPort": port}]}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    set_ready(pods, name, ip, ready).await;
}

async fn set_ready(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let status = json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
}

/// `(address, port, ready)` of every endpoint of the Service's managed slices.
async fn slice_view(slices: &Api<EndpointSlice>) -> Vec<(String, i32, bool)> {
    let mine = "kubernetes.io/service-name=web,endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io";
    let mut out = Vec::new();
    for slice in slices.list(&ListParams::default().labels(mine)).await.unwrap().items {
        let port = slice.ports.as_ref().and_then(|p| p.first()).and_then(|p| p.port).unwrap_or(0);
        for e in slice.endpoints {
            out.push((e.addresses[0].clone(), port, e.conditions.and_then(|c| c.ready).unwrap_or(false)));
        }
    }
    out.sort();
    out
}

/// The Endpoints object as `(ready addresses, not-ready addresses, ports)` per subset.
async fn endpoints_view(endpoints: &Api<Endpoints>) -> Option<Value> {
    let object = endpoints.get_opt("web").await.unwrap()?;
    let subsets: Vec<Value> = object
        .subsets
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            let ips = |a: Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| {
                a.unwrap_or_default().into_iter().map(|a| a.ip).collect::<Vec<_>>()
            };
            let ports: Vec<i32> = s.ports.unwrap_or_default().into_iter().map(|p| p.port).collect();
            json!([ips(s.addresses), ips(s.not_ready_addresses), ports])
        })
        .collect();
    Some(json!(subsets))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_follow_their_pods() {
    let bed = Bed::start(&[Controller::EndpointSlice, Controller::Endpoint], false).await;
    let pods: Api<Pod> = bed.api();
    let services: Api<Service> = bed.api();
    let slices: Api<EndpointSlice> = bed.api();
    let endpoints: Api<Endpoints> = bed.api();

    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }))
    .unwrap();
    services.create(&PostParams::default(), &service).await.unwrap();
    // Nothing selected yet: an empty placeholder slice and an empty Endpoints.
    let placeholder = eventually("the placeholder slice", WITHIN, || async {
        let all = slices.list(&ListParams::default().labels("kubernetes.io/service-name=web")).await.unwrap().items;
        (all.len() == 1).then(|| all.into_iter().next().unwrap())
    })
    .await;
    assert!(placeholder.endpoints.is_empty());
    assert_eq!(placeholder.address_type, "IPv4");
    assert_eq!(placeholder.labels()["tier"], "front");
    assert_eq!(placeholder.owner_references()[0].name, "web");
    eventually("empty endpoints", WITHIN, || async { endpoints_view(&endpoints).await.filter(|v| v == &json!([])) })
        .await;

    // Pods resolve the named port each their own way (one not at all: as upstream, it
    // is listed in a slice without ports, and left out of Endpoints); only ready pods
    // are ready.
    add_pod(&pods, "a", "10.1.0.1", true, "http", 8080).await;
    add_pod(&pods, "b", "10.1.0.2", false, "http", 8080).await;
    add_pod(&pods, "c", "10.1.0.3", true, "http", 9090).await;
    add_pod(&pods, "d", "10.1.0.4", true, "other", 7070).await;
    let expected = vec![
        ("10.1.0.1".to_owned(), 8080, true),
        ("10.1.0.2".to_owned(), 8080, false),
        ("10.1.0.3".to_owned(), 9090, true),
        ("10.1.0.4".to_owned(), 0, true),
    ];
    eventually("the pods' endpoints", WITHIN, || async { (slice_view(&slices).await == expected).then_some(()) }).await;
    let subsets = json!([[["10.1.0.1"], ["10.1.0.2"], [8080]], [["10.1.0.3"], [], [9090]]]);
    eventually("the Endpoints subsets", WITHIN, || async {
        endpoints_view(&endpoints).await.filter(|v| v == &subsets)
    })
    .await;

    // A pod relabelled out of the selector leaves (nothing else changes meanwhile, so
    // only the pod's own event can tell).
    pods.patch("c", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})))
        .await
        .unwrap();
    let expected = vec![
        ("10.1.0.1".to_owned(), 8080, true),
        ("10.1.0.2".to_owned(), 8080, false),
        ("10.1.0.4".to_owned(), 0, true),
    ];
    eventually("the relabelled pod to leave", WITHIN, || async {
        (slice_view(&slices).await == expected).then_some(())
    })
    .await;
    let subsets = json!([[["10.1.0.1"], ["10.1.0.2"], [8080]]]);
    eventually("the relabelled pod to leave Endpoints", WITHIN, || async {
        endpoints_view(&endpoints).await.filter(|v| v == &subsets)
    })
    .await;

    // Readiness and deletion are followed.
    set_ready(&pods, "b", "10.1.0.2", true).await;
    pods.delete("a", &DeleteParams::default()).await.unwrap();
    let expected = vec![("10.1.0.2".to_owned(), 8080, true), ("10.1.0.4".to_owned(), 0, true)];
    eventually("the endpoints to follow", WITHIN, || async { (slice_view(&slices).await == expected).then_some(()) })
        .await;
    let subsets = json!([[["10.1.0.2"], [], [8080]]]);
    eventually("the Endpoints to follow", WITHIN, || async {
        endpoints_view(&endpoints).await.filter(|v| v == &subsets)
    })
    .await;

    // Without a selector, the endpoints are the user's: our slices go, Endpoints stay.
    services.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"selector": null}}))).await.unwrap();
    eventually("the managed slices to go", WITHIN, || async {
        let all = slices.list(&ListParams::default().labels("kubernetes.io/service-name=web")).await.unwrap().items;
        all.is_empty().then_some(())
    })
    .await;
    // A deleted Service takes its Endpoints along.
    services.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the Endpoints to go", WITHIN, || async {
        endpoints.get_opt("web").await.unwrap().is_none().then_some(())
    })
    .await;
    bed.stop().await;
}
