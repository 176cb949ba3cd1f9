//! Server-side apply scenarios as kubectl drives them.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::fieldset::{FieldSet, display, key_element};
use super::{ApplyError, Kind, apply, default_manager, record_update};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "nginx", "image": image}]}}},
    })
}

fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"].as_array().unwrap().iter().find(|e| e["manager"] == manager).unwrap()
}

#[test]
fn apply_creates_with_upstream_fields_v1() {
    let out = apply(Kind::BuiltIn, None, &deployment(1, "nginx:1"), "kubectl", false, t("2024-05-01T12:00:00Z")).unwrap();
    let e = entry(&out, "kubectl");
    assert_eq!(e["operation"], "Apply");
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["time"], "2024-05-01T12:00:00Z");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(
        e["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:selector": {},
                "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}}}}},
        })
    );
    assert_eq!(out["spec"]["replicas"], 1);
}

#[test]
fn apply_conflicts_with_an_updater_and_force_takes_ownership() {
    let created = record_update(Kind::BuiltIn, None, &deployment(1, "nginx:1"), "kubectl-create", "", t("2024-05-01T12:00:00Z"));
    assert_eq!(entry(&created, "kubectl-create")["operation"], "Update");
    let err = apply(Kind::BuiltIn, Some(&created), &deployment(3, "nginx:1"), "kubectl", false, t("2024-05-01T12:01:00Z")).unwrap_err();
    assert_eq!(err.to_string(), "Apply failed with 1 conflict: conflict with \"kubectl-create\" using apps/v1: .spec.replicas");
    assert_eq!(err.code(), 409);
    let status = err.status();
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(status["details"]["causes"][0]["field"], ".spec.replicas");
    assert_eq!(status["details"]["causes"][0]["type"], "FieldManagerConflict");

    // Same values do not conflict: shared ownership.
    let shared = apply(Kind::BuiltIn, Some(&created), &deployment(1, "nginx:1"), "kubectl", false, t("2024-05-01T12:01:00Z")).unwrap();
    assert!(FieldSet::from_fields_v1(&entry(&shared, "kubectl-create")["fieldsV1"]).has(&["f:spec".into(), "f:replicas".into()]));

    let forced = apply(Kind::BuiltIn, Some(&created), &deployment(3, "nginx:1"), "kubectl", true, t("2024-05-01T12:01:00Z")).unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    let create_set = FieldSet::from_fields_v1(&entry(&forced, "kubectl-create")["fieldsV1"]);
    assert!(!create_set.has(&["f:spec".into(), "f:replicas".into()]));
    assert!(create_set.has(&["f:spec".into(), "f:template".into(), "f:metadata".into(), "f:labels".into(), "f:app".into()]));
}

#[test]
fn multiple_conflicts_are_grouped_by_manager() {
    let created = record_update(Kind::BuiltIn, None, &deployment(1, "nginx:1"), "kubectl-create", "", t("2024-05-01T12:00:00Z"));
    let err = apply(Kind::BuiltIn, Some(&created), &deployment(2, "nginx:2"), "kubectl", false, t("2024-05-01T12:00:00Z")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-create\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
    );
}

#[test]
fn appliers_conflict_without_api_version() {
    let first = apply(Kind::BuiltIn, None, &deployment(1, "nginx:1"), "alice", false, t("2024-05-01T12:00:00Z")).unwrap();
    let err = apply(Kind::BuiltIn, Some(&first), &deployment(5, "nginx:1"), "bob", false, t("2024-05-01T12:00:00Z")).unwrap_err();
    assert_eq!(err.to_string(), "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas");
}

#[test]
fn reapply_removes_fields_no_longer_applied() {
    let mut two = deployment(1, "nginx:1");
    two["spec"]["template"]["spec"]["containers"] = json!([{"name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 8080, "protocol": "TCP"}]}, {"name": "side", "image": "busybox"}]);
    let live = apply(Kind::BuiltIn, None, &two, "kubectl", false, t("2024-05-01T12:00:00Z")).unwrap();
    let mut one = deployment(1, "nginx:1");
    one["spec"]["template"]["spec"]["containers"] = json!([{"name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]);
    one["metadata"]["labels"] = json!({});
    let out = apply(Kind::BuiltIn, Some(&live), &one, "kubectl", false, t("2024-05-01T12:05:00Z")).unwrap();
    assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]));
    assert_eq!(out["metadata"]["labels"], json!({}));
    let set = FieldSet::from_fields_v1(&entry(&out, "kubectl")["fieldsV1"]);
    assert!(set.has(&["f:spec".into(), "f:template".into(), "f:spec".into(), "f:containers".into(), "k:{\"name\":\"nginx\"}".into(), "f:ports".into(), "k:{\"containerPort\":80,\"protocol\":\"TCP\"}".into()]));
}

#[test]
fn fields_owned_by_others_survive_removal() {
    let live = apply(Kind::BuiltIn, None, &deployment(1, "nginx:1"), "kubectl", false, t("2024-05-01T12:00:00Z")).unwrap();
    let mut labelled = live.clone();
    labelled["metadata"]["labels"]["team"] = "a".into();
    let labelled = record_update(Kind::BuiltIn, Some(&live), &labelled, "kubectl-label", "", t("2024-05-01T12:01:00Z"));
    let mut without = deployment(1, "nginx:1");
    without["metadata"]["labels"] = json!({"team": "a"});
    // kubectl no longer applies `app`, nobody else owns it → removed; `team` is applied now (same value, shared).
    let out = apply(Kind::BuiltIn, Some(&labelled), &without, "kubectl", false, t("2024-05-01T12:02:00Z")).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"team": "a"}));
}

#[test]
fn update_takes_ownership_from_appliers() {
    let live = apply(Kind::BuiltIn, None, &deployment(1, "nginx:1"), "kubectl", false, t("2024-05-01T12:00:00Z")).unwrap();
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = 4.into();
    let scaled = record_update(Kind::BuiltIn, Some(&live), &scaled, "kubectl-scale", "", t("2024-05-01T12:01:00Z"));
    let scale_entry = entry(&scaled, "kubectl-scale");
    assert_eq!(scale_entry["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    let apply_set = FieldSet::from_fields_v1(&entry(&scaled, "kubectl")["fieldsV1"]);
    assert!(!apply_set.has(&["f:spec".into(), "f:replicas".into()]));
    // Apply entries sort before Update entries.
    assert_eq!(scaled["metadata"]["managedFields"][0]["operation"], "Apply");
    // Re-applying replicas=1 now conflicts with the scaler.
    let err = apply(Kind::BuiltIn, Some(&scaled), &deployment(1, "nginx:1"), "kubectl", false, t("2024-05-01T12:02:00Z")).unwrap_err();
    assert!(err.to_string().contains("conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"));
}

#[test]
fn status_is_tracked_only_through_the_subresource() {
    let mut d = deployment(1, "nginx:1");
    d["status"] = json!({"replicas": 1});
    let created = record_update(Kind::BuiltIn, None, &d, "kube-controller-manager", "", t("2024-05-01T12:00:00Z"));
    assert!(entry(&created, "kube-controller-manager")["fieldsV1"].get("f:status").is_none());
    let mut s = created.clone();
    s["status"]["readyReplicas"] = 1.into();
    let updated = record_update(Kind::BuiltIn, Some(&created), &s, "kube-controller-manager", "status", t("2024-05-01T12:00:01Z"));
    let e = updated["metadata"]["managedFields"].as_array().unwrap().iter().find(|e| e["subresource"] == "status").unwrap();
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:readyReplicas": {}}}));
}

#[test]
fn invalid_applies_are_rejected() {
    let mut bad = deployment(1, "nginx:1");
    bad["spec"]["foo"] = 1.into();
    let err = apply(Kind::BuiltIn, None, &bad, "kubectl", false, t("2024-05-01T12:00:00Z")).unwrap_err();
    assert_eq!(
        err,
        ApplyError::Invalid("failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.foo: field not declared in schema".into())
    );
    assert_eq!(err.code(), 400);
    assert!(matches!(apply(Kind::BuiltIn, None, &json!({"kind": "Pod"}), "m", false, t("2024-05-01T12:00:00Z")), Err(ApplyError::Invalid(_))));
}

#[test]
fn defaulted_port_protocol_keeps_items_matched() {
    let mut applied = deployment(1, "nginx:1");
    applied["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80}]);
    let mut live = apply(Kind::BuiltIn, None, &applied, "kubectl", false, t("2024-05-01T12:00:00Z")).unwrap();
    // the server defaults the protocol after the apply
    live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP".into();
    let again = apply(Kind::BuiltIn, Some(&live), &applied, "kubectl", false, t("2024-05-01T12:01:00Z")).unwrap();
    assert_eq!(again["spec"]["template"]["spec"]["containers"][0]["ports"], json!([{"containerPort": 80, "protocol": "TCP"}]));
    let set = FieldSet::from_fields_v1(&entry(&again, "kubectl")["fieldsV1"]);
    let port = ["f:spec", "f:template", "f:spec", "f:containers", "k:{\"name\":\"nginx\"}", "f:ports", "k:{\"containerPort\":80,\"protocol\":\"TCP\"}"];
    assert!(set.has(&port.map(String::from)));
}

#[test]
fn helpers() {
    assert_eq!(key_element(&json!({"protocol": "TCP", "containerPort": 80, "name": "x"}), &["containerPort".into(), "protocol".into()]), "k:{\"containerPort\":80,\"protocol\":\"TCP\"}");
    assert_eq!(display(&["f:metadata".into(), "f:finalizers".into(), "v:\"a\"".into()]), ".metadata.finalizers[=\"a\"]");
    assert_eq!(default_manager("kubectl/v1.32.4 (linux/amd64) kubernetes/abc"), "kubectl");
    let set = FieldSet::from_fields_v1(&json!({"f:a": {".": {}, "f:b": {}}}));
    assert_eq!(set.to_fields_v1(), json!({"f:a": {".": {}, "f:b": {}}}));
}

#[test]
fn custom_resources_merge_by_their_schema_and_keep_status_out_of_the_main_resource() {
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
                "tags": {"type": "array", "items": {"type": "string"}},
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        },
    });
    let kind = Kind::Custom { schema: Some(&schema), status_subresource: true };
    let widget = |ports: Value, tags: Value| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
               "spec": {"ports": ports, "tags": tags}, "status": {"ready": true}})
    };
    let alice = apply(kind, None, &widget(json!([{"name": "http", "port": 80}]), json!(["a"])), "alice", false, t("2024-05-01T12:00:00Z")).unwrap();
    let fields = &entry(&alice, "alice")["fieldsV1"];
    assert!(fields.get("f:status").is_none(), "status belongs to its subresource: {fields}");
    assert!(fields["f:spec"]["f:ports"].get(r#"k:{"name":"http"}"#).is_some(), "{fields}");
    // Bob adds an item to the map list; the plain list is atomic and replaced.
    let both = apply(kind, Some(&alice), &widget(json!([{"name": "dns", "port": 53}]), json!(["b"])), "bob", true, t("2024-05-01T12:01:00Z")).unwrap();
    assert_eq!(both["spec"]["ports"], json!([{"name": "http", "port": 80}, {"name": "dns", "port": 53}]));
    assert_eq!(both["spec"]["tags"], json!(["b"]));
    let undeclared = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"color": "red"}});
    let err = apply(kind, None, &undeclared, "alice", false, t("2024-05-01T12:00:00Z")).unwrap_err();
    assert_eq!(err, ApplyError::Invalid("failed to create typed patch object (w; example.com/v1, Kind=Widget): .spec.color: field not declared in schema".into()));
}
