//! ClusterIP and NodePort allocation through the API, and its survival of restarts.

mod support;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{Backend, TestServer};

fn svc(name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

fn message(result: kube::Result<Service>) -> String {
    match result {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{}", s.message);
            s.message
        }
        other => panic!("expected 422, got {other:?}"),
    }
}

both_backends!(cluster_ip_and_node_port_allocation, |backend: Backend| async move {
    let server = TestServer::start_with(backend, |c| {
        c.service_cidrs = vec![
            waggle_apiserver::alloc::Cidr::parse("10.96.0.0/24").unwrap(),
            waggle_apiserver::alloc::Cidr::parse("fd00:96::/120").unwrap(),
        ];
    })
    .await;
    let api: Api<Service> = Api::namespaced(server.client.clone(), "default");
    let kubernetes = api.get("kubernetes").await.unwrap();
    assert_eq!(kubernetes.spec.unwrap().cluster_ip.as_deref(), Some("10.96.0.1"));

    let a = api.create(&PostParams::default(), &svc("a", json!({"type": "NodePort", "ports": [{"port": 80}]}))).await.unwrap();
    let spec = a.spec.unwrap();
    let ip = spec.cluster_ip.clone().unwrap();
    assert!(ip.starts_with("10.96.0."), "{ip}");
    assert_eq!(spec.ip_families.unwrap(), ["IPv4"]);
    let node_port = spec.ports.unwrap()[0].node_port.unwrap();
    assert!((30000..=32767).contains(&node_port));

    let taken = message(api.create(&PostParams::default(), &svc("b", json!({"clusterIP": ip, "ports": [{"port": 80}]}))).await);
    assert!(taken.contains("provided IP is already allocated"), "{taken}");
    let port_taken = message(api.create(&PostParams::default(), &svc("c", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": node_port}]}))).await);
    assert!(port_taken.contains("provided port is already allocated"), "{port_taken}");
    let outside = message(api.create(&PostParams::default(), &svc("d", json!({"clusterIP": "10.1.2.3", "ports": [{"port": 80}]}))).await);
    assert!(outside.contains("not in the valid range"), "{outside}");

    // Dual stack, headless, ExternalName.
    let dual = api.create(&PostParams::default(), &svc("dual", json!({"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}))).await.unwrap();
    let dual_spec = dual.spec.unwrap();
    assert_eq!(dual_spec.ip_families.unwrap(), ["IPv4", "IPv6"]);
    assert!(dual_spec.cluster_ips.unwrap()[1].starts_with("fd00:96::"));
    let headless = api.create(&PostParams::default(), &svc("h", json!({"clusterIP": "None", "selector": {"a": "b"}}))).await.unwrap();
    assert_eq!(headless.spec.unwrap().cluster_ips.unwrap(), ["None"]);
    let ext = api.create(&PostParams::default(), &svc("e", json!({"type": "ExternalName", "externalName": "example.com"}))).await.unwrap();
    assert!(ext.spec.unwrap().cluster_ip.is_none());

    // Changing to ClusterIP drops the node port; deleting releases the IP.
    let changed = api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"spec": {"type": "ClusterIP"}}))).await.unwrap();
    assert!(changed.spec.unwrap().ports.unwrap()[0].node_port.is_none());
    api.create(&PostParams::default(), &svc("c", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": node_port}]}))).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    api.create(&PostParams::default(), &svc("b", json!({"clusterIP": ip, "ports": [{"port": 80}]}))).await.unwrap();

    // A dry run allocates nothing. The address sits in the static band, which random
    // picks above never reach while the rest of the range is free.
    let dry = PostParams { dry_run: true, ..Default::default() };
    let probe = api.create(&dry, &svc("probe", json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}))).await.unwrap();
    assert_eq!(probe.spec.unwrap().cluster_ip.as_deref(), Some("10.96.0.10"));
    api.create(&PostParams::default(), &svc("probe", json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}))).await.unwrap();
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocations_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("sqlite://{}", dir.path().join("state.db").display());
    let ip = {
        let store = waggle_store::open(&spec).await.unwrap();
        let mut config = waggle_apiserver::Config::new(dir.path().to_owned(), store);
        config.bind = "127.0.0.1:0".parse().unwrap();
        let running = waggle_apiserver::start(config).await.unwrap();
        let client = client_for(&running).await;
        let api: Api<Service> = Api::namespaced(client, "default");
        let s = api.create(&PostParams::default(), &svc("keep", json!({"ports": [{"port": 80}]}))).await.unwrap();
        running.shutdown().await;
        s.spec.unwrap().cluster_ip.unwrap()
    };
    // The store file is released when the old server's last task drops the store
    // (connection tasks may outlive the shutdown briefly): retry until it is free.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let store = loop {
        match waggle_store::open(&spec).await {
            Ok(store) => break store,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("reopening the store after the shutdown: {e}"),
        }
    };
    let mut config = waggle_apiserver::Config::new(dir.path().to_owned(), store);
    config.bind = "127.0.0.1:0".parse().unwrap();
    let running = waggle_apiserver::start(config).await.unwrap();
    let api: Api<Service> = Api::namespaced(client_for(&running).await, "default");
    let again = message(api.create(&PostParams::default(), &svc("copy", json!({"clusterIP": ip, "ports": [{"port": 80}]}))).await);
    assert!(again.contains("provided IP is already allocated"), "{again}");
    running.shutdown().await;
}

async fn client_for(running: &waggle_apiserver::Running) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&running.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    kube::Client::try_from(config).unwrap()
}
