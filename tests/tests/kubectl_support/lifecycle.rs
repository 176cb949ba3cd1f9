//! `kubectl delete` (with `--wait`, finalizers, selectors, `--ignore-not-found`) and
//! `kubectl wait` (`--for=condition=`, `--for=delete`, `--for=jsonpath=`).

use std::time::Duration;

use crate::asserts::{assert_contains, json};
use crate::harness::Cluster;

const HELD: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: held
  finalizers: [example.com/hold]
";

const RELEASE: &str = r#"[{"op":"remove","path":"/metadata/finalizers"}]"#;

#[test]
fn delete_waits_for_finalizers() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-"], HELD);
    let mut deleting = c.spawn(&["delete", "configmap", "held"]);
    // `--wait` is the default: kubectl blocks while the finalizer holds the object.
    assert!(
        deleting.exit_within(Duration::from_secs(3)).is_none(),
        "kubectl delete returned while a finalizer was pending"
    );
    let marked = json(&c.ok(&["get", "configmap", "held", "-o", "json"]));
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "{marked}"
    );
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
    // A second delete without waiting just reports the request.
    assert_eq!(
        c.ok(&["delete", "configmap", "held", "--wait=false"])
            .trim(),
        "configmap \"held\" deleted"
    );
    // Adding a finalizer to an object being deleted is forbidden.
    let add = c.fails(&[
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold","example.com/more"]}}"#,
    ]);
    assert_contains(
        &add,
        "Forbidden: no new finalizers can be added if the object is being deleted",
    );
    c.ok(&["patch", "configmap", "held", "--type=json", "-p", RELEASE]);
    let done = deleting
        .exit_within(Duration::from_secs(30))
        .expect("kubectl delete still waiting after the finalizer was removed");
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(done.stdout.trim(), "configmap \"held\" deleted");
    assert_contains(
        &c.fails(&["get", "configmap", "held"]),
        "configmaps \"held\" not found",
    );

    c.ok_stdin(&["create", "-f", "-"], HELD);
    let timeout = c.run(&["delete", "configmap", "held", "--timeout=2s"]);
    assert_eq!(timeout.code, Some(1), "{}", timeout.stdout);
    assert_contains(
        &timeout.stderr,
        "error: timed out waiting for the condition on configmaps/held",
    );
}

#[test]
fn delete_by_name_selector_and_missing() {
    let c = Cluster::start();
    for name in ["a", "b", "c"] {
        c.ok(&["create", "configmap", name]);
    }
    c.ok(&["label", "configmap", "a", "b", "group=x"]);
    let out = c.ok(&["delete", "configmap", "-l", "group=x"]);
    assert_eq!(
        out.trim(),
        "configmap \"a\" deleted\nconfigmap \"b\" deleted"
    );
    assert_eq!(
        c.ok(&["get", "configmap", "-o", "name"])
            .lines()
            .filter(|l| l.starts_with("configmap/c"))
            .count(),
        1
    );
    assert_contains(
        &c.fails(&["delete", "configmap", "nope"]),
        "Error from server (NotFound): configmaps \"nope\" not found",
    );
    let ignored = c.run(&["delete", "configmap", "nope", "--ignore-not-found"]);
    assert_eq!(
        (
            ignored.code,
            ignored.stdout.as_str(),
            ignored.stderr.as_str()
        ),
        (Some(0), "", "")
    );
    let dry = c.ok(&["delete", "configmap", "c", "--dry-run=server"]);
    assert_eq!(dry.trim(), "configmap \"c\" deleted (server dry run)");
    c.ok(&["get", "configmap", "c"]);
    // An unscheduled pod goes at once, as upstream (no kubelet has to confirm it).
    c.ok(&["run", "idle", "--image=nginx"]);
    assert_eq!(
        c.ok(&["delete", "pod", "idle"]).trim(),
        "pod \"idle\" deleted"
    );
    // A pod on a node is deleted gracefully: it stays Terminating until its kubelet (or a
    // forced delete) confirms.
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: placed\nspec:\n  nodeName: node-1\n  containers: [{name: app, image: nginx}]\n",
    );
    assert_eq!(
        c.ok(&["delete", "pod", "placed", "--wait=false"]).trim(),
        "pod \"placed\" deleted"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "placed",
            "-o",
            "jsonpath={.metadata.deletionGracePeriodSeconds}"
        ]),
        "30"
    );
    assert!(
        crate::harness::columns(&c.ok(&["get", "pod", "placed"]))[1]
            .starts_with("placed 0/1 Terminating 0 ")
    );
    assert_eq!(
        c.run(&["delete", "pod", "placed", "--force", "--grace-period=0"])
            .stdout
            .trim(),
        "pod \"placed\" force deleted"
    );
    assert_contains(
        &c.fails(&["get", "pod", "placed"]),
        "pods \"placed\" not found",
    );
    let forced = c.run(&["delete", "configmap", "c", "--force", "--grace-period=0"]);
    assert_eq!(forced.code, Some(0), "{}", forced.stderr);
    assert_contains(
        &forced.stderr,
        "Immediate deletion does not wait for confirmation that the running resource has been terminated",
    );
    assert_eq!(forced.stdout.trim(), "configmap \"c\" force deleted");
}

#[test]
fn wait_for_conditions_deletion_and_jsonpath() {
    let c = Cluster::start();
    c.ok(&["run", "web", "--image=nginx"]);
    let mut waiting = c.spawn(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"]);
    assert!(
        waiting.exit_within(Duration::from_secs(2)).is_none(),
        "kubectl wait returned before the pod was Ready"
    );
    let ready = r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#;
    c.ok(&[
        "patch",
        "pod",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        ready,
    ]);
    let met = waiting
        .exit_within(Duration::from_secs(30))
        .expect("kubectl wait did not see the condition");
    assert_eq!(
        (met.code, met.stdout.trim()),
        (Some(0), "pod/web condition met"),
        "{}",
        met.stderr
    );
    assert_eq!(
        c.ok(&[
            "wait",
            "--for=condition=Ready=true",
            "pod/web",
            "--timeout=5s"
        ])
        .trim(),
        "pod/web condition met"
    );
    let not = c.run(&[
        "wait",
        "--for=condition=Ready=false",
        "pod/web",
        "--timeout=2s",
    ]);
    assert_eq!(not.code, Some(1));
    assert_contains(
        &not.stderr,
        "error: timed out waiting for the condition on pods/web",
    );

    assert_eq!(
        c.ok(&[
            "wait",
            "--for=jsonpath={.status.phase}=Pending",
            "pod/web",
            "--timeout=5s"
        ])
        .trim(),
        "pod/web condition met"
    );
    assert_eq!(
        c.ok(&[
            "wait",
            "--for=jsonpath={.spec.containers[0].image}",
            "pod/web",
            "--timeout=5s"
        ])
        .trim(),
        "pod/web condition met"
    );
    let bad = c.fails(&[
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "pod/web",
        "--timeout=2s",
    ]);
    assert_contains(&bad, "timed out waiting for the condition on pods/web");
    assert_contains(
        &c.fails(&["wait", "--for=nonsense", "pod/web"]),
        "unrecognized condition: \"nonsense\"",
    );

    c.ok_stdin(&["create", "-f", "-"], HELD);
    c.ok(&["delete", "configmap", "held", "--wait=false"]);
    let mut gone = c.spawn(&["wait", "--for=delete", "configmap/held", "--timeout=60s"]);
    assert!(
        gone.exit_within(Duration::from_secs(2)).is_none(),
        "kubectl wait --for=delete returned early"
    );
    c.ok(&["patch", "configmap", "held", "--type=json", "-p", RELEASE]);
    let met = gone
        .exit_within(Duration::from_secs(30))
        .expect("kubectl wait --for=delete did not see the deletion");
    assert_eq!(
        (met.code, met.stdout.trim()),
        (Some(0), "configmap/held condition met"),
        "{}",
        met.stderr
    );

    // Waiting on a label selector covers every match; none yet is an error.
    assert_contains(
        &c.fails(&[
            "wait",
            "--for=condition=Ready",
            "pod",
            "-l",
            "app=none",
            "--timeout=2s",
        ]),
        "no matching resources found",
    );
}

#[test]
fn delete_namespace_waits_for_its_contents() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "gone"]);
    assert_eq!(
        c.ok(&["delete", "configmap", "gone", "--wait"]).trim(),
        "configmap \"gone\" deleted"
    );
    assert_contains(
        &c.fails(&["get", "configmap", "gone"]),
        "Error from server (NotFound): configmaps \"gone\" not found",
    );
    c.ok(&["create", "namespace", "doomed"]);
    c.ok(&["create", "configmap", "inside", "-n", "doomed"]);
    assert_eq!(
        c.ok(&["delete", "namespace", "doomed", "--wait", "--timeout=60s"])
            .trim(),
        "namespace \"doomed\" deleted"
    );
    assert_contains(
        &c.fails(&["get", "namespace", "doomed"]),
        "namespaces \"doomed\" not found",
    );
    assert_contains(
        &c.fails(&["delete", "namespace", "default"]),
        "Error from server (Forbidden): namespaces \"default\" is forbidden: this namespace may not be deleted",
    );
}
