//! kubectl against Waggle's scheduler: `get pod -o wide` shows the node it chose, and
//! `describe pod` shows why a pod that fits nowhere stays pending, as kube-scheduler
//! reports it.

use crate::asserts::{assert_contains, assert_line};
use crate::harness::{Cluster, columns};

const WORKER: &str = "apiVersion: v1
kind: Node
metadata:
  name: worker
  labels: {kubernetes.io/hostname: worker}
";

fn pod(name: &str, cpu: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - name: c
    image: nginx
    resources: {{requests: {{cpu: {cpu}}}}}
"
    )
}

#[test]
fn pods_are_placed_by_the_scheduler() {
    let c = Cluster::with_scheduler();
    c.ok_stdin(&["create", "-f", "-"], WORKER);
    c.ok(&[
        "patch",
        "node",
        "worker",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"allocatable":{"cpu":"2","memory":"4Gi","pods":"110"},"capacity":{"cpu":"2","memory":"4Gi","pods":"110"}}}"#,
    ]);

    c.ok_stdin(&["create", "-f", "-"], &pod("web", "500m"));
    let wide = c.wait_for_output(&["get", "pod", "web", "-o", "wide"], |out| {
        columns(out)
            .get(1)
            .is_some_and(|row| row.contains(" worker "))
    });
    let rows = columns(&wide);
    assert_eq!(
        rows[0],
        "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"
    );
    let cells: Vec<&str> = rows[1].split(' ').collect();
    assert_eq!(cells[0], "web");
    assert_eq!(cells[6], "worker", "{wide}");
    let described = c.ok(&["describe", "pod", "web"]);
    assert_line(&described, "Node: worker/");
    assert_contains(
        &columns(&described).join("\n"),
        "default-scheduler Successfully assigned default/web to worker",
    );

    c.ok_stdin(&["create", "-f", "-"], &pod("huge", "3"));
    // The first attempt may see the node before its status; the message settles.
    let failed = "default-scheduler 0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are \
                  available: 1 Preemption is not helpful for scheduling.";
    let described = c.wait_for_output(&["describe", "pod", "huge"], |out| {
        columns(out).join("\n").contains(failed)
    });
    assert_line(&described, "Node: <none>");
    assert_line(&described, "PodScheduled False");
    assert_line(&described, "Warning FailedScheduling");
    assert_contains(&columns(&described).join("\n"), failed);
    let wide = c.ok(&["get", "pod", "huge", "-o", "wide"]);
    let cells: Vec<String> = columns(&wide)[1].split(' ').map(str::to_owned).collect();
    assert_eq!(&cells[..3], ["huge", "0/1", "Pending"]);
    assert_eq!(cells[6], "<none>", "{wide}");
}
