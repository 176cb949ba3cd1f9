//! Cases modelled on the patches kubectl sends (client-side apply, edit, patch) and on
//! upstream's strategic merge patch test cases.

use serde_json::{Value, json};

use super::{PatchError, strategic_merge_patch};

fn deployment(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"app": "d"}, "finalizers": ["a", "b"]},
        "spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                 "template": {"spec": {"containers": containers}}},
    })
}

fn containers(v: &Value) -> &Value {
    &v["spec"]["template"]["spec"]["containers"]
}

#[test]
fn merges_containers_by_name_and_keeps_others() {
    let orig = deployment(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}});
    let out = strategic_merge_patch(&orig, &patch).unwrap();
    assert_eq!(containers(&out), &json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}]));
    assert_eq!(out["spec"]["replicas"], 1);
}

#[test]
fn kubectl_apply_prunes_a_container_with_set_element_order() {
    let orig = deployment(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}],
        "containers": [{"$patch": "delete", "name": "b"}]}}}});
    let out = strategic_merge_patch(&orig, &patch).unwrap();
    assert_eq!(containers(&out), &json!([{"name": "a", "image": "a:1"}]));
}

#[test]
fn kubectl_apply_adds_and_deletes_ports_by_container_port() {
    let orig = deployment(json!([{"name": "a", "image": "a", "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 8080, "protocol": "TCP"}]}]));
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}],
        "containers": [{"name": "a",
            "$setElementOrder/ports": [{"containerPort": 443}, {"containerPort": 80}],
            "ports": [{"containerPort": 443}, {"$patch": "delete", "containerPort": 8080}]}]}}}});
    let out = strategic_merge_patch(&orig, &patch).unwrap();
    assert_eq!(containers(&out)[0]["ports"], json!([{"containerPort": 443}, {"containerPort": 80, "protocol": "TCP"}]));
}

#[test]
fn null_deletes_and_scalars_replace() {
    let orig = deployment(json!([]));
    let patch = json!({"metadata": {"labels": {"app": null, "tier": "web"}}, "spec": {"replicas": 3}});
    let out = strategic_merge_patch(&orig, &patch).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"tier": "web"}));
    assert_eq!(out["spec"]["replicas"], 3);
}

#[test]
fn retain_keys_drops_rolling_update_when_switching_to_recreate() {
    let orig = deployment(json!([]));
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}});
    let out = strategic_merge_patch(&orig, &patch).unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn patch_replace_on_map_and_list() {
    let orig = deployment(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]));
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "c"}]}}}});
    let out = strategic_merge_patch(&orig, &patch).unwrap();
    assert_eq!(containers(&out), &json!([{"name": "c", "image": "c"}]));
    let patch = json!({"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}});
    let out = strategic_merge_patch(&orig, &patch).unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    let patch = json!({"spec": {"strategy": {"$patch": "delete"}}});
    assert_eq!(strategic_merge_patch(&orig, &patch).unwrap()["spec"]["strategy"], json!({}));
}

#[test]
fn primitive_lists_union_or_replace() {
    let orig = deployment(json!([{"name": "a", "args": ["x", "y"]}]));
    // finalizers merge as a set
    let out = strategic_merge_patch(&orig, &json!({"metadata": {"finalizers": ["b", "c"]}})).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
    let out = strategic_merge_patch(&orig, &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    // args are atomic: replaced
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["z"]}]}}}});
    assert_eq!(containers(&strategic_merge_patch(&orig, &patch).unwrap())[0]["args"], json!(["z"]));
}

#[test]
fn env_and_volume_mounts_merge_by_their_keys() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "1"}], "volumeMounts": [{"name": "v", "mountPath": "/a"}]}],
                 "volumes": [{"name": "v", "emptyDir": {}}], "tolerations": [{"key": "k"}]}});
    let patch = json!({"spec": {"containers": [{"name": "c", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "3"}],
        "volumeMounts": [{"name": "w", "mountPath": "/b"}]}], "tolerations": [{"key": "j"}]}});
    let out = strategic_merge_patch(&pod, &patch).unwrap();
    assert_eq!(out["spec"]["containers"][0]["env"], json!([{"name": "A", "value": "3"}, {"name": "B", "value": "2"}]));
    assert_eq!(out["spec"]["containers"][0]["volumeMounts"].as_array().unwrap().len(), 2);
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "j"}]));
}

#[test]
fn service_ports_merge_by_port_and_unknown_kinds_replace_lists() {
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
    let out = strategic_merge_patch(&svc, &json!({"spec": {"ports": [{"port": 443}]}})).unwrap();
    assert_eq!(out["spec"]["ports"], json!([{"port": 80, "targetPort": 8080}, {"port": 443}]));
    let unknown = json!({"apiVersion": "x.io/v1", "kind": "Thing", "spec": {"items": [1, 2]}});
    assert_eq!(strategic_merge_patch(&unknown, &json!({"spec": {"items": [3]}})).unwrap()["spec"]["items"], json!([3]));
}

#[test]
fn new_fields_have_directives_processed() {
    let orig = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
    let patch = json!({"spec": {"containers": [{"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}]}]}});
    let out = strategic_merge_patch(&orig, &patch).unwrap();
    assert_eq!(out["spec"]["containers"][0]["env"][0]["name"], "A");
}

#[test]
fn errors_are_reported() {
    let orig = deployment(json!([]));
    assert_eq!(strategic_merge_patch(&orig, &json!([1])), Err(PatchError::NotAnObject("array")));
    assert!(matches!(strategic_merge_patch(&orig, &json!({"$patch": "explode"})), Err(PatchError::UnknownDirective(_))));
    let missing_key = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
    assert!(matches!(strategic_merge_patch(&orig, &missing_key), Err(PatchError::InvalidDirective { .. })));
}
