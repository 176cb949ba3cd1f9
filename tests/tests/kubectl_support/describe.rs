//! `kubectl describe` (with the object's events), `kubectl get events --field-selector`
//! and `kubectl events --for`.

use serde_json::json;

use crate::asserts::{assert_contains, assert_line};
use crate::harness::{Cluster, columns, fixture};

/// An event about `kind/name` as the scheduler or kubelet would record it.
fn event(
    c: &Cluster,
    kind: &str,
    name: &str,
    uid: &str,
    n: u32,
    kind_of: &str,
    reason: &str,
    message: &str,
) {
    let api_version = if kind == "Deployment" {
        "apps/v1"
    } else {
        "v1"
    };
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{n}"), "namespace": "default"},
        "involvedObject": {"apiVersion": api_version, "kind": kind, "name": name, "namespace": "default", "uid": uid},
        "reason": reason, "message": message, "type": kind_of,
        "source": {"component": "default-scheduler"}, "count": 1,
        "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:00Z",
    });
    c.ok_stdin(&["create", "-f", "-"], &ev.to_string());
}

#[test]
fn describe_shows_events_and_field_selectors_filter_them() {
    let c = Cluster::start();
    c.ok(&["create", "-f", &fixture("pod.yaml")]);
    c.ok(&["run", "other", "--image=busybox"]);
    let uid = c.ok(&["get", "pod", "web-pod", "-o", "jsonpath={.metadata.uid}"]);
    let other_uid = c.ok(&["get", "pod", "other", "-o", "jsonpath={.metadata.uid}"]);
    event(
        &c,
        "Pod",
        "web-pod",
        &uid,
        1,
        "Normal",
        "Scheduled",
        "Successfully assigned default/web-pod to node-1",
    );
    event(
        &c,
        "Pod",
        "web-pod",
        &uid,
        2,
        "Warning",
        "BackOff",
        "Back-off pulling image \"nginx\"",
    );
    event(
        &c,
        "Pod",
        "other",
        &other_uid,
        1,
        "Normal",
        "Pulled",
        "Container image \"busybox\" already present",
    );

    let described = c.ok(&["describe", "pod", "web-pod"]);
    assert_line(&described, "Name: web-pod");
    assert_line(&described, "Namespace: default");
    assert_line(&described, "Status: Pending");
    assert_line(&described, "Events:");
    assert_line(&described, "Type Reason Age From Message");
    assert_line(&described, "Normal Scheduled");
    assert_line(&described, "Warning BackOff");
    assert_contains(
        &described,
        "Successfully assigned default/web-pod to node-1",
    );
    assert!(
        !described.contains("already present"),
        "another pod's event in describe:\n{described}"
    );
    let quiet = c.ok(&["describe", "pod", "web-pod", "--show-events=false"]);
    assert!(!quiet.contains("Events:"), "{quiet}");
    assert_line(&c.ok(&["describe", "pod", "other"]), "Normal Pulled");
    assert_contains(
        &c.fails(&["describe", "pod", "ghost"]),
        "Error from server (NotFound): pods \"ghost\" not found",
    );

    let events = c.ok(&["get", "events"]);
    assert_line(&events, "LAST SEEN TYPE REASON OBJECT MESSAGE");
    assert_eq!(columns(&events).len(), 4, "{events}");
    let for_web = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web-pod",
        "-o",
        "name",
    ]);
    assert_eq!(columns(&for_web), ["event/web-pod.1", "event/web-pod.2"]);
    let warnings = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "type=Warning",
        "--no-headers",
    ]);
    assert_eq!(columns(&warnings).len(), 1, "{warnings}");
    assert_contains(&warnings, "pod/web-pod");
    let both = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=Pod,reason!=Scheduled",
        "-o",
        "name",
    ]);
    assert_eq!(columns(&both), ["event/other.1", "event/web-pod.2"]);
    let bad = c.fails(&["get", "events", "--field-selector", "bogus=x"]);
    assert_contains(&bad, "field label not supported: bogus");

    let listed = c.ok(&["events", "--for", "pod/web-pod"]);
    assert_line(&listed, "LAST SEEN TYPE REASON OBJECT MESSAGE");
    assert_contains(&listed, "Back-off pulling image");
    assert!(!listed.contains("busybox"), "{listed}");
    assert_eq!(
        columns(&c.ok(&["events", "--types=Warning", "--no-headers"])).len(),
        1
    );
}

#[test]
fn describe_workloads_and_services() {
    let c = Cluster::start();
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
    ]);
    let described = c.ok(&["describe", "deployment", "web"]);
    assert_line(&described, "Name: web");
    assert_line(&described, "Selector: app=web");
    assert_line(
        &described,
        "Replicas: 2 desired | 0 updated | 0 total | 0 available | 0 unavailable",
    );
    assert_line(&described, "StrategyType: RollingUpdate");
    assert_line(&described, "Image: nginx:1.25");
    c.ok(&["expose", "deployment", "web", "--port=80"]);
    let svc = c.ok(&["describe", "service", "web"]);
    assert_line(&svc, "Type: ClusterIP");
    assert_line(&svc, "Port: <unset> 80/TCP");
    assert_line(&svc, "TargetPort: 80/TCP");
    let ns = c.ok(&["describe", "namespace", "default"]);
    assert_line(&ns, "Status: Active");
}

#[test]
fn events_written_through_the_events_api_show_in_describe_and_get() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "web"]);
    let uid = c.ok(&["get", "configmap", "web", "-o", "jsonpath={.metadata.uid}"]);
    let ev = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web.synced", "namespace": "default"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "example.com/operator", "reportingInstance": "operator-0",
        "action": "Reconcile", "reason": "Synced", "type": "Normal", "note": "config synced",
        "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "name": "web", "namespace": "default", "uid": uid},
    });
    assert_eq!(
        c.ok_stdin(&["create", "-f", "-"], &ev.to_string()).trim(),
        "event.events.k8s.io/web.synced created"
    );
    let described = c.ok(&["describe", "configmap", "web"]);
    assert_line(&described, "Normal Synced");
    assert_contains(&described, "config synced");
    let listed = columns(&c.ok(&["get", "events"]));
    assert_eq!(listed[0], "LAST SEEN TYPE REASON OBJECT MESSAGE");
    assert!(listed[1].ends_with("Normal Synced configmap/web config synced"), "{listed:?}");
    assert_eq!(
        c.ok(&["get", "events.v1.events.k8s.io", "web.synced", "-o", "jsonpath={.note} {.regarding.name}"]),
        "config synced web"
    );
    let invalid = ev.to_string().replace("\"Normal\"", "\"Info\"").replace("web.synced", "web.bad");
    assert_contains(
        &c.fails_stdin(&["create", "-f", "-"], &invalid),
        "The Event \"web.bad\" is invalid: type: Invalid value: \"\": has invalid value: Info",
    );
}
