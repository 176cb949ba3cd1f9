//! The pod streaming subresources (`log`, `exec`, `attach`, `portforward`) and
//! `nodes/proxy`. kube-apiserver serves them by proxying to the kubelet of the pod's
//! node (`status.addresses` InternalIP, `status.daemonEndpoints.kubeletEndpoint.Port`).
//! This suite runs the API server alone, so these cases check the paths that need no
//! kubelet: a pod with no node, a node that does not exist, a kubelet that does not
//! answer (a closed loopback port), and the container checks the API server makes
//! itself. Streams to running pods (`logs -f`, `--previous`, `exec`, `port-forward`)
//! are driven through a real kubelet and containerd in `tests/kubelet.rs`.

use crate::asserts::assert_contains;
use crate::harness::Cluster;

const TWO_CONTAINERS: &str = "apiVersion: v1
kind: Pod
metadata:
  name: two
spec:
  containers:
  - {name: app, image: nginx}
  - {name: sidecar, image: busybox}
";

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    listener.local_addr().expect("local address").port()
}

#[test]
fn unscheduled_pods_have_no_stream() {
    let c = Cluster::start();
    c.ok(&["run", "web", "--image=nginx"]);
    // No node: upstream's LogLocation is empty, so the log is empty and kubectl succeeds.
    let logs = c.run(&["logs", "web"]);
    assert_eq!(
        (logs.code, logs.stdout.as_str()),
        (Some(0), ""),
        "{}",
        logs.stderr
    );
    assert_contains(
        &c.fails(&["logs", "web", "-c", "nope"]),
        "container nope is not valid for pod web",
    );
    c.ok_stdin(&["create", "-f", "-"], TWO_CONTAINERS);
    let raw = c.fails(&["get", "--raw", "/api/v1/namespaces/default/pods/two/log"]);
    assert_contains(
        &raw,
        "a container name must be specified for pod two, choose one of: [app sidecar]",
    );
    assert_contains(
        &c.fails(&["logs", "ghost"]),
        "error: error from server (NotFound): pods \"ghost\" not found in namespace \"default\"",
    );

    let exec = c.fails(&["exec", "web", "--", "true"]);
    assert_contains(
        &exec,
        "Error from server (BadRequest): pod web does not have a host assigned",
    );
    let attach = c.fails(&["attach", "web"]);
    assert_contains(&attach, "pod web does not have a host assigned");
    // kubectl itself refuses to forward to a pod that is not Running.
    assert_contains(
        &c.fails(&["port-forward", "pod/web", "8080:80"]),
        "unable to forward port because pod is not running. Current status=Pending",
    );
}

#[test]
fn scheduled_pods_reach_for_their_kubelet() {
    let c = Cluster::start();
    // Bound to a node that does not exist.
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: lost\nspec:\n  nodeName: ghost\n  containers: [{name: app, image: nginx}]\n",
    );
    assert_contains(
        &c.fails(&["logs", "lost"]),
        "Error from server (NotFound): nodes \"ghost\" not found",
    );

    // A node whose kubelet does not answer: the request reaches for it and fails.
    let port = closed_port();
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-1\n",
    );
    let status = format!(
        r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"127.0.0.1"}}],"daemonEndpoints":{{"kubeletEndpoint":{{"Port":{port}}}}}}}}}"#
    );
    c.ok(&[
        "patch",
        "node",
        "node-1",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ]);
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: placed\nspec:\n  nodeName: node-1\n  containers: [{name: app, image: nginx}]\n",
    );
    let logs = c.fails(&["logs", "placed", "--tail=5"]);
    assert_contains(
        &logs,
        &format!(
            "Error from server: Get \"https://127.0.0.1:{port}/containerLogs/default/placed/app?tailLines=5\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        ),
    );
    let follow = c.fails(&["logs", "placed", "-f", "--previous", "--timestamps"]);
    assert_contains(
        &follow,
        &format!(
            "containerLogs/default/placed/app?follow=true&previous=true&timestamps=true\": dial tcp"
        ),
    );
    // Upgrades (exec, attach, port-forward) fail in the proxy's dialler, as upstream's.
    let refused = format!(
        "Error from server: error dialing backend: dial tcp 127.0.0.1:{port}: connect: connection refused"
    );
    assert_contains(&c.fails(&["exec", "placed", "--", "true"]), &refused);
    assert_contains(&c.fails(&["attach", "placed"]), &refused);
    c.ok(&[
        "patch",
        "pod",
        "placed",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Running"}}"#,
    ]);
    let forward = c.fails(&["port-forward", "pod/placed", ":80"]);
    assert_contains(
        &forward,
        &format!(
            "error upgrading connection: error dialing backend: dial tcp 127.0.0.1:{port}: connect: connection refused"
        ),
    );
    let proxy = c.fails(&["get", "--raw", "/api/v1/nodes/node-1/proxy/healthz"]);
    assert_contains(
        &proxy,
        &format!("Error from server: dial tcp 127.0.0.1:{port}: connect: connection refused"),
    );

    // A node without addresses cannot be reached at all.
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: bare\n",
    );
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nowhere\nspec:\n  nodeName: bare\n  containers: [{name: app, image: nginx}]\n",
    );
    assert_contains(
        &c.fails(&["logs", "nowhere"]),
        "no preferred addresses found; known addresses: []",
    );
}
