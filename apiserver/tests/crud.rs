//! CRUD of every served kind through kube-rs, on SQLite and on etcd.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::{Value, json};
use support::{Backend, TestServer};
use waggle_apimachinery::registry::RESOURCES;

fn pod_template(app: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}})
}

/// A minimal valid object of each kind.
fn sample(kind: &str, name: &str) -> Value {
    let body = match kind {
        "Namespace" | "Node" | "ConfigMap" | "ServiceAccount" | "Endpoints"
        | "ControllerRevision" => json!({}),
        "Secret" => json!({"data": {"k": "dg=="}}),
        "Pod" => json!({"spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}),
        "Service" => json!({"spec": {"ports": [{"port": 80}], "selector": {"app": name}}}),
        "Event" => {
            json!({"involvedObject": {"kind": "Pod", "name": "p", "namespace": "crud"}, "reason": "Test", "message": "m", "type": "Normal"})
        }
        "ReplicationController" => {
            json!({"spec": {"replicas": 1, "selector": {"app": name}, "template": pod_template(name)}})
        }
        "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" => {
            json!({"spec": {"selector": {"matchLabels": {"app": name}}, "template": pod_template(name)}})
        }
        "Job" => {
            let mut t = pod_template(name);
            t["spec"]["restartPolicy"] = json!("Never");
            json!({"spec": {"template": t}})
        }
        "EndpointSlice" => {
            json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]})
        }
        "NetworkPolicy" => json!({"spec": {"podSelector": {}}}),
        "Lease" => json!({"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}}),
        "ResourceQuota" => json!({"spec": {"hard": {"pods": "10"}}}),
        "LimitRange" => {
            json!({"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}})
        }
        "PersistentVolume" => {
            json!({"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/srv"}}})
        }
        "PersistentVolumeClaim" => {
            json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
        }
        "CronJob" => {
            let mut t = pod_template(name);
            t["spec"]["restartPolicy"] = json!("OnFailure");
            json!({"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": t}}}})
        }
        "HorizontalPodAutoscaler" => {
            json!({"spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3}})
        }
        "CertificateSigningRequest" => {
            let key = rcgen::KeyPair::generate().unwrap();
            let csr = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap().serialize_request(&key).unwrap();
            let request = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, csr.pem().unwrap());
            json!({"spec": {"request": request, "signerName": "example.com/crud", "usages": ["client auth"]}})
        }
        "PodDisruptionBudget" => json!({"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": name}}}}),
        "Ingress" => {
            json!({"spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}})
        }
        "IngressClass" => json!({"spec": {"controller": "example.com/ingress"}}),
        "Role" | "ClusterRole" => {
            json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
        }
        "RoleBinding" | "ClusterRoleBinding" => json!({
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "crud"}],
        }),
        "StorageClass" => json!({"provisioner": "example.com/disk"}),
        "PriorityClass" => json!({"value": 100}),
        "CustomResourceDefinition" => json!({"spec": {
            "group": "crud.example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
        }}),
        other => panic!("no sample for {other}"),
    };
    let mut obj = body;
    obj["metadata"] = json!({"name": name});
    obj
}

both_backends!(every_kind_round_trips, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let namespaces: Api<DynamicObject> = Api::all_with(
        server.client.clone(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Namespace")),
    );
    let ns: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "crud"}}),
    )
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    for resource in RESOURCES.iter().filter(|r| r.persisted()) {
        let gvk = GroupVersionKind::gvk(resource.group, resource.version, resource.kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, resource.plural);
        let api: Api<DynamicObject> = if resource.namespaced() {
            Api::namespaced_with(server.client.clone(), "crud", &ar)
        } else {
            Api::all_with(server.client.clone(), &ar)
        };
        let name = match resource.kind {
            // A definition's name is its plural and group.
            "CustomResourceDefinition" => "widgets.crud.example.com".to_owned(),
            _ => format!("x-{}", resource.singular),
        };
        let mut body = match resource.group {
            // The new Events API has its own (stricter) shape.
            "events.k8s.io" => json!({
                "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "example.com/test",
                "reportingInstance": "test-0", "action": "Test", "reason": "Test", "type": "Normal",
                "regarding": {"kind": "Pod", "name": "p", "namespace": "crud"},
                "metadata": {"name": name},
            }),
            _ => sample(resource.kind, &name),
        };
        body["apiVersion"] = json!(resource.api_version());
        body["kind"] = json!(resource.kind);
        let obj: DynamicObject = serde_json::from_value(body).unwrap();
        let created = api
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("create {}: {e}", resource.kind));
        let meta = &created.metadata;
        assert!(
            meta.uid.is_some()
                && meta.creation_timestamp.is_some()
                && meta.resource_version.is_some(),
            "{}",
            resource.kind
        );

        let got = api.get(&name).await.unwrap();
        assert_eq!(got.metadata.uid, meta.uid);
        let listed = api.list(&ListParams::default()).await.unwrap();
        assert!(
            listed
                .items
                .iter()
                .any(|o| o.metadata.name.as_deref() == Some(&name)),
            "{} listed",
            resource.kind
        );

        let mut replaced = got.clone();
        replaced
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("replaced".into(), "yes".into());
        let replaced = api
            .replace(&name, &PostParams::default(), &replaced)
            .await
            .unwrap_or_else(|e| panic!("replace {}: {e}", resource.kind));
        assert_ne!(replaced.metadata.resource_version, meta.resource_version);

        let patch = json!({"metadata": {"annotations": {"patched": "yes"}}});
        let patched = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        assert_eq!(patched.metadata.annotations.unwrap()["patched"], "yes");
        assert_eq!(patched.metadata.labels.unwrap()["replaced"], "yes");

        if resource.kind == "Namespace" {
            continue;
        }
        api.delete(&name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {}: {e}", resource.kind));
        // A definition goes once its objects are gone (behind its clean-up finalizer).
        let mut last = None;
        for _ in 0..100 {
            match api.get(&name).await {
                Err(kube::Error::Api(status)) => {
                    assert_eq!(status.code, 404, "{}", resource.kind);
                    last = None;
                    break;
                }
                other => last = Some(other),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        if let Some(other) = last {
            panic!("{} still there after delete: {other:?}", resource.kind);
        }
    }
});

both_backends!(typed_pod_lifecycle, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"generateName": "web-", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        "status": {"phase": "Running"}
    }))
    .unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    let name = created.metadata.name.clone().unwrap();
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("Always")
    );
    let status = created.status.as_ref().unwrap();
    assert_eq!(
        status.phase.as_deref(),
        Some("Pending"),
        "status is reset on create"
    );
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));

    // Optimistic concurrency: a stale resourceVersion conflicts.
    let mut first = created.clone();
    first
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("v".into(), "1".into());
    pods.replace(&name, &PostParams::default(), &first)
        .await
        .unwrap();
    let mut stale = created.clone();
    stale
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("v".into(), "2".into());
    match pods.replace(&name, &PostParams::default(), &stale).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
            assert!(
                s.message.contains("the object has been modified"),
                "{}",
                s.message
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Without a resourceVersion the update is unconditional.
    stale.metadata.resource_version = None;
    pods.replace(&name, &PostParams::default(), &stale)
        .await
        .unwrap();

    // The status subresource changes only status; the main resource ignores status.
    let mut with_status = pods.get(&name).await.unwrap();
    with_status.status.as_mut().unwrap().phase = Some("Running".into());
    with_status
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("ignored".into(), "by-status".into());
    let after = pods
        .replace_status(&name, &PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(after.status.unwrap().phase.as_deref(), Some("Running"));
    assert!(!after.metadata.labels.unwrap().contains_key("ignored"));
    let mut main = pods.get(&name).await.unwrap();
    main.status.as_mut().unwrap().phase = Some("Failed".into());
    let main = pods
        .replace(&name, &PostParams::default(), &main)
        .await
        .unwrap();
    assert_eq!(main.status.unwrap().phase.as_deref(), Some("Running"));

    // Already exists; not found.
    let mut dup = created.clone();
    dup.metadata.resource_version = None;
    match pods.create(&PostParams::default(), &dup).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    match pods.get("missing").await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 404);
            assert_eq!(s.message, "pods \"missing\" not found");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
});

both_backends!(generation_and_scale, |backend: Backend| async move {
    use k8s_openapi::api::apps::v1::Deployment;
    let server = TestServer::start(backend).await;
    let deployments: Api<Deployment> = Api::namespaced(server.client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": pod_template("web")}
    }))
    .unwrap();
    let created = deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let labeled = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labeled.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let status = deployments
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(
        status.metadata.generation,
        Some(1),
        "status changes keep the generation"
    );
    assert_eq!(status.status.unwrap().replicas, Some(2));

    let scale = deployments.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=web")
    );
    let scaled = deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(5));
    let after = deployments.get("web").await.unwrap();
    assert_eq!(after.spec.unwrap().replicas, Some(5));
    assert_eq!(
        after.metadata.generation,
        Some(2),
        "spec changes bump the generation"
    );

    // JSON patch (RFC 6902), over plain HTTP.
    let response = server
        .raw()
        .patch(format!(
            "{}/apis/apps/v1/namespaces/default/deployments/web",
            server.http
        ))
        .header("Content-Type", "application/json-patch+json")
        .body(r#"[{"op": "replace", "path": "/spec/replicas", "value": 1}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(1)
    );
});

both_backends!(dry_run_writes_nothing, |backend: Backend| async move {
    let server = TestServer::start(backend).await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "dry"}, "data": {"a": "b"}})).unwrap();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let created = cms.create(&dry, &cm).await.unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("dry"));
    assert!(cms.get_opt("dry").await.unwrap().is_none());
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let del = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    cms.delete("dry", &del).await.unwrap();
    assert!(cms.get_opt("dry").await.unwrap().is_some());
    let mut changed = cms.get("dry").await.unwrap();
    changed
        .data
        .as_mut()
        .unwrap()
        .insert("a".into(), "changed".into());
    cms.replace("dry", &dry, &changed).await.unwrap();
    assert_eq!(cms.get("dry").await.unwrap().data.unwrap()["a"], "b");
});
