//! The error cases of upstream's test/cmd: unknown kinds, invalid objects (422 with the
//! field causes), duplicates, forbidden and immutable field changes, stale updates.

use crate::asserts::assert_contains;
use crate::harness::{Cluster, fixture};

#[test]
fn error_cases() {
    let c = Cluster::start();
    assert_contains(
        &c.fails(&["get", "foos"]),
        "error: the server doesn't have a resource type \"foos\"",
    );

    let invalid = c.fails(&["create", "-f", &fixture("pod-invalid.yaml")]);
    assert_contains(&invalid, "The Pod \"bad\" is invalid");
    assert_contains(&invalid, "spec.containers: Required value");

    c.ok(&["create", "configmap", "dup"]);
    // `kubectl create configmap` wraps the server's error (create_configmap.go); `create -f`
    // prints it as `Error from server (<reason>): error when creating "<source>": ...`.
    assert_contains(
        &c.fails(&["create", "configmap", "dup"]),
        "error: failed to create configmap: configmaps \"dup\" already exists",
    );
    let dup = c.fails_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dup\n",
    );
    assert_contains(
        &dup,
        "Error from server (AlreadyExists): error when creating \"STDIN\": configmaps \"dup\" already exists",
    );

    c.ok(&["create", "-f", &fixture("pod.yaml")]);
    let forbidden = c.fails(&[
        "patch",
        "pod",
        "web-pod",
        "--type=merge",
        "-p",
        r#"{"spec":{"restartPolicy":"Never"}}"#,
    ]);
    assert_contains(
        &forbidden,
        "Forbidden: pod updates may not change fields other than",
    );

    c.ok(&["create", "deployment", "web", "--image=nginx"]);
    let immutable = c.fails(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"selector":{"matchLabels":{"app":"other"}}}}"#,
    ]);
    assert_contains(&immutable, "field is immutable");

    // Optimistic concurrency: replacing with a stale resourceVersion is a 409.
    let stale = c.ok(&["get", "configmap", "dup", "-o", "json"]);
    c.ok(&["label", "configmap", "dup", "touched=yes"]);
    let conflict = c.fails_stdin(&["replace", "-f", "-"], &stale);
    assert_contains(
        &conflict,
        "the object has been modified; please apply your changes to the latest version and try again",
    );

    assert_contains(
        &c.fails(&["get", "pod", "missing"]),
        "Error from server (NotFound): pods \"missing\" not found",
    );
    assert_contains(
        &c.fails(&["get", "configmaps", "-n", "nowhere", "nope"]),
        "not found",
    );
}

// SCRATCH (temporary, removed before hand-in)

#[test]
fn error_exit_codes_and_messages() {
    let c = Cluster::start();
    // Every server error exits with code 1, as upstream (`cmdutil.CheckErr`).
    let missing = c.run(&["get", "configmap", "missing"]);
    assert_eq!(missing.code, Some(1));
    assert_eq!(missing.stdout, "");
    assert_eq!(
        missing.stderr.trim(),
        "Error from server (NotFound): configmaps \"missing\" not found"
    );
    let unknown = c.run(&["get", "widgets.example.com"]);
    assert_eq!(unknown.code, Some(1));
    assert_eq!(
        unknown.stderr.trim(),
        "error: the server doesn't have a resource type \"widgets\""
    );
    let ns = c.fails(&["create", "configmap", "x", "-n", "no-such-namespace"]);
    assert_contains(&ns, "namespaces \"no-such-namespace\" not found");
    // Several invalid fields are listed together.
    let invalid = c.fails_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: Bad\nspec:\n  ports:\n  - port: 70000\n",
    );
    assert_contains(&invalid, "The Service \"Bad\" is invalid: ");
    assert_contains(&invalid, "metadata.name: Invalid value: \"Bad\"");
    assert_contains(
        &invalid,
        "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    // A Service's clusterIP cannot change once set.
    c.ok(&["create", "service", "clusterip", "svc", "--tcp=80:80"]);
    let ip = c.ok(&["get", "svc", "svc", "-o", "jsonpath={.spec.clusterIP}"]);
    let other = if ip.ends_with(".99") {
        ip.replace(".99", ".98")
    } else {
        format!(
            "{}.99",
            ip.rsplit_once('.').map(|(a, _)| a).unwrap_or("10.96.0")
        )
    };
    let immutable = c.fails(&[
        "patch",
        "svc",
        "svc",
        "--type=merge",
        "-p",
        &format!(r#"{{"spec":{{"clusterIP":"{other}","clusterIPs":["{other}"]}}}}"#),
    ]);
    assert_contains(&immutable, "spec.clusterIPs[0]: Invalid value: []string{\"");
    assert_contains(&immutable, "may not change once set");
    // A pod's image may change; its containers may not be added.
    c.ok(&["run", "web", "--image=nginx"]);
    c.ok(&["set", "image", "pod/web", "web=nginx:1.27"]);
    let add = c.fails(&[
        "patch",
        "pod",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/containers/-","value":{"name":"more","image":"busybox"}}]"#,
    ]);
    assert_contains(
        &add,
        "Forbidden: pod updates may not change fields other than",
    );
}
