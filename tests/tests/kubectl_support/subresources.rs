//! Pod and namespace subresources kubectl drives: `pods/eviction` (`kubectl drain`,
//! with `cordon`/`uncordon`), `namespaces/finalize` and `pods/ephemeralcontainers`
//! (through `--raw`: `kubectl debug` needs a kubelet).

use crate::asserts::{assert_contains, json};
use crate::harness::Cluster;

const NODE: &str = "apiVersion: v1
kind: Node
metadata:
  name: n1
";

/// A pod bound to `node` (no kubelet runs in the test bed, so nothing ever stops it).
fn bound_pod(name: &str, node: &str, owner: Option<(&str, &str)>) -> String {
    let owner = owner.map_or(String::new(), |(name, uid)| {
        format!("  ownerReferences: [{{apiVersion: apps/v1, kind: DaemonSet, name: {name}, uid: {uid}, controller: true}}]\n")
    });
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
{owner}spec:
  nodeName: {node}
  containers: [{{name: app, image: nginx}}]
"
    )
}

fn eviction(name: &str, grace: Option<i64>) -> String {
    let options = grace.map_or(String::new(), |g| {
        format!(r#","deleteOptions":{{"gracePeriodSeconds":{g}}}"#)
    });
    format!(
        r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{name}","namespace":"default"}}{options}}}"#
    )
}

#[test]
fn cordon_and_uncordon() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-"], NODE);
    assert_eq!(c.ok(&["cordon", "n1"]).trim(), "node/n1 cordoned");
    assert_eq!(
        c.ok(&["get", "node", "n1", "-o", "jsonpath={.spec.unschedulable}"]),
        "true"
    );
    assert_eq!(c.ok(&["cordon", "n1"]).trim(), "node/n1 already cordoned");
    assert_eq!(c.ok(&["uncordon", "n1"]).trim(), "node/n1 uncordoned");
    assert_eq!(
        c.ok(&["get", "node", "n1", "-o", "jsonpath={.spec.unschedulable}"]),
        ""
    );
    assert_contains(
        &c.fails(&["cordon", "nope"]),
        "Error from server (NotFound): nodes \"nope\" not found",
    );
}

#[test]
fn eviction_deletes_gracefully_and_404s_for_missing_pods() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-"], &bound_pod("graceful", "n1", None));
    c.ok_stdin(&["create", "-f", "-"], &bound_pod("now", "n1", None));
    let path = "/api/v1/namespaces/default/pods/graceful/eviction";
    let out = c.ok(&[
        "create",
        "--raw",
        path,
        "-f",
        &c.write_file("graceful.json", &eviction("graceful", None)),
    ]);
    assert_eq!(json(&out)["status"], "Success");
    // Bound to a node, the pod gets its grace period (30s by default) to stop; with no
    // kubelet to stop it, it stays Terminating, as upstream.
    let pod = json(&c.ok(&["get", "pod", "graceful", "-o", "json"]));
    assert!(pod["metadata"]["deletionTimestamp"].is_string(), "{pod}");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
    // The Eviction's deleteOptions are honored: a zero grace period deletes at once.
    c.ok(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/now/eviction",
        "-f",
        &c.write_file("now.json", &eviction("now", Some(0))),
    ]);
    assert_contains(&c.fails(&["get", "pod", "now"]), "pods \"now\" not found");

    let missing = c.write_file("missing.json", &eviction("missing", None));
    let err = c.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/missing/eviction",
        "-f",
        &missing,
    ]);
    assert_contains(
        &err,
        "Error from server (NotFound): pods \"missing\" not found",
    );
    let mismatch = c.fails(&["create", "--raw", path, "-f", &missing]);
    assert_contains(
        &mismatch,
        "Error from server (BadRequest): name in URL does not match name in Eviction object",
    );
}

#[test]
fn drain_evicts_the_pods_of_a_node() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-"], NODE);
    c.ok_stdin(&["create", "-f", "-"], "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec: {containers: [{name: a, image: busybox}]}\n");
    let ds_uid = c.ok(&[
        "get",
        "daemonset",
        "agent",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    c.ok_stdin(
        &["create", "-f", "-"],
        &bound_pod("agent-x", "n1", Some(("agent", &ds_uid))),
    );
    c.ok_stdin(&["create", "-f", "-"], &bound_pod("bare", "n1", None));
    c.ok_stdin(&["create", "-f", "-"], &bound_pod("elsewhere", "n2", None));

    // Unmanaged pods need --force, DaemonSet pods --ignore-daemonsets, as upstream.
    let refused = c.run(&["drain", "n1"]);
    assert_eq!(refused.code, Some(1), "{}", refused.stdout);
    assert_contains(
        &refused.stderr,
        "cannot delete Pods that declare no controller (use --force to override): default/bare",
    );
    assert_contains(
        &refused.stderr,
        "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/agent-x",
    );
    assert_eq!(
        c.ok(&["get", "node", "n1", "-o", "jsonpath={.spec.unschedulable}"]),
        "true"
    );

    let drained = c.run(&[
        "drain",
        "n1",
        "--ignore-daemonsets",
        "--force",
        "--grace-period=0",
        "--timeout=30s",
    ]);
    assert_eq!(
        drained.code,
        Some(0),
        "{}{}",
        drained.stdout,
        drained.stderr
    );
    // kubectl joins its warnings in map order, which varies from run to run.
    assert_contains(&drained.stderr, "Warning: ");
    assert_contains(
        &drained.stderr,
        "ignoring DaemonSet-managed Pods: default/agent-x",
    );
    assert_contains(
        &drained.stderr,
        "deleting Pods that declare no controller: default/bare",
    );
    assert_contains(
        &drained.stdout,
        "node/n1 already cordoned\nevicting pod default/bare\npod/bare evicted\nnode/n1 drained\n",
    );
    let left = c.ok(&["get", "pods", "-o", "name"]);
    assert_eq!(left.trim(), "pod/agent-x\npod/elsewhere");

    // With the pod's own grace period and no kubelet, the pod stays Terminating and
    // drain gives up at its timeout.
    c.ok_stdin(&["create", "-f", "-"], &bound_pod("slow", "n1", None));
    let timed_out = c.run(&[
        "drain",
        "n1",
        "--ignore-daemonsets",
        "--force",
        "--timeout=3s",
    ]);
    assert_eq!(
        timed_out.code,
        Some(1),
        "{}{}",
        timed_out.stdout,
        timed_out.stderr
    );
    assert_contains(&timed_out.stdout, "evicting pod default/slow");
    assert_contains(
        &timed_out.stderr,
        "error: unable to drain node \"n1\" due to error: error when waiting for pod \"slow\" in namespace \"default\" to terminate: context deadline exceeded",
    );
    let slow = json(&c.ok(&["get", "pod", "slow", "-o", "json"]));
    assert!(slow["metadata"]["deletionTimestamp"].is_string(), "{slow}");
}

#[test]
fn namespace_finalize_sets_spec_finalizers() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "fin"]);
    let mut ns = json(&c.ok(&["get", "namespace", "fin", "-o", "json"]));
    ns["spec"]["finalizers"] = serde_json::json!(["kubernetes", "example.com/hold"]);
    ns["metadata"]["labels"]["added"] = "yes".into();
    let body = c.write_file("hold.json", &ns.to_string());
    let out = json(&c.ok(&[
        "replace",
        "--raw",
        "/api/v1/namespaces/fin/finalize",
        "-f",
        &body,
    ]));
    assert_eq!(
        out["spec"]["finalizers"],
        serde_json::json!(["kubernetes", "example.com/hold"])
    );
    assert_eq!(
        c.ok(&[
            "get",
            "namespace",
            "fin",
            "-o",
            "jsonpath={.spec.finalizers}"
        ]),
        r#"["kubernetes","example.com/hold"]"#
    );

    // Deleting: the server's own finalizer goes, the other one holds the namespace.
    c.ok(&["delete", "namespace", "fin", "--wait=false"]);
    let held = c.run(&["wait", "--for=delete", "namespace/fin", "--timeout=3s"]);
    assert_eq!(held.code, Some(1), "{}", held.stdout);
    // The clean-up drops its own finalizer in the background (once): wait for that
    // write, so the replace below carries the latest resourceVersion.
    let started = std::time::Instant::now();
    let terminating = loop {
        let ns = json(&c.ok(&["get", "namespace", "fin", "-o", "json"]));
        let own_gone = ns["spec"]["finalizers"]
            .as_array()
            .is_some_and(|list| !list.iter().any(|f| f == "kubernetes"));
        if own_gone || started.elapsed() > std::time::Duration::from_secs(20) {
            break ns;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(terminating["status"]["phase"], "Terminating");
    assert_eq!(
        terminating["spec"]["finalizers"],
        serde_json::json!(["example.com/hold"])
    );
    let mut released = terminating;
    released["spec"]["finalizers"] = serde_json::json!([]);
    c.ok(&[
        "replace",
        "--raw",
        "/api/v1/namespaces/fin/finalize",
        "-f",
        &c.write_file("release.json", &released.to_string()),
    ]);
    c.ok(&["wait", "--for=delete", "namespace/fin", "--timeout=20s"]);

    let bad = json(&c.ok(&["get", "namespace", "default", "-o", "json"]));
    let mut bad = bad;
    bad["spec"]["finalizers"] = serde_json::json!(["not valid"]);
    let err = c.fails(&[
        "replace",
        "--raw",
        "/api/v1/namespaces/default/finalize",
        "-f",
        &c.write_file("bad.json", &bad.to_string()),
    ]);
    assert_contains(&err, "spec.finalizers[0]");
}

#[test]
fn ephemeral_containers_are_added_but_never_changed() {
    let c = Cluster::start();
    c.ok(&["run", "p", "--image=nginx"]);
    let path = "/api/v1/namespaces/default/pods/p/ephemeralcontainers";
    let mut pod = json(&c.ok(&["get", "--raw", path]));
    assert_eq!(
        (pod["kind"].as_str(), pod["metadata"]["name"].as_str()),
        (Some("Pod"), Some("p"))
    );
    pod["spec"]["ephemeralContainers"] = serde_json::json!([{"name": "debugger", "image": "busybox:1.36", "command": ["sh"], "stdin": true, "tty": true}]);
    // Only ephemeral containers change through the subresource.
    pod["spec"]["containers"][0]["image"] = "nginx:changed".into();
    pod["metadata"]["labels"] = serde_json::json!({"ignored": "yes"});
    let added = json(&c.ok(&[
        "replace",
        "--raw",
        path,
        "-f",
        &c.write_file("add.json", &pod.to_string()),
    ]));
    let debugger = &added["spec"]["ephemeralContainers"][0];
    assert_eq!(
        (
            debugger["name"].as_str(),
            debugger["imagePullPolicy"].as_str()
        ),
        (Some("debugger"), Some("IfNotPresent"))
    );
    assert_eq!(debugger["terminationMessagePolicy"], "File");
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.spec.containers[0].image} {.metadata.labels.ignored}"
        ]),
        "nginx "
    );

    let mut stored = json(&c.ok(&["get", "--raw", path]));
    stored["spec"]["ephemeralContainers"][0]["image"] = "alpine".into();
    let changed = c.fails(&[
        "replace",
        "--raw",
        path,
        "-f",
        &c.write_file("change.json", &stored.to_string()),
    ]);
    assert_contains(
        &changed,
        "Pod \"p\" is invalid: spec.ephemeralContainers[0]: Forbidden: existing ephemeral containers \"debugger\" may not be changed",
    );
    stored["spec"]["ephemeralContainers"] = serde_json::json!([]);
    let removed = c.fails(&[
        "replace",
        "--raw",
        path,
        "-f",
        &c.write_file("remove.json", &stored.to_string()),
    ]);
    assert_contains(
        &removed,
        "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be removed",
    );
    stored["spec"]["ephemeralContainers"] =
        serde_json::json!([{"name": "p", "image": "busybox", "ports": [{"containerPort": 80}]}]);
    let invalid = c.fails(&[
        "replace",
        "--raw",
        path,
        "-f",
        &c.write_file("invalid.json", &stored.to_string()),
    ]);
    assert_contains(
        &invalid,
        "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
    );
    assert_contains(
        &c.fails(&[
            "get",
            "--raw",
            "/api/v1/namespaces/default/pods/nope/ephemeralcontainers",
        ]),
        "pods \"nope\" not found",
    );
}
