//! `kubectl scale` and `kubectl rollout` (status, history, undo, restart, pause, resume).
//!
//! No deployment controller exists yet, so the rollout cases create what it would: a
//! ReplicaSet per template (controller owner reference to the Deployment, the
//! `pod-template-hash` label, the `deployment.kubernetes.io/revision` annotation) and the
//! Deployment's status. kubectl's behaviour is then checked against those API objects,
//! exactly as it reads them from kube-apiserver.

use serde_json::{Value, json};

use crate::asserts::{assert_contains, assert_line, json};
use crate::harness::{Cluster, columns};

const REPLICA_SET: &str = "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: frontend
spec:
  replicas: 1
  selector:
    matchLabels: {app: frontend}
  template:
    metadata:
      labels: {app: frontend}
    spec:
      containers: [{name: web, image: nginx}]
";

const STATEFUL_SET: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 1
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers: [{name: db, image: postgres}]
";

const REPLICATION_CONTROLLER: &str = "apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
spec:
  replicas: 1
  selector: {app: legacy}
  template:
    metadata:
      labels: {app: legacy}
    spec:
      containers: [{name: web, image: nginx}]
";

#[test]
fn scale_every_scalable_kind() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=nginx:1.25"]);
    c.ok_stdin(&["create", "-f", "-"], REPLICA_SET);
    c.ok_stdin(&["create", "-f", "-"], STATEFUL_SET);
    c.ok_stdin(&["create", "-f", "-"], REPLICATION_CONTROLLER);
    for (object, printed, jsonpath_target) in [
        (
            "deployment/web",
            "deployment.apps/web scaled",
            "deployment/web",
        ),
        (
            "rs/frontend",
            "replicaset.apps/frontend scaled",
            "replicaset/frontend",
        ),
        (
            "statefulset/db",
            "statefulset.apps/db scaled",
            "statefulset/db",
        ),
        (
            "rc/legacy",
            "replicationcontroller/legacy scaled",
            "replicationcontroller/legacy",
        ),
    ] {
        assert_eq!(c.ok(&["scale", object, "--replicas=4"]).trim(), printed);
        assert_eq!(
            c.ok(&["get", jsonpath_target, "-o", "jsonpath={.spec.replicas}"]),
            "4",
            "{object}"
        );
    }
    // The subresource prints as a Scale.
    let scale = columns(&c.ok(&["get", "deployment/web", "--subresource=scale"]));
    assert_eq!(scale[0], "NAME DESIRED AVAILABLE AGE");
    assert!(scale[1].starts_with("web 4 0 "), "{scale:?}");
    // Several objects at once, and the preconditions kubectl checks before it writes.
    let both = c.ok(&["scale", "--replicas=2", "deployment/web", "rs/frontend"]);
    assert_eq!(
        columns(&both),
        [
            "deployment.apps/web scaled",
            "replicaset.apps/frontend scaled"
        ]
    );
    assert_contains(
        &c.fails(&[
            "scale",
            "deployment/web",
            "--replicas=3",
            "--current-replicas=5",
        ]),
        "Expected replicas to be 5, was 2",
    );
    let rv = c.ok(&[
        "get",
        "deployment/web",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    c.ok(&["label", "deployment/web", "touched=yes"]);
    let stale = c.fails(&[
        "scale",
        "deployment/web",
        "--replicas=3",
        &format!("--resource-version={rv}"),
    ]);
    // kubectl checks the precondition itself before it writes.
    assert_contains(
        &stale,
        &format!("error: Expected resource version to be {rv}, was "),
    );
    assert_eq!(
        c.ok(&[
            "scale",
            "deployment/web",
            "--replicas=3",
            "--dry-run=server"
        ])
        .trim(),
        "deployment.apps/web scaled (server dry run)"
    );
    assert_eq!(
        c.ok(&["get", "deployment/web", "-o", "jsonpath={.spec.replicas}"]),
        "2"
    );

    // Kinds without a scale subresource, and objects that do not exist.
    c.ok(&["create", "configmap", "cfg"]);
    let err = c.fails(&["scale", "configmap/cfg", "--replicas=2"]);
    assert_contains(
        &err,
        "Error from server (NotFound): the server could not find the requested resource",
    );
    assert_contains(
        &c.fails(&["scale", "deployment/nope", "--replicas=2"]),
        "error: no objects passed to scale deployments.apps \"nope\" not found",
    );
    assert_contains(
        &c.fails(&["scale", "widgets/x", "--replicas=2"]),
        "error: the server doesn't have a resource type \"widgets\"",
    );
}

#[test]
fn scale_writes_record_managed_fields_of_the_scale_subresource() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=nginx:1.25"]);
    c.ok(&["scale", "deployment/web", "--replicas=3"]);
    let obj = json(&c.ok(&[
        "get",
        "deployment/web",
        "-o",
        "json",
        "--show-managed-fields",
    ]));
    let entries = obj["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    let scale = entries
        .iter()
        .find(|e| e["subresource"] == "scale")
        .unwrap_or_else(|| panic!("no scale entry in {entries:?}"));
    // kubectl scale has no --field-manager: the manager is the user agent's program name.
    assert_eq!(scale["manager"], c.binary_name(), "{scale}");
    assert_eq!(scale["operation"], "Update");
    assert_eq!(scale["apiVersion"], "apps/v1", "{scale}");
    assert_eq!(scale["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    // The creator no longer owns the replicas.
    let create = entries
        .iter()
        .find(|e| e["manager"] == "kubectl-create")
        .expect("kubectl-create entry");
    assert!(
        create["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
        "{create}"
    );
    // An applier that sets the replicas now conflicts with the scaler.
    let err = c.fails_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=deployer",
            "-f",
            "-",
        ],
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 5\n",
    );
    assert_contains(
        &err,
        &format!(
            "conflict with \"{}\" with subresource \"scale\" using apps/v1: .spec.replicas",
            c.binary_name()
        ),
    );
}

/// Creates the ReplicaSet the deployment controller would make for `deploy`'s current
/// template at `revision`, and marks the Deployment as fully rolled out to it.
fn roll_out(c: &Cluster, deploy: &str, revision: u32) {
    let d = json(&c.ok(&["get", "deployment", deploy, "-o", "json"]));
    let hash = format!("hash{revision}");
    let mut template = d["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let replicas = d["spec"]["replicas"].clone();
    let rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{deploy}-{hash}"),
            "labels": template["metadata"]["labels"],
            "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": deploy,
                "uid": d["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    });
    c.ok_stdin(&["create", "-f", "-"], &rs.to_string());
    // Older ReplicaSets are scaled to zero, as the controller does.
    for older in 1..revision {
        c.ok(&["scale", &format!("rs/{deploy}-hash{older}"), "--replicas=0"]);
    }
    c.ok(&[
        "annotate",
        "deployment",
        deploy,
        "--overwrite",
        &format!("deployment.kubernetes.io/revision={revision}"),
    ]);
    set_status(
        c,
        deploy,
        replicas.as_i64().unwrap_or(1),
        replicas.as_i64().unwrap_or(1),
    );
}

/// Writes the Deployment status the controller would report.
fn set_status(c: &Cluster, deploy: &str, updated: i64, available: i64) {
    let generation: i64 = c
        .ok(&[
            "get",
            "deployment",
            deploy,
            "-o",
            "jsonpath={.metadata.generation}",
        ])
        .parse()
        .expect("generation");
    let status: Value = json!({"status": {
        "observedGeneration": generation, "replicas": updated.max(available), "updatedReplicas": updated,
        "readyReplicas": available, "availableReplicas": available,
    }});
    c.ok(&[
        "patch",
        "deployment",
        deploy,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
}

#[test]
fn rollout_status_history_undo() {
    let c = Cluster::start();
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
    ]);
    // Before the controller has observed the spec, kubectl keeps waiting.
    let early = c.ok(&["rollout", "status", "deployment/web", "--watch=false"]);
    assert_eq!(
        early.trim(),
        "Waiting for deployment spec update to be observed..."
    );
    roll_out(&c, "web", 1);
    assert_eq!(
        c.ok(&["set", "image", "deployment/web", "nginx=nginx:1.26"])
            .trim(),
        "deployment.apps/web image updated"
    );
    roll_out(&c, "web", 2);

    assert_eq!(
        c.ok(&["rollout", "status", "deployment/web"]).trim(),
        "deployment \"web\" successfully rolled out"
    );
    let history = c.ok(&["rollout", "history", "deployment/web"]);
    assert_eq!(
        columns(&history),
        [
            "deployment.apps/web",
            "REVISION CHANGE-CAUSE",
            "1 <none>",
            "2 <none>"
        ]
    );
    let first = c.ok(&["rollout", "history", "deployment/web", "--revision=1"]);
    assert_line(&first, "deployment.apps/web with revision #1");
    assert_line(&first, "Image: nginx:1.25");
    assert_contains(
        &c.fails(&["rollout", "history", "deployment/web", "--revision=9"]),
        "unable to find the specified revision",
    );

    // A rollout in progress: half the new replicas exist.
    c.ok(&["set", "image", "deployment/web", "nginx=nginx:1.27"]);
    set_status(&c, "web", 1, 1);
    let progress = c.ok(&["rollout", "status", "deployment/web", "--watch=false"]);
    assert_eq!(
        progress.trim(),
        "Waiting for deployment \"web\" rollout to finish: 1 out of 2 new replicas have been updated..."
    );
    let timeout = c.run(&["rollout", "status", "deployment/web", "--timeout=2s"]);
    assert_eq!(timeout.code, Some(1), "{}", timeout.stdout);
    assert_contains(
        &timeout.stderr,
        "error: timed out waiting for the condition",
    );

    // Undo patches the template of revision 1's ReplicaSet back (a JSON patch).
    c.ok(&["set", "image", "deployment/web", "nginx=nginx:1.26"]);
    assert_eq!(
        c.ok(&["rollout", "undo", "deployment/web", "--to-revision=1"])
            .trim(),
        "deployment.apps/web rolled back"
    );
    let image = "jsonpath={.spec.template.spec.containers[0].image}";
    assert_eq!(c.ok(&["get", "deployment/web", "-o", image]), "nginx:1.25");
    let labels = c.ok(&[
        "get",
        "deployment/web",
        "-o",
        "jsonpath={.spec.template.metadata.labels}",
    ]);
    assert!(
        !labels.contains("pod-template-hash"),
        "the hash label leaked into the template: {labels}"
    );
    let same = c.ok(&["rollout", "undo", "deployment/web", "--to-revision=1"]);
    assert_eq!(
        same.trim(),
        "deployment.apps/web skipped rollback (current template already matches revision 1)"
    );
    assert_contains(
        &c.fails(&["rollout", "undo", "deployment/web", "--to-revision=7"]),
        "unable to find specified revision 7 in history",
    );

    assert_eq!(
        c.ok(&["rollout", "pause", "deployment/web"]).trim(),
        "deployment.apps/web paused"
    );
    assert_contains(
        &c.fails(&["rollout", "undo", "deployment/web"]),
        "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again",
    );
    assert_eq!(
        c.ok(&["rollout", "resume", "deployment/web"]).trim(),
        "deployment.apps/web resumed"
    );
    assert_contains(
        &c.fails(&["rollout", "resume", "deployment/web"]),
        "error: deployments.apps \"web\" is not paused",
    );
}

#[test]
fn rollout_restart_patches_the_template_annotation() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=nginx"]);
    let before = c.ok(&[
        "get",
        "deployment/web",
        "-o",
        "jsonpath={.metadata.generation}",
    ]);
    assert_eq!(
        c.ok(&["rollout", "restart", "deployment/web"]).trim(),
        "deployment.apps/web restarted"
    );
    let at = c.ok(&[
        "get",
        "deployment/web",
        "-o",
        "jsonpath={.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
    ]);
    // RFC 3339 as kubectl writes it: 2006-01-02T15:04:05Z07:00.
    assert!(
        at.len() >= 20 && at.as_bytes()[10] == b'T',
        "restartedAt is not a timestamp: {at:?}"
    );
    let after = c.ok(&[
        "get",
        "deployment/web",
        "-o",
        "jsonpath={.metadata.generation}",
    ]);
    assert_ne!(before, after, "a template change bumps the generation");
    let obj = json(&c.ok(&[
        "get",
        "deployment/web",
        "-o",
        "json",
        "--show-managed-fields",
    ]));
    let managers: Vec<&str> = obj["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|e| e["manager"].as_str())
        .collect();
    assert!(managers.contains(&"kubectl-rollout"), "{managers:?}");

    c.ok_stdin(&["create", "-f", "-"], STATEFUL_SET);
    assert_eq!(
        c.ok(&["rollout", "restart", "statefulset/db"]).trim(),
        "statefulset.apps/db restarted"
    );
    c.ok(&["create", "configmap", "cfg"]);
    assert_contains(
        &c.fails(&["rollout", "restart", "configmap/cfg"]),
        "restarting is not supported",
    );
}
