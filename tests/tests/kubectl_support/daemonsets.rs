//! kubectl against Waggle's DaemonSet controller and scheduler: a DaemonSet puts a pod
//! on each node (the scheduler binds each where its node affinity says), `rollout
//! status` follows it, `get ds` shows upstream's columns, and a new image, `rollout
//! history`, `undo` and `restart` work on its ControllerRevisions.

use crate::asserts::assert_line;
use crate::controllers::{assert_two_revisions, with_kubelet};
use crate::harness::{Cluster, columns};

fn node(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{kubernetes.io/hostname: {name}}}\n"
    )
}

const DAEMON_SET: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: 'nginx:1.25'}]
";

/// `kubectl rollout status daemonset/web` ends on upstream's message.
fn ds_rolled_out(c: &Cluster) {
    let status = c.ok(&["rollout", "status", "daemonset/web", "--timeout=60s"]);
    assert_line(
        status.lines().last().unwrap_or_default(),
        "daemon set \"web\" successfully rolled out",
    );
}

/// `image` on every pod of the set, one on each node.
fn images_on_nodes(c: &Cluster, image: &str) {
    let wide = "jsonpath={range .items[*]}{.spec.nodeName}={.spec.containers[0].image} {end}";
    let want = format!("w1={image} w2={image}");
    let pods = c.wait_for_output(&["get", "pods", "-l", "app=web", "-o", wide], |out| {
        let mut seen: Vec<&str> = out.split_whitespace().collect();
        seen.sort();
        seen.join(" ") == want
    });
    let mut seen: Vec<&str> = pods.split_whitespace().collect();
    seen.sort();
    assert_eq!(seen.join(" "), want);
}

#[test]
fn daemonsets_run_by_the_daemonset_controller() {
    let c = Cluster::with_controllers_and_scheduler();
    with_kubelet(&c, daemonsets);
}

fn daemonsets(c: &Cluster) {
    for name in ["w1", "w2"] {
        c.ok_stdin(&["create", "-f", "-"], &node(name));
        c.ok(&[
            "patch",
            "node",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"allocatable":{"cpu":"2","memory":"4Gi","pods":"110"},"capacity":{"cpu":"2","memory":"4Gi","pods":"110"}}}"#,
        ]);
    }
    assert_eq!(
        c.ok_stdin(&["create", "-f", "-"], DAEMON_SET).trim(),
        "daemonset.apps/web created"
    );
    ds_rolled_out(c);
    images_on_nodes(c, "nginx:1.25");
    let rows = columns(&c.ok(&["get", "ds"]));
    assert_eq!(
        rows[0], "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE",
        "{rows:?}"
    );
    assert!(rows[1].starts_with("web 2 2 2 2 2 <none> "), "{rows:?}");

    // A new image rolls out as revision 2; undo brings revision 1's back as 3.
    c.ok(&["set", "image", "daemonset/web", "nginx=nginx:1.26"]);
    ds_rolled_out(c);
    images_on_nodes(c, "nginx:1.26");
    assert_two_revisions(c, "daemonset", &["1 <none>", "2 <none>"]);
    assert_eq!(
        c.ok(&["rollout", "undo", "daemonset/web"]).trim(),
        "daemonset.apps/web rolled back"
    );
    ds_rolled_out(c);
    images_on_nodes(c, "nginx:1.25");
    let image = "jsonpath={.spec.template.spec.containers[0].image}";
    assert_eq!(c.ok(&["get", "daemonset/web", "-o", image]), "nginx:1.25");
    assert_eq!(
        columns(&c.ok(&["rollout", "history", "daemonset/web"]))[2..],
        ["2 <none>", "3 <none>"]
    );

    // A restart is a new template: revision 4, rolled out to new pods.
    let before = c.ok(&["get", "pods", "-l", "app=web", "-o", "name"]);
    assert_eq!(
        c.ok(&["rollout", "restart", "daemonset/web"]).trim(),
        "daemonset.apps/web restarted"
    );
    ds_rolled_out(c);
    assert_eq!(
        columns(&c.ok(&["rollout", "history", "daemonset/web"]))[2..],
        ["2 <none>", "3 <none>", "4 <none>"]
    );
    let after = c.wait_for_output(&["get", "pods", "-l", "app=web", "-o", "name"], |out| {
        out.lines().count() == 2 && out.lines().all(|p| !before.contains(p))
    });
    assert!(
        after.lines().all(|p| !before.contains(p)),
        "{before} {after}"
    );
    let rows = columns(&c.ok(&["get", "ds", "web"]));
    assert!(rows[1].starts_with("web 2 2 2 2 2 <none> "), "{rows:?}");
}
