//! Writes that merge: client-side `kubectl apply` (with `--prune`), server-side apply,
//! `kubectl patch` in its three types, `kubectl diff`, `kubectl edit` with a scripted
//! editor, and the managedFields every write records.

use crate::asserts::{assert_contains, assert_diff_line, json};
use crate::harness::{Cluster, fixture};

#[test]
fn ordinary_writes_record_managed_fields() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "owned", "--from-literal=a=1"]);
    c.ok(&["label", "configmap", "owned", "team=a"]);
    c.ok(&[
        "patch",
        "configmap",
        "owned",
        "--type=merge",
        "--field-manager=robot",
        "-p",
        r#"{"data":{"b":"2"}}"#,
    ]);
    let obj = json(&c.ok(&[
        "get",
        "configmap",
        "owned",
        "-o",
        "json",
        "--show-managed-fields",
    ]));
    let entries = obj["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    let owner = |manager: &str| {
        entries
            .iter()
            .find(|e| e["manager"] == manager)
            .unwrap_or_else(|| panic!("no entry for {manager} in {entries:?}"))
    };
    assert_eq!(owner("kubectl-create")["operation"], "Update");
    assert!(
        owner("kubectl-create")["fieldsV1"]["f:data"]
            .get("f:a")
            .is_some(),
        "{entries:?}"
    );
    assert!(
        owner("kubectl-label")["fieldsV1"]["f:metadata"]["f:labels"]
            .get("f:team")
            .is_some(),
        "{entries:?}"
    );
    assert!(
        owner("robot")["fieldsV1"]["f:data"].get("f:b").is_some(),
        "{entries:?}"
    );
    assert!(
        owner("robot")["fieldsV1"]["f:data"].get("f:a").is_none(),
        "{entries:?}"
    );
    // Without --show-managed-fields kubectl hides them, as upstream.
    let plain = json(&c.ok(&["get", "configmap", "owned", "-o", "json"]));
    assert!(plain["metadata"].get("managedFields").is_none());
}

#[test]
fn apply_creates_updates_and_prunes_list_items() {
    let c = Cluster::start();
    assert_eq!(
        c.ok(&["apply", "-f", &fixture("deploy-v1.yaml")]).trim(),
        "deployment.apps/web created"
    );
    let names = "jsonpath={.spec.template.spec.containers[*].name}";
    assert_eq!(
        c.ok(&["get", "deployment", "web", "-o", names]),
        "nginx sidecar"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].ports[*].containerPort}"
        ]),
        "80 8080"
    );
    assert!(
        c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.metadata.annotations}"
        ])
        .contains("kubectl.kubernetes.io/last-applied-configuration"),
        "last-applied annotation missing"
    );

    assert_eq!(
        c.ok(&["apply", "-f", &fixture("deploy-v2.yaml")]).trim(),
        "deployment.apps/web configured"
    );
    assert_eq!(c.ok(&["get", "deployment", "web", "-o", names]), "nginx");
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].ports[*].containerPort}"
        ]),
        "80"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ]),
        "nginx:1.26"
    );
    assert_eq!(
        c.ok(&["apply", "-f", &fixture("deploy-v2.yaml")]).trim(),
        "deployment.apps/web unchanged"
    );
}

#[test]
fn server_side_apply_conflicts_and_force() {
    let c = Cluster::start();
    c.ok(&[
        "create",
        "deployment",
        "ssa",
        "--image=nginx",
        "--replicas=1",
    ]);
    let err = c.fails(&["apply", "--server-side", "-f", &fixture("deploy-ssa.yaml")]);
    assert_contains(
        &err,
        "Apply failed with 1 conflict: conflict with \"kubectl-create\" using apps/v1: .spec.replicas",
    );
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "ssa",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "1"
    );

    let out = c.ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &fixture("deploy-ssa.yaml"),
    ]);
    assert_eq!(out.trim(), "deployment.apps/ssa serverside-applied");
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "ssa",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "3"
    );
    let obj = json(&c.ok(&[
        "get",
        "deployment",
        "ssa",
        "-o",
        "json",
        "--show-managed-fields",
    ]));
    let managers: Vec<(&str, &str)> = obj["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap(),
                e["operation"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(managers.contains(&("kubectl", "Apply")), "{managers:?}");
    assert!(
        managers.contains(&("kubectl-create", "Update")),
        "{managers:?}"
    );

    // A second applier changing the same field conflicts with the first (no apiVersion for appliers).
    let err = c.fails_stdin(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ssa\nspec:\n  replicas: 5\n",
    );
    assert_contains(&err, "conflict with \"kubectl\": .spec.replicas");
}

#[test]
fn patch_strategic_merge_and_json() {
    let c = Cluster::start();
    c.ok(&["apply", "-f", &fixture("deploy-v1.yaml")]);
    let out = c.ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}}}}"#,
    ]);
    assert_eq!(out.trim(), "deployment.apps/web patched");
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].image}"
        ]),
        "nginx:1.27 busybox:1.36"
    );
    let delete_item =
        r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"delete","name":"sidecar"}]}}}}"#;
    c.ok(&[
        "patch",
        "deployment",
        "web",
        "--type=strategic",
        "-p",
        delete_item,
    ]);
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].name}"
        ]),
        "nginx"
    );

    c.ok(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":"frontend"}}}"#,
    ]);
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.metadata.labels.tier}"
        ]),
        "frontend"
    );

    c.ok(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    ]);
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "4"
    );
    let unchanged = c.ok(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":4}}"#,
    ]);
    assert_eq!(unchanged.trim(), "deployment.apps/web patched (no change)");
}

#[test]
fn patch_errors_and_dry_run() {
    let c = Cluster::start();
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ]);
    let failed = c.fails(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
    ]);
    assert_contains(
        &failed,
        "The request is invalid: the server rejected our request due to an error in our request: testing value /spec/replicas failed: test failed",
    );
    let bad = c.fails(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"{"not":"a list"}"#,
    ]);
    assert_contains(&bad, "Error from server (BadRequest)");
    assert_contains(
        &c.fails(&["patch", "deployment", "ghost", "-p", "{}"]),
        "Error from server (NotFound): deployments.apps \"ghost\" not found",
    );
    let dry = c.ok(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":7}}"#,
        "--dry-run=server",
    ]);
    // kubectl 1.32's patch prints no dry-run suffix (unlike scale and delete).
    assert_eq!(dry.trim(), "deployment.apps/web patched");
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "2"
    );
    // Strategic merge: env entries merge by name, `$retainKeys` keeps only the listed keys.
    let env = r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}]}}}}"#;
    c.ok(&["patch", "deployment", "web", "-p", env]);
    let one = r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","env":[{"name":"B","value":"3"}]}]}}}}"#;
    c.ok(&["patch", "deployment", "web", "-p", one]);
    let values = "jsonpath={range .spec.template.spec.containers[0].env[*]}{.name}={.value} {end}";
    assert_eq!(
        c.ok(&["get", "deployment", "web", "-o", values]).trim(),
        "A=1 B=3"
    );
    let recreate = r#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}"#;
    c.ok(&["patch", "deployment", "web", "-p", recreate]);
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.strategy}"
        ]),
        r#"{"type":"Recreate"}"#
    );
}

#[test]
fn diff_against_the_live_object() {
    let c = Cluster::start();
    // Nothing live yet: everything is new (exit code 1 means "differences found").
    let new = c.run(&["diff", "-f", &fixture("deploy-v1.yaml")]);
    assert_eq!(new.code, Some(1), "{}", new.stderr);
    assert!(
        new.stdout.lines().any(|l| l == "+  name: web"),
        "{}",
        new.stdout
    );
    c.ok(&["apply", "-f", &fixture("deploy-v1.yaml")]);
    let same = c.run(&["diff", "-f", &fixture("deploy-v1.yaml")]);
    assert_eq!(
        (same.code, same.stdout.as_str()),
        (Some(0), ""),
        "{}",
        same.stderr
    );
    let changed = c.run(&["diff", "-f", &fixture("deploy-v2.yaml")]);
    assert_eq!(changed.code, Some(1), "{}", changed.stderr);
    assert_diff_line(&changed.stdout, '-', |l| l.ends_with("- image: nginx:1.25"));
    assert_diff_line(&changed.stdout, '+', |l| l.ends_with("- image: nginx:1.26"));
    // The dropped sidecar shows as removed lines.
    assert_diff_line(&changed.stdout, '-', |l| l.ends_with("name: sidecar"));
    // The server's generation bump shows, as against kube-apiserver (dry-run runs the whole write path).
    assert_diff_line(&changed.stdout, '+', |l| l.contains("generation: 2"));
    let ssa = c.run(&[
        "diff",
        "--server-side",
        "--force-conflicts",
        "-f",
        &fixture("deploy-v2.yaml"),
    ]);
    assert_eq!(ssa.code, Some(1), "{}", ssa.stderr);
    // The live object is untouched.
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ]),
        "nginx:1.25"
    );
    // Errors exit with code > 1.
    let invalid = c.run(&["diff", "-f", &fixture("pod-invalid.yaml")]);
    assert_eq!(invalid.code, Some(2), "{}", invalid.stdout);
    assert_contains(&invalid.stderr, "The Pod \"bad\" is invalid");
}

#[test]
fn apply_prune_deletes_what_left_the_manifests() {
    let c = Cluster::start();
    let cm = |name: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n    app: demo\ndata:\n  k: v\n"
        )
    };
    let both = c.write_file("both.yaml", &format!("{}---\n{}", cm("one"), cm("two")));
    let one = c.write_file("one.yaml", &cm("one"));
    c.ok(&["create", "configmap", "unrelated"]);
    let allow = "--prune-allowlist=core/v1/ConfigMap";
    let first = c.ok(&["apply", "--prune", "-l", "app=demo", allow, "-f", &both]);
    assert_eq!(first.trim(), "configmap/one created\nconfigmap/two created");
    let second = c.ok(&["apply", "--prune", "-l", "app=demo", allow, "-f", &one]);
    assert_eq!(
        second.trim(),
        "configmap/one unchanged\nconfigmap/two pruned"
    );
    assert_contains(
        &c.fails(&["get", "configmap", "two"]),
        "configmaps \"two\" not found",
    );
    c.ok(&["get", "configmap", "unrelated"]);
}

#[test]
fn edit_with_a_scripted_editor() {
    let c = Cluster::start();
    c.ok(&[
        "create",
        "configmap",
        "edit-me",
        "--from-literal=key=value-one",
    ]);
    let r = c.run_env(
        &["edit", "configmap", "edit-me"],
        &[("KUBE_EDITOR", "sed -i s/value-one/value-two/")],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "configmap/edit-me edited");
    assert_eq!(
        c.ok(&["get", "configmap", "edit-me", "-o", "jsonpath={.data.key}"]),
        "value-two"
    );
    let r = c.run_env(
        &["edit", "configmap", "edit-me"],
        &[("KUBE_EDITOR", "true")],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_contains(
        &format!("{}{}", r.stdout, r.stderr),
        "Edit cancelled, no changes made.",
    );

    // An editor script that rewrites the image of a deployment (the file is its last argument).
    c.ok(&["create", "deployment", "web", "--image=nginx:1.25"]);
    let editor = c.write_file("edit-image.sh", "#!/bin/sh\nfile=\"$(eval echo \\${$#})\"\nsed -i 's/image: nginx:1.25/image: nginx:1.26/' \"$file\"\n");
    let r = c.run_env(&["edit", "deployment", "web"], &[("KUBE_EDITOR", &editor)]);
    assert_eq!(
        (r.code, r.stdout.trim()),
        (Some(0), "deployment.apps/web edited"),
        "{}",
        r.stderr
    );
    assert_eq!(
        c.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ]),
        "nginx:1.26"
    );
    let json_editor = c.write_file(
        "edit-json.sh",
        "#!/bin/sh\nsed -i 's/\"nginx:1.26\"/\"nginx:1.27\"/' \"$1\"\n",
    );
    // `-o json` edits JSON and prints the result as JSON.
    let r = c.run_env(
        &["edit", "deployment", "web", "-o", "json"],
        &[("KUBE_EDITOR", &json_editor)],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        json(&r.stdout)["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );

    // An edit the server refuses (immutable selector): kubectl reports it and keeps a copy.
    let selector = c.write_file(
        "edit-selector.sh",
        "#!/bin/sh\nsed -i 's/app: web/app: other/g' \"$1\"\n",
    );
    let r = c.run_env(
        &["edit", "deployment", "web"],
        &[("KUBE_EDITOR", &selector)],
    );
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    assert_contains(&r.stderr, "error: deployments.apps \"web\" is invalid");
    // The server's reasons are in the header of the copy kubectl keeps.
    let copy = r
        .stderr
        .split("stored to \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no copy in {}", r.stderr));
    let kept = std::fs::read_to_string(copy).expect("reading the kept copy");
    assert_contains(&kept, "# deployments.apps \"web\" was not valid:");
    assert_contains(&kept, "field is immutable");
}
