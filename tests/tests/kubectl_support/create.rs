//! The generators: `kubectl create deployment|service|configmap|secret|job`, `kubectl run`
//! and `kubectl expose`, with what the server answers to invalid or duplicate objects.

use crate::asserts::{assert_contains, assert_line, json};
use crate::harness::{Cluster, columns};

#[test]
fn create_configmaps_and_secrets_from_literals_and_files() {
    let c = Cluster::start();
    let props = c.write_file("game.properties", "lives=3\nenemies=aliens\n");
    let env = c.write_file("app.env", "# comment\nMODE=prod\nDEBUG=false\n");
    let out = c.ok(&[
        "create",
        "configmap",
        "game",
        &format!("--from-file={props}"),
        "--from-literal=extra=1",
    ]);
    assert_eq!(out.trim(), "configmap/game created");
    let cm = json(&c.ok(&["get", "configmap", "game", "-o", "json"]));
    assert_eq!(cm["data"]["game.properties"], "lives=3\nenemies=aliens\n");
    assert_eq!(cm["data"]["extra"], "1");
    c.ok(&[
        "create",
        "configmap",
        "renamed",
        &format!("--from-file=settings={props}"),
    ]);
    assert_eq!(
        c.ok(&["get", "cm", "renamed", "-o", "jsonpath={.data.settings}"]),
        "lives=3\nenemies=aliens\n"
    );
    c.ok(&[
        "create",
        "configmap",
        "env",
        &format!("--from-env-file={env}"),
    ]);
    assert_eq!(
        c.ok(&["get", "cm", "env", "-o", "jsonpath={.data}"]),
        r#"{"DEBUG":"false","MODE":"prod"}"#
    );

    assert_eq!(
        c.ok(&[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=user=admin",
            &format!("--from-file=props={props}")
        ])
        .trim(),
        "secret/creds created"
    );
    assert_eq!(
        c.ok(&["get", "secret", "creds", "-o", "jsonpath={.data.user}"]),
        "YWRtaW4="
    );
    assert_eq!(
        c.ok(&["get", "secret", "creds", "-o", "jsonpath={.type}"]),
        "Opaque"
    );
    let registry = c.ok(&[
        "create",
        "secret",
        "docker-registry",
        "pull",
        "--docker-server=registry.example",
        "--docker-username=u",
        "--docker-password=p",
    ]);
    assert_eq!(registry.trim(), "secret/pull created");
    assert_line(
        &c.ok(&["get", "secret", "pull"]),
        "pull kubernetes.io/dockerconfigjson 1 ",
    );

    // Bad keys are refused by kubectl; duplicates and bad names by the server.
    assert_contains(
        &c.fails(&["create", "configmap", "bad", "--from-literal=no/slash=1"]),
        "\"no/slash\" is not a valid key name for a ConfigMap",
    );
    let invalid = c.fails(&["create", "configmap", "Bad_Name", "--from-literal=a=1"]);
    assert_contains(
        &invalid,
        "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain",
    );
    assert_contains(
        &c.fails(&["create", "secret", "generic", "creds"]),
        "error: failed to create secret secrets \"creds\" already exists",
    );
}

#[test]
fn create_deployments_services_and_jobs() {
    let c = Cluster::start();
    let out = c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--port=80",
        "--replicas=3",
    ]);
    assert_eq!(out.trim(), "deployment.apps/web created");
    let d = json(&c.ok(&["get", "deployment", "web", "-o", "json"]));
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    // Defaults the server fills in, as kube-apiserver does.
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    let dup = c.fails(&["create", "deployment", "web", "--image=nginx"]);
    assert_contains(
        &dup,
        "error: failed to create deployment: deployments.apps \"web\" already exists",
    );
    let invalid = c.fails(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=-1",
    ]);
    // `create deployment` wraps the server's message, which qualifies the kind by its group.
    assert_contains(
        &invalid,
        "error: failed to create deployment: Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    );

    assert_eq!(
        c.ok(&[
            "create",
            "service",
            "nodeport",
            "np",
            "--tcp=80:8080",
            "--node-port=30080"
        ])
        .trim(),
        "service/np created"
    );
    let svc = c.ok(&["get", "service", "np"]);
    assert!(columns(&svc)[1].starts_with("np NodePort "), "{svc}");
    assert!(columns(&svc)[1].contains(" 80:30080/TCP "), "{svc}");
    let taken = c.fails(&[
        "create",
        "service",
        "nodeport",
        "np2",
        "--tcp=80:8080",
        "--node-port=30080",
    ]);
    assert_contains(
        &taken,
        "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated",
    );
    assert_eq!(
        c.ok(&[
            "create",
            "service",
            "clusterip",
            "headless",
            "--clusterip=None"
        ])
        .trim(),
        "service/headless created"
    );
    assert_eq!(
        c.ok(&["get", "svc", "headless", "-o", "jsonpath={.spec.clusterIP}"]),
        "None"
    );

    assert_eq!(
        c.ok(&[
            "create",
            "job",
            "once",
            "--image=busybox",
            "--",
            "echo",
            "hi"
        ])
        .trim(),
        "job.batch/once created"
    );
    let job = json(&c.ok(&["get", "job", "once", "-o", "json"]));
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["echo", "hi"])
    );
    // The server generates the selector and labels of a Job.
    assert!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"].is_string(),
        "{job}"
    );
}

#[test]
fn run_creates_a_pod_and_expose_makes_services() {
    let c = Cluster::start();
    let out = c.ok(&[
        "run",
        "nginx",
        "--image=nginx:1.25",
        "--port=80",
        "--env=MODE=prod",
        "--labels=tier=web",
    ]);
    assert_eq!(out.trim(), "pod/nginx created");
    let pod = json(&c.ok(&["get", "pod", "nginx", "-o", "json"]));
    assert_eq!(pod["metadata"]["labels"]["tier"], "web");
    assert_eq!(pod["spec"]["containers"][0]["env"][0]["value"], "prod");
    assert_eq!(pod["spec"]["restartPolicy"], "Always");
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_line(&c.ok(&["get", "pods"]), "nginx 0/1 Pending 0 ");
    let dup = c.fails(&["run", "nginx", "--image=nginx"]);
    assert_contains(
        &dup,
        "Error from server (AlreadyExists): pods \"nginx\" already exists",
    );
    let dry = c.ok(&[
        "run",
        "draft",
        "--image=busybox",
        "--restart=Never",
        "--dry-run=server",
        "-o",
        "name",
    ]);
    assert_eq!(dry.trim(), "pod/draft");
    assert_contains(
        &c.fails(&["get", "pod", "draft"]),
        "pods \"draft\" not found",
    );
    assert_contains(
        &c.fails(&["run", "bad", "--image=nginx", "--restart=Sometimes"]),
        "invalid restart policy: Sometimes",
    );

    assert_eq!(
        c.ok(&[
            "expose",
            "pod",
            "nginx",
            "--port=8080",
            "--target-port=80",
            "--name=nginx-svc"
        ])
        .trim(),
        "service/nginx-svc exposed"
    );
    let svc = json(&c.ok(&["get", "svc", "nginx-svc", "-o", "json"]));
    assert_eq!(svc["spec"]["selector"]["tier"], "web");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
    c.ok(&[
        "create",
        "deployment",
        "api",
        "--image=nginx",
        "--port=9000",
    ]);
    assert_eq!(
        c.ok(&["expose", "deployment", "api", "--type=NodePort"])
            .trim(),
        "service/api exposed"
    );
    let api = c.ok(&[
        "get",
        "svc",
        "api",
        "-o",
        "jsonpath={.spec.type} {.spec.ports[0].port} {.spec.ports[0].nodePort}",
    ]);
    let fields: Vec<&str> = api.split(' ').collect();
    assert_eq!(fields[..2], ["NodePort", "9000"], "{api}");
    assert!(
        fields[2]
            .parse::<u16>()
            .is_ok_and(|p| (30000..=32767).contains(&p)),
        "{api}"
    );
    c.ok(&["create", "configmap", "cfg"]);
    assert_contains(
        &c.fails(&["expose", "configmap", "cfg", "--port=80"]),
        "cannot expose a ConfigMap",
    );
    assert_contains(
        &c.fails(&["expose", "deployment", "api"]),
        "Error from server (AlreadyExists): services \"api\" already exists",
    );
}
