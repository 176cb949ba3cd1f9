//! Discovery, OpenAPI (`kubectl explain`, `--validate=strict`) and the admin kubeconfig.

use crate::asserts::{assert_contains, assert_line, json};
use crate::harness::{Cluster, columns, fixture};

#[test]
fn discovery_api_resources_and_versions() {
    let c = Cluster::start();
    let out = c.ok(&["api-resources"]);
    assert_line(&out, "NAME SHORTNAMES APIVERSION NAMESPACED KIND");
    assert_line(&out, "pods po v1 true Pod");
    assert_line(&out, "namespaces ns v1 false Namespace");
    assert_line(&out, "deployments deploy apps/v1 true Deployment");
    assert_line(&out, "jobs batch/v1 true Job");
    assert_line(
        &out,
        "endpointslices discovery.k8s.io/v1 true EndpointSlice",
    );
    for line in [
        "cronjobs cj batch/v1 true CronJob",
        "horizontalpodautoscalers hpa autoscaling/v2 true HorizontalPodAutoscaler",
        "poddisruptionbudgets pdb policy/v1 true PodDisruptionBudget",
        "persistentvolumes pv v1 false PersistentVolume",
        "ingresses ing networking.k8s.io/v1 true Ingress",
        "clusterroles rbac.authorization.k8s.io/v1 false ClusterRole",
        "priorityclasses pc scheduling.k8s.io/v1 false PriorityClass",
        "storageclasses sc storage.k8s.io/v1 false StorageClass",
    ] {
        assert_line(&out, line);
    }
    let cluster_scoped = c.ok(&["api-resources", "--namespaced=false", "-o", "name"]);
    assert!(
        columns(&cluster_scoped).contains(&"nodes".to_owned()),
        "{cluster_scoped}"
    );
    let apps = c.ok(&["api-resources", "--api-group=apps", "-o", "name"]);
    assert!(
        columns(&apps).contains(&"deployments.apps".to_owned()),
        "{apps}"
    );
    let versions = columns(&c.ok(&["api-versions"]));
    for v in [
        "apps/v1",
        "autoscaling/v1",
        "autoscaling/v2",
        "batch/v1",
        "rbac.authorization.k8s.io/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
        "networking.k8s.io/v1",
        "v1",
    ] {
        assert!(
            versions.contains(&v.to_owned()),
            "{v} missing from {versions:?}"
        );
    }

    // kubectl asks for aggregated discovery; clients that do not still get the legacy documents.
    assert_eq!(
        json(&c.ok(&["get", "--raw", "/api"]))["kind"],
        "APIVersions"
    );
    assert_eq!(
        json(&c.ok(&["get", "--raw", "/apis"]))["kind"],
        "APIGroupList"
    );
    let apps = json(&c.ok(&["get", "--raw", "/apis/apps/v1"]));
    assert_eq!(apps["kind"], "APIResourceList");
    assert!(
        apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "deployments/scale"),
        "{apps}"
    );
    let index = json(&c.ok(&["get", "--raw", "/openapi/v3"]));
    assert!(index["paths"].get("apis/apps/v1").is_some(), "{index}");
}

#[test]
fn admin_kubeconfig_carries_a_client_certificate() {
    let c = Cluster::start();
    let cert = c.ok(&[
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.users[0].user.client-certificate-data}",
    ]);
    let key = c.ok(&[
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.users[0].user.client-key-data}",
    ]);
    assert!(
        cert.len() > 100 && key.len() > 100,
        "no client certificate in the admin kubeconfig"
    );
    // The server asks for client certificates and verifies them against the cluster CA
    // during the handshake: kubectl presenting this one gets through.
    assert_line(&c.ok(&["get", "namespace", "default"]), "default Active");
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
    assert_contains(
        &c.fails(&["explain", "pod.spec.nope"]),
        "field \"nope\" does not exist",
    );
}

#[test]
fn strict_validation_rejects_unknown_fields() {
    let c = Cluster::start();
    let err = c.fails(&[
        "apply",
        "-f",
        &fixture("pod-unknown-field.yaml"),
        "--validate=strict",
    ]);
    assert_contains(&err, "unknown field \"spec.foo\"");
    // A patch that introduces an unknown field warns (fieldValidation=Warn by default).
    c.ok(&["create", "configmap", "plain"]);
    let patched = c.run(&[
        "patch",
        "configmap",
        "plain",
        "--type=merge",
        "-p",
        r#"{"bogus":1}"#,
    ]);
    assert_eq!(patched.code, Some(0), "{}", patched.stderr);
    assert_contains(&patched.stderr, "unknown field \"bogus\"");
    let err = c.fails(&["create", "-f", &fixture("pod-unknown-field.yaml")]);
    assert_contains(
        &err,
        "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.foo\"",
    );
    let warn = c.run(&[
        "create",
        "-f",
        &fixture("pod-unknown-field.yaml"),
        "--validate=warn",
    ]);
    assert_eq!(warn.code, Some(0), "{}", warn.stderr);
    assert_contains(&warn.stderr, "unknown field \"spec.foo\"");
}
