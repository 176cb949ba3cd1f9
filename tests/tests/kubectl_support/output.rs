//! What `kubectl get` prints: server-side Table columns per kind, and every `-o` format
//! (`json`, `yaml`, `wide`, `name`, `jsonpath`, `custom-columns`, `go-template`), sorting,
//! label columns, several types at once and paging with `--chunk-size`.

use crate::asserts::{assert_contains, assert_line, json};
use crate::harness::{Cluster, columns, fixture};

#[test]
fn create_and_get_print_upstream_columns() {
    let c = Cluster::start();
    assert_eq!(
        c.ok(&["create", "namespace", "team-a"]).trim(),
        "namespace/team-a created"
    );
    let ns = c.ok(&["get", "namespace", "team-a"]);
    assert_line(&ns, "NAME STATUS AGE");
    assert_line(&ns, "team-a Active");

    assert_eq!(
        c.ok(&[
            "create",
            "configmap",
            "cfg",
            "--from-literal=a=1",
            "--from-literal=b=2"
        ])
        .trim(),
        "configmap/cfg created"
    );
    let cm = c.ok(&["get", "configmap", "cfg"]);
    assert_line(&cm, "NAME DATA AGE");
    assert_line(&cm, "cfg 2 ");

    assert_eq!(
        c.ok(&["create", "secret", "generic", "sec", "--from-literal=k=v"])
            .trim(),
        "secret/sec created"
    );
    let secret = c.ok(&["get", "secret", "sec"]);
    assert_line(&secret, "NAME TYPE DATA AGE");
    assert_line(&secret, "sec Opaque 1 ");

    assert_eq!(
        c.ok(&[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.25",
            "--replicas=2"
        ])
        .trim(),
        "deployment.apps/web created"
    );
    let deploy = c.ok(&["get", "deployments"]);
    assert_line(&deploy, "NAME READY UP-TO-DATE AVAILABLE AGE");
    assert_line(&deploy, "web 0/2 0 0 ");
    let wide = c.ok(&["get", "deployment", "web", "-o", "wide"]);
    assert_line(
        &wide,
        "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR",
    );
    assert!(
        columns(&wide)[1].ends_with("nginx nginx:1.25 app=web"),
        "{wide}"
    );

    assert_eq!(
        c.ok(&["create", "service", "clusterip", "svc", "--tcp=80:8080"])
            .trim(),
        "service/svc created"
    );
    let svc = c.ok(&["get", "service", "svc"]);
    assert_line(&svc, "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE");
    let row = &columns(&svc)[1];
    let cells: Vec<&str> = row.split(' ').collect();
    assert_eq!(
        (cells[0], cells[1], cells[3], cells[4]),
        ("svc", "ClusterIP", "<none>", "80/TCP"),
        "{svc}"
    );
    assert!(
        cells[2].parse::<std::net::IpAddr>().is_ok(),
        "cluster IP {}",
        cells[2]
    );

    let pods = c.run(&["get", "pods"]);
    assert_eq!(pods.code, Some(0));
    assert_contains(&pods.stderr, "No resources found in default namespace.");

    c.ok(&["create", "-f", &fixture("pod.yaml")]);
    let pods = c.ok(&["get", "pods", "-o", "wide"]);
    assert_line(
        &pods,
        "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES",
    );
    assert_line(&pods, "web-pod 0/1 Pending 0 ");
    assert!(
        columns(&pods)[1].ends_with("<none> <none> <none> <none>"),
        "{pods}"
    );

    let all = c.ok(&["get", "all"]);
    assert_contains(&all, "service/kubernetes");
    assert_contains(&all, "deployment.apps/web");
    assert_contains(&all, "pod/web-pod");
}

#[test]
fn output_formats() {
    let c = Cluster::start();
    c.ok(&[
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]);
    let obj = json(&c.ok(&["get", "configmap", "cfg", "-o", "json"]));
    assert_eq!(obj["kind"], "ConfigMap");
    assert_eq!(obj["data"]["a"], "1");
    let list = json(&c.ok(&["get", "configmaps", "-o", "json"]));
    assert_eq!(list["kind"], "List");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["metadata"]["name"] == "cfg")
    );
    let yaml = c.ok(&["get", "configmap", "cfg", "-o", "yaml"]);
    assert_contains(&yaml, "kind: ConfigMap");
    assert_contains(&yaml, "  name: cfg");
    assert_eq!(
        c.ok(&["get", "configmap", "cfg", "-o", "name"]).trim(),
        "configmap/cfg"
    );
    assert_eq!(
        c.ok(&["get", "configmap", "cfg", "-o", "jsonpath={.data.b}"]),
        "2"
    );
    let custom = c.ok(&[
        "get",
        "configmap",
        "cfg",
        "-o",
        "custom-columns=NAME:.metadata.name,A:.data.a",
    ]);
    assert_eq!(columns(&custom), ["NAME A", "cfg 1"]);
    let no_headers = c.ok(&["get", "configmap", "cfg", "--no-headers"]);
    assert_line(&no_headers, "cfg 2 ");

    // `--sort-by` asks for Tables with `includeObject=Object` and sorts on the objects.
    c.ok(&[
        "create",
        "deployment",
        "big",
        "--image=nginx",
        "--replicas=3",
    ]);
    c.ok(&[
        "create",
        "deployment",
        "small",
        "--image=nginx",
        "--replicas=1",
    ]);
    let sorted = columns(&c.ok(&[
        "get",
        "deployments",
        "--sort-by=.spec.replicas",
        "--no-headers",
    ]));
    let names: Vec<&str> = sorted.iter().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(names, ["small", "big"], "{sorted:?}");
    let reversed = columns(&c.ok(&[
        "get",
        "deployments",
        "--sort-by=.metadata.name",
        "--no-headers",
    ]));
    assert!(
        reversed[0].starts_with("big ") && reversed[1].starts_with("small "),
        "{reversed:?}"
    );
}

#[test]
fn more_output_formats_and_paging() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "team-b"]);
    for i in 0..7 {
        c.ok(&[
            "create",
            "configmap",
            &format!("cm-{i}"),
            &format!("--from-literal=n={i}"),
        ]);
    }
    c.ok(&["create", "configmap", "elsewhere", "-n", "team-b"]);
    // Paging: kubectl lists with limit/continue and prints one table.
    let paged = c.ok(&[
        "get",
        "configmaps",
        "--chunk-size=2",
        "--no-headers",
        "-o",
        "name",
    ]);
    assert_eq!(
        columns(&paged),
        (0..7)
            .map(|i| format!("configmap/cm-{i}"))
            .collect::<Vec<_>>()
    );
    let all = c.ok(&["get", "configmaps", "-A", "--chunk-size=3"]);
    assert_line(&all, "NAMESPACE NAME DATA AGE");
    assert_line(&all, "team-b elsewhere 0 ");
    assert_line(&all, "default cm-6 1 ");

    let range = c.ok(&[
        "get",
        "configmaps",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.data.n}{\"\\n\"}{end}",
    ]);
    assert_eq!(
        range.lines().take(2).collect::<Vec<_>>(),
        ["cm-0=0", "cm-1=1"]
    );
    assert_eq!(
        c.ok(&["get", "cm", "cm-3", "-o", "go-template={{.data.n}}"]),
        "3"
    );
    assert_eq!(
        c.ok(&["get", "cm", "cm-3", "-o", "jsonpath={.data.missing}"]),
        ""
    );
    let strict = c.fails(&[
        "get",
        "cm",
        "cm-3",
        "-o",
        "jsonpath={.data.missing}",
        "--allow-missing-template-keys=false",
    ]);
    assert_contains(&strict, "missing is not found");
    let template = c.write_file("columns.txt", "NAME          VALUE\nmetadata.name data.n\n");
    let custom = c.ok(&[
        "get",
        "cm",
        "cm-1",
        "cm-2",
        &format!("-o=custom-columns-file={template}"),
    ]);
    assert_eq!(columns(&custom), ["NAME VALUE", "cm-1 1", "cm-2 2"]);
    assert_contains(
        &c.fails(&["get", "cm", "-o", "bogus"]),
        "unable to match a printer suitable for the output format \"bogus\"",
    );

    // Several types in one call, with kinds shown.
    c.ok(&["create", "deployment", "web", "--image=nginx"]);
    let mixed = c.ok(&["get", "deployments,configmaps", "-o", "name"]);
    assert_eq!(columns(&mixed)[0], "deployment.apps/web");
    assert!(
        columns(&mixed).contains(&"configmap/cm-0".to_owned()),
        "{mixed}"
    );
    let kinds = c.ok(&["get", "deploy/web", "cm/cm-0"]);
    assert_line(&kinds, "deployment.apps/web 0/1 0 0 ");
    assert_line(&kinds, "configmap/cm-0 1 ");
    let yaml_list = c.ok(&["get", "cm", "cm-0", "cm-1", "-o", "yaml"]);
    assert!(
        yaml_list.starts_with("apiVersion: v1\nitems:\n"),
        "{yaml_list}"
    );
    assert_contains(&yaml_list, "kind: List");
    let node = c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-1\n  labels: {zone: a}\n",
    );
    assert_eq!(node.trim(), "node/node-1 created");
    let nodes = c.ok(&["get", "nodes", "-o", "wide"]);
    assert_line(
        &nodes,
        "NAME STATUS ROLES AGE VERSION INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME",
    );
    assert_line(&nodes, "node-1 Unknown <none> ");
    assert_eq!(
        columns(&c.ok(&["get", "nodes", "-L", "zone", "--no-headers"]))[0]
            .split(' ')
            .last(),
        Some("a")
    );
}
