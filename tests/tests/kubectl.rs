//! kubectl against Waggle's API server, in the shape of upstream's `test/cmd`: each test
//! starts its own server (see `tests/kubectl/harness.rs`), drives the real kubectl
//! binary and checks its output and exit codes against what kubectl prints for
//! kube-apiserver.

#[path = "../kubectl/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{Cluster, columns, fixture};
use serde_json::Value;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("kubectl printed invalid JSON ({e}):\n{text}"))
}

fn has_line(text: &str, prefix: &str) -> bool {
    columns(text).iter().any(|l| l.starts_with(prefix))
}

#[track_caller]
fn assert_line(text: &str, prefix: &str) {
    assert!(has_line(text, prefix), "no line starting with {prefix:?} in:\n{text}");
}

#[track_caller]
fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "{needle:?} not in:\n{text}");
}

#[test]
fn discovery_api_resources_and_versions() {
    let c = Cluster::start();
    let out = c.ok(&["api-resources"]);
    assert_line(&out, "NAME SHORTNAMES APIVERSION NAMESPACED KIND");
    assert_line(&out, "pods po v1 true Pod");
    assert_line(&out, "namespaces ns v1 false Namespace");
    assert_line(&out, "deployments deploy apps/v1 true Deployment");
    assert_line(&out, "jobs batch/v1 true Job");
    assert_line(&out, "endpointslices discovery.k8s.io/v1 true EndpointSlice");
    let cluster_scoped = c.ok(&["api-resources", "--namespaced=false", "-o", "name"]);
    assert!(columns(&cluster_scoped).contains(&"nodes".to_owned()), "{cluster_scoped}");
    let apps = c.ok(&["api-resources", "--api-group=apps", "-o", "name"]);
    assert!(columns(&apps).contains(&"deployments.apps".to_owned()), "{apps}");
    let versions = columns(&c.ok(&["api-versions"]));
    for v in ["apps/v1", "batch/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1", "networking.k8s.io/v1", "v1"] {
        assert!(versions.contains(&v.to_owned()), "{v} missing from {versions:?}");
    }

    // kubectl asks for aggregated discovery; clients that do not still get the legacy documents.
    assert_eq!(json(&c.ok(&["get", "--raw", "/api"]))["kind"], "APIVersions");
    assert_eq!(json(&c.ok(&["get", "--raw", "/apis"]))["kind"], "APIGroupList");
    let apps = json(&c.ok(&["get", "--raw", "/apis/apps/v1"]));
    assert_eq!(apps["kind"], "APIResourceList");
    assert!(apps["resources"].as_array().unwrap().iter().any(|r| r["name"] == "deployments/scale"), "{apps}");
    let index = json(&c.ok(&["get", "--raw", "/openapi/v3"]));
    assert!(index["paths"].get("apis/apps/v1").is_some(), "{index}");
}

#[test]
fn create_and_get_print_upstream_columns() {
    let c = Cluster::start();
    assert_eq!(c.ok(&["create", "namespace", "team-a"]).trim(), "namespace/team-a created");
    let ns = c.ok(&["get", "namespace", "team-a"]);
    assert_line(&ns, "NAME STATUS AGE");
    assert_line(&ns, "team-a Active");

    assert_eq!(c.ok(&["create", "configmap", "cfg", "--from-literal=a=1", "--from-literal=b=2"]).trim(), "configmap/cfg created");
    let cm = c.ok(&["get", "configmap", "cfg"]);
    assert_line(&cm, "NAME DATA AGE");
    assert_line(&cm, "cfg 2 ");

    assert_eq!(c.ok(&["create", "secret", "generic", "sec", "--from-literal=k=v"]).trim(), "secret/sec created");
    let secret = c.ok(&["get", "secret", "sec"]);
    assert_line(&secret, "NAME TYPE DATA AGE");
    assert_line(&secret, "sec Opaque 1 ");

    assert_eq!(c.ok(&["create", "deployment", "web", "--image=nginx:1.25", "--replicas=2"]).trim(), "deployment.apps/web created");
    let deploy = c.ok(&["get", "deployments"]);
    assert_line(&deploy, "NAME READY UP-TO-DATE AVAILABLE AGE");
    assert_line(&deploy, "web 0/2 0 0 ");
    let wide = c.ok(&["get", "deployment", "web", "-o", "wide"]);
    assert_line(&wide, "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR");
    assert!(columns(&wide)[1].ends_with("nginx nginx:1.25 app=web"), "{wide}");

    assert_eq!(c.ok(&["create", "service", "clusterip", "svc", "--tcp=80:8080"]).trim(), "service/svc created");
    let svc = c.ok(&["get", "service", "svc"]);
    assert_line(&svc, "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE");
    let row = &columns(&svc)[1];
    let cells: Vec<&str> = row.split(' ').collect();
    assert_eq!((cells[0], cells[1], cells[3], cells[4]), ("svc", "ClusterIP", "<none>", "80/TCP"), "{svc}");
    assert!(cells[2].parse::<std::net::IpAddr>().is_ok(), "cluster IP {}", cells[2]);

    let pods = c.run(&["get", "pods"]);
    assert_eq!(pods.code, Some(0));
    assert_contains(&pods.stderr, "No resources found in default namespace.");

    c.ok(&["create", "-f", &fixture("pod.yaml")]);
    let pods = c.ok(&["get", "pods", "-o", "wide"]);
    assert_line(&pods, "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES");
    assert_line(&pods, "web-pod 0/1 Pending 0 ");
    assert!(columns(&pods)[1].ends_with("<none> <none> <none> <none>"), "{pods}");

    let all = c.ok(&["get", "all"]);
    assert_contains(&all, "service/kubernetes");
    assert_contains(&all, "deployment.apps/web");
    assert_contains(&all, "pod/web-pod");
}

#[test]
fn output_formats() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "cfg", "--from-literal=a=1", "--from-literal=b=2"]);
    let obj = json(&c.ok(&["get", "configmap", "cfg", "-o", "json"]));
    assert_eq!(obj["kind"], "ConfigMap");
    assert_eq!(obj["data"]["a"], "1");
    let list = json(&c.ok(&["get", "configmaps", "-o", "json"]));
    assert_eq!(list["kind"], "List");
    assert!(list["items"].as_array().unwrap().iter().any(|i| i["metadata"]["name"] == "cfg"));
    let yaml = c.ok(&["get", "configmap", "cfg", "-o", "yaml"]);
    assert_contains(&yaml, "kind: ConfigMap");
    assert_contains(&yaml, "  name: cfg");
    assert_eq!(c.ok(&["get", "configmap", "cfg", "-o", "name"]).trim(), "configmap/cfg");
    assert_eq!(c.ok(&["get", "configmap", "cfg", "-o", "jsonpath={.data.b}"]), "2");
    let custom = c.ok(&["get", "configmap", "cfg", "-o", "custom-columns=NAME:.metadata.name,A:.data.a"]);
    assert_eq!(columns(&custom), ["NAME A", "cfg 1"]);
    let no_headers = c.ok(&["get", "configmap", "cfg", "--no-headers"]);
    assert_line(&no_headers, "cfg 2 ");

    // `--sort-by` asks for Tables with `includeObject=Object` and sorts on the objects.
    c.ok(&["create", "deployment", "big", "--image=nginx", "--replicas=3"]);
    c.ok(&["create", "deployment", "small", "--image=nginx", "--replicas=1"]);
    let sorted = columns(&c.ok(&["get", "deployments", "--sort-by=.spec.replicas", "--no-headers"]));
    let names: Vec<&str> = sorted.iter().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(names, ["small", "big"], "{sorted:?}");
    let reversed = columns(&c.ok(&["get", "deployments", "--sort-by=.metadata.name", "--no-headers"]));
    assert!(reversed[0].starts_with("big ") && reversed[1].starts_with("small "), "{reversed:?}");
}

#[test]
fn ordinary_writes_record_managed_fields() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "owned", "--from-literal=a=1"]);
    c.ok(&["label", "configmap", "owned", "team=a"]);
    c.ok(&["patch", "configmap", "owned", "--type=merge", "--field-manager=robot", "-p", r#"{"data":{"b":"2"}}"#]);
    let obj = json(&c.ok(&["get", "configmap", "owned", "-o", "json", "--show-managed-fields"]));
    let entries = obj["metadata"]["managedFields"].as_array().expect("managedFields");
    let owner = |manager: &str| {
        entries
            .iter()
            .find(|e| e["manager"] == manager)
            .unwrap_or_else(|| panic!("no entry for {manager} in {entries:?}"))
    };
    assert_eq!(owner("kubectl-create")["operation"], "Update");
    assert!(owner("kubectl-create")["fieldsV1"]["f:data"].get("f:a").is_some(), "{entries:?}");
    assert!(owner("kubectl-label")["fieldsV1"]["f:metadata"]["f:labels"].get("f:team").is_some(), "{entries:?}");
    assert!(owner("robot")["fieldsV1"]["f:data"].get("f:b").is_some(), "{entries:?}");
    assert!(owner("robot")["fieldsV1"]["f:data"].get("f:a").is_none(), "{entries:?}");
    // Without --show-managed-fields kubectl hides them, as upstream.
    let plain = json(&c.ok(&["get", "configmap", "owned", "-o", "json"]));
    assert!(plain["metadata"].get("managedFields").is_none());
}

#[test]
fn admin_kubeconfig_carries_a_client_certificate() {
    let c = Cluster::start();
    let cert = c.ok(&["config", "view", "--raw", "-o", "jsonpath={.users[0].user.client-certificate-data}"]);
    let key = c.ok(&["config", "view", "--raw", "-o", "jsonpath={.users[0].user.client-key-data}"]);
    assert!(cert.len() > 100 && key.len() > 100, "no client certificate in the admin kubeconfig");
    // The server asks for client certificates and verifies them against the cluster CA
    // during the handshake: kubectl presenting this one gets through.
    assert_line(&c.ok(&["get", "namespace", "default"]), "default Active");
}

#[test]
fn apply_creates_updates_and_prunes_list_items() {
    let c = Cluster::start();
    assert_eq!(c.ok(&["apply", "-f", &fixture("deploy-v1.yaml")]).trim(), "deployment.apps/web created");
    let names = "jsonpath={.spec.template.spec.containers[*].name}";
    assert_eq!(c.ok(&["get", "deployment", "web", "-o", names]), "nginx sidecar");
    assert_eq!(c.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].ports[*].containerPort}"]), "80 8080");
    assert!(
        c.ok(&["get", "deployment", "web", "-o", "jsonpath={.metadata.annotations}"]).contains("kubectl.kubernetes.io/last-applied-configuration"),
        "last-applied annotation missing"
    );

    assert_eq!(c.ok(&["apply", "-f", &fixture("deploy-v2.yaml")]).trim(), "deployment.apps/web configured");
    assert_eq!(c.ok(&["get", "deployment", "web", "-o", names]), "nginx");
    assert_eq!(c.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].ports[*].containerPort}"]), "80");
    assert_eq!(c.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]), "nginx:1.26");
    assert_eq!(c.ok(&["apply", "-f", &fixture("deploy-v2.yaml")]).trim(), "deployment.apps/web unchanged");
}

#[test]
fn server_side_apply_conflicts_and_force() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "ssa", "--image=nginx", "--replicas=1"]);
    let err = c.fails(&["apply", "--server-side", "-f", &fixture("deploy-ssa.yaml")]);
    assert_contains(&err, "Apply failed with 1 conflict: conflict with \"kubectl-create\" using apps/v1: .spec.replicas");
    assert_eq!(c.ok(&["get", "deployment", "ssa", "-o", "jsonpath={.spec.replicas}"]), "1");

    let out = c.ok(&["apply", "--server-side", "--force-conflicts", "-f", &fixture("deploy-ssa.yaml")]);
    assert_eq!(out.trim(), "deployment.apps/ssa serverside-applied");
    assert_eq!(c.ok(&["get", "deployment", "ssa", "-o", "jsonpath={.spec.replicas}"]), "3");
    let obj = json(&c.ok(&["get", "deployment", "ssa", "-o", "json", "--show-managed-fields"]));
    let managers: Vec<(&str, &str)> = obj["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .map(|e| (e["manager"].as_str().unwrap(), e["operation"].as_str().unwrap()))
        .collect();
    assert!(managers.contains(&("kubectl", "Apply")), "{managers:?}");
    assert!(managers.contains(&("kubectl-create", "Update")), "{managers:?}");

    // A second applier changing the same field conflicts with the first (no apiVersion for appliers).
    let err = c.fails_stdin(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ssa\nspec:\n  replicas: 5\n",
    );
    assert_contains(&err, "conflict with \"kubectl\": .spec.replicas");
}

#[test]
fn patch_strategic_merge_and_json() {
    let c = Cluster::start();
    c.ok(&["apply", "-f", &fixture("deploy-v1.yaml")]);
    let out = c.ok(&["patch", "deployment", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}}}}"#]);
    assert_eq!(out.trim(), "deployment.apps/web patched");
    assert_eq!(c.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[*].image}"]), "nginx:1.27 busybox:1.36");
    let delete_item = r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"delete","name":"sidecar"}]}}}}"#;
    c.ok(&["patch", "deployment", "web", "--type=strategic", "-p", delete_item]);
    assert_eq!(c.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[*].name}"]), "nginx");

    c.ok(&["patch", "deployment", "web", "--type=merge", "-p", r#"{"metadata":{"labels":{"tier":"frontend"}}}"#]);
    assert_eq!(c.ok(&["get", "deployment", "web", "-o", "jsonpath={.metadata.labels.tier}"]), "frontend");

    c.ok(&["patch", "deployment", "web", "--type=json", "-p", r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#]);
    assert_eq!(c.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"]), "4");
    let unchanged = c.ok(&["patch", "deployment", "web", "--type=merge", "-p", r#"{"spec":{"replicas":4}}"#]);
    assert_eq!(unchanged.trim(), "deployment.apps/web patched (no change)");
}

#[test]
fn label_annotate_scale_expose() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "cfg", "--from-literal=a=1"]);
    assert_eq!(c.ok(&["label", "configmap", "cfg", "env=dev"]).trim(), "configmap/cfg labeled");
    let shown = c.ok(&["get", "configmap", "cfg", "--show-labels"]);
    assert_line(&shown, "NAME DATA AGE LABELS");
    assert!(columns(&shown)[1].ends_with("env=dev"), "{shown}");
    let err = c.fails(&["label", "configmap", "cfg", "env=prod"]);
    assert_contains(&err, "'env' already has a value (dev), and --overwrite is false");
    c.ok(&["label", "configmap", "cfg", "env=prod", "--overwrite"]);
    assert_eq!(c.ok(&["get", "configmap", "-l", "env=prod", "-o", "name"]).trim(), "configmap/cfg");
    assert_eq!(c.ok(&["label", "configmap", "cfg", "env-"]).trim(), "configmap/cfg unlabeled");
    assert_eq!(c.ok(&["annotate", "configmap", "cfg", "owner=team-a"]).trim(), "configmap/cfg annotated");
    assert_eq!(c.ok(&["get", "configmap", "cfg", "-o", "jsonpath={.metadata.annotations.owner}"]), "team-a");

    c.ok(&["create", "deployment", "web", "--image=nginx:1.25"]);
    assert_eq!(c.ok(&["scale", "deployment", "web", "--replicas=5"]).trim(), "deployment.apps/web scaled");
    assert_eq!(c.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"]), "5");
    let err = c.fails(&["scale", "deployment", "web", "--replicas=2", "--current-replicas=3"]);
    assert_contains(&err, "Expected replicas to be 3, was 5");

    assert_eq!(c.ok(&["expose", "deployment", "web", "--port=80", "--target-port=8080"]).trim(), "service/web exposed");
    let svc = c.ok(&["get", "service", "web", "-o", "wide"]);
    assert_line(&svc, "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR");
    assert!(columns(&svc)[1].ends_with("app=web"), "{svc}");
    assert_eq!(c.ok(&["get", "service", "web", "-o", "jsonpath={.spec.ports[0].targetPort}"]), "8080");
}

#[test]
fn delete_waits_until_gone() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "gone"]);
    assert_eq!(c.ok(&["delete", "configmap", "gone", "--wait"]).trim(), "configmap \"gone\" deleted");
    let err = c.fails(&["get", "configmap", "gone"]);
    assert_contains(&err, "Error from server (NotFound): configmaps \"gone\" not found");
    c.ok(&["create", "namespace", "doomed"]);
    c.ok(&["create", "configmap", "inside", "-n", "doomed"]);
    assert_eq!(c.ok(&["delete", "namespace", "doomed", "--wait", "--timeout=60s"]).trim(), "namespace \"doomed\" deleted");
    assert_contains(&c.fails(&["get", "namespace", "doomed"]), "namespaces \"doomed\" not found");
}

#[test]
fn explain_uses_openapi_descriptions() {
    let c = Cluster::start();
    let out = c.ok(&["explain", "pod.spec.containers"]);
    assert_line(&out, "KIND: Pod");
    assert_line(&out, "VERSION: v1");
    assert_line(&out, "FIELD: containers <[]Container>");
    assert_contains(&out, "List of containers belonging to the pod.");
    assert_line(&out, "image <string>");
    assert_line(&out, "name <string> -required-");
    let deploy = c.ok(&["explain", "deployments.spec.strategy"]);
    assert_line(&deploy, "GROUP: apps");
    assert_line(&deploy, "FIELD: strategy <DeploymentStrategy>");
    assert_contains(&c.fails(&["explain", "pod.spec.nope"]), "field \"nope\" does not exist");
}

#[test]
fn strict_validation_rejects_unknown_fields() {
    let c = Cluster::start();
    let err = c.fails(&["apply", "-f", &fixture("pod-unknown-field.yaml"), "--validate=strict"]);
    assert_contains(&err, "unknown field \"spec.foo\"");
    // A patch that introduces an unknown field warns (fieldValidation=Warn by default).
    c.ok(&["create", "configmap", "plain"]);
    let patched = c.run(&["patch", "configmap", "plain", "--type=merge", "-p", r#"{"bogus":1}"#]);
    assert_eq!(patched.code, Some(0), "{}", patched.stderr);
    assert_contains(&patched.stderr, "unknown field \"bogus\"");
    let err = c.fails(&["create", "-f", &fixture("pod-unknown-field.yaml")]);
    assert_contains(&err, "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.foo\"");
    let warn = c.run(&["create", "-f", &fixture("pod-unknown-field.yaml"), "--validate=warn"]);
    assert_eq!(warn.code, Some(0), "{}", warn.stderr);
    assert_contains(&warn.stderr, "unknown field \"spec.foo\"");
}

#[test]
fn edit_with_a_scripted_editor() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "edit-me", "--from-literal=key=value-one"]);
    let r = c.run_env(&["edit", "configmap", "edit-me"], &[("KUBE_EDITOR", "sed -i s/value-one/value-two/")]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "configmap/edit-me edited");
    assert_eq!(c.ok(&["get", "configmap", "edit-me", "-o", "jsonpath={.data.key}"]), "value-two");
    let r = c.run_env(&["edit", "configmap", "edit-me"], &[("KUBE_EDITOR", "true")]);
    assert_contains(&format!("{}{}", r.stdout, r.stderr), "Edit cancelled, no changes made.");
}

#[test]
fn get_watch_sees_updates() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "watched", "--from-literal=a=1"]);
    let watch = c.spawn(&["get", "configmaps", "watched", "-w"]);
    let first = watch.wait_for(Duration::from_secs(20), |t| has_line(t, "watched 1 "));
    assert_line(&first, "NAME DATA AGE");
    c.ok(&["patch", "configmap", "watched", "--type=merge", "-p", r#"{"data":{"b":"2"}}"#]);
    let seen = watch.wait_for(Duration::from_secs(20), |t| has_line(t, "watched 2 "));
    assert_line(&seen, "watched 2 ");
}

#[test]
fn describe_shows_events_and_wait_sees_conditions() {
    let c = Cluster::start();
    c.ok(&["create", "-f", &fixture("pod.yaml")]);
    let uid = c.ok(&["get", "pod", "web-pod", "-o", "jsonpath={.metadata.uid}"]);
    let event = format!(
        r#"{{"apiVersion":"v1","kind":"Event","metadata":{{"name":"web-pod.1","namespace":"default"}},
           "involvedObject":{{"apiVersion":"v1","kind":"Pod","name":"web-pod","namespace":"default","uid":"{uid}"}},
           "reason":"Scheduled","message":"Successfully assigned default/web-pod to node-1","type":"Normal",
           "source":{{"component":"default-scheduler"}},"count":1,
           "firstTimestamp":"2024-01-01T00:00:00Z","lastTimestamp":"2024-01-01T00:00:00Z"}}"#
    );
    c.ok_stdin(&["create", "-f", "-"], &event);
    let described = c.ok(&["describe", "pod", "web-pod"]);
    assert_line(&described, "Name: web-pod");
    assert_line(&described, "Events:");
    assert_contains(&described, "Successfully assigned default/web-pod to node-1");
    assert_line(&described, "Normal Scheduled");
    let events = c.ok(&["get", "events"]);
    assert_line(&events, "LAST SEEN TYPE REASON OBJECT MESSAGE");
    assert_contains(&events, "pod/web-pod");

    c.ok(&["patch", "pod", "web-pod", "--subresource=status", "--type=merge", "-p", r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#]);
    let waited = c.ok(&["wait", "--for=condition=Ready", "pod/web-pod", "--timeout=30s"]);
    assert_eq!(waited.trim(), "pod/web-pod condition met");
    let timeout = c.fails(&["wait", "--for=condition=Initialized", "pod/web-pod", "--timeout=2s"]);
    assert_contains(&timeout, "timed out waiting for the condition on pods/web-pod");
}

#[test]
fn error_cases() {
    let c = Cluster::start();
    assert_contains(&c.fails(&["get", "foos"]), "error: the server doesn't have a resource type \"foos\"");

    let invalid = c.fails(&["create", "-f", &fixture("pod-invalid.yaml")]);
    assert_contains(&invalid, "The Pod \"bad\" is invalid");
    assert_contains(&invalid, "spec.containers: Required value");

    c.ok(&["create", "configmap", "dup"]);
    // `kubectl create configmap` wraps the server's error (create_configmap.go); `create -f`
    // prints it as `Error from server (<reason>): error when creating "<source>": ...`.
    assert_contains(&c.fails(&["create", "configmap", "dup"]), "error: failed to create configmap: configmaps \"dup\" already exists");
    let dup = c.fails_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dup\n");
    assert_contains(&dup, "Error from server (AlreadyExists): error when creating \"STDIN\": configmaps \"dup\" already exists");

    c.ok(&["create", "-f", &fixture("pod.yaml")]);
    let forbidden = c.fails(&["patch", "pod", "web-pod", "--type=merge", "-p", r#"{"spec":{"restartPolicy":"Never"}}"#]);
    assert_contains(&forbidden, "Forbidden: pod updates may not change fields other than");

    c.ok(&["create", "deployment", "web", "--image=nginx"]);
    let immutable = c.fails(&["patch", "deployment", "web", "--type=merge", "-p", r#"{"spec":{"selector":{"matchLabels":{"app":"other"}}}}"#]);
    assert_contains(&immutable, "field is immutable");

    // Optimistic concurrency: replacing with a stale resourceVersion is a 409.
    let stale = c.ok(&["get", "configmap", "dup", "-o", "json"]);
    c.ok(&["label", "configmap", "dup", "touched=yes"]);
    let conflict = c.fails_stdin(&["replace", "-f", "-"], &stale);
    assert_contains(&conflict, "the object has been modified; please apply your changes to the latest version and try again");

    assert_contains(&c.fails(&["get", "pod", "missing"]), "Error from server (NotFound): pods \"missing\" not found");
    assert_contains(&c.fails(&["get", "configmaps", "-n", "nowhere", "nope"]), "not found");
}
