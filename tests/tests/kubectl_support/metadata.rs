//! `kubectl label` and `kubectl annotate`: adding, `--overwrite`, removal with `key-`,
//! selectors, `--all`, `--resource-version` and the values the server refuses.

use crate::asserts::{assert_contains, assert_line};
use crate::harness::{Cluster, columns};

#[test]
fn label_add_overwrite_remove() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "cfg", "--from-literal=a=1"]);
    assert_eq!(
        c.ok(&["label", "configmap", "cfg", "env=dev", "tier=web"])
            .trim(),
        "configmap/cfg labeled"
    );
    let shown = c.ok(&["get", "configmap", "cfg", "--show-labels"]);
    assert_line(&shown, "NAME DATA AGE LABELS");
    assert!(columns(&shown)[1].ends_with("env=dev,tier=web"), "{shown}");
    let err = c.fails(&["label", "configmap", "cfg", "env=prod"]);
    assert_contains(
        &err,
        "error: 'env' already has a value (dev), and --overwrite is false",
    );
    assert_eq!(
        c.ok(&["label", "configmap", "cfg", "env=prod", "--overwrite"])
            .trim(),
        "configmap/cfg labeled"
    );
    assert_eq!(
        c.ok(&["get", "configmap", "-l", "env=prod", "-o", "name"])
            .trim(),
        "configmap/cfg"
    );
    assert_eq!(
        c.ok(&["get", "configmap", "-L", "env", "--no-headers"])
            .split_whitespace()
            .nth(3),
        Some("prod")
    );
    assert_eq!(
        c.ok(&["label", "configmap", "cfg", "env-"]).trim(),
        "configmap/cfg unlabeled"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "configmap",
            "cfg",
            "-o",
            "jsonpath={.metadata.labels}"
        ]),
        r#"{"tier":"web"}"#
    );
    let missing = c.ok(&["label", "configmap", "cfg", "nope-"]);
    assert_eq!(
        columns(&missing),
        ["label \"nope\" not found.", "configmap/cfg not labeled"]
    );
    // Labelling to the same value is not a change.
    assert_eq!(
        c.ok(&["label", "configmap", "cfg", "tier=web", "--overwrite"])
            .trim(),
        "configmap/cfg not labeled"
    );

    // kubectl refuses malformed labels; the server refuses invalid values sent directly.
    assert_contains(
        &c.fails(&["label", "configmap", "cfg", "bad=-x-"]),
        "invalid label value: \"bad=-x-\"",
    );
    let invalid = c.fails(&[
        "patch",
        "configmap",
        "cfg",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"bad":"-x-"}}}"#,
    ]);
    assert_contains(
        &invalid,
        "The ConfigMap \"cfg\" is invalid: metadata.labels: Invalid value: \"-x-\": a valid label must be an empty string or consist of alphanumeric characters",
    );

    // Selectors, --all and a pinned resourceVersion.
    c.ok(&["create", "configmap", "other"]);
    let all = c.ok(&["label", "configmap", "--all", "owner=ops"]);
    assert!(
        columns(&all).contains(&"configmap/other labeled".to_owned()),
        "{all}"
    );
    assert_eq!(
        c.ok(&["label", "configmap", "-l", "tier=web", "picked=yes"])
            .trim(),
        "configmap/cfg labeled"
    );
    let rv = c.ok(&[
        "get",
        "configmap",
        "other",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    c.ok(&["label", "configmap", "other", "bump=1"]);
    let stale = c.fails(&[
        "label",
        "configmap",
        "other",
        "late=1",
        &format!("--resource-version={rv}"),
    ]);
    assert_contains(
        &stale,
        "the object has been modified; please apply your changes to the latest version and try again",
    );
    assert_contains(
        &c.fails(&["label", "configmap", "ghost", "a=b"]),
        "Error from server (NotFound): configmaps \"ghost\" not found",
    );

    c.ok(&["create", "deployment", "web", "--image=nginx"]);
    assert_eq!(
        c.ok(&["label", "deployment", "web", "team=a"]).trim(),
        "deployment.apps/web labeled"
    );
}

#[test]
fn annotate_add_overwrite_remove() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "cfg"]);
    assert_eq!(
        c.ok(&[
            "annotate",
            "configmap",
            "cfg",
            "owner=team-a",
            "note=first note"
        ])
        .trim(),
        "configmap/cfg annotated"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "configmap",
            "cfg",
            "-o",
            "jsonpath={.metadata.annotations.note}"
        ]),
        "first note"
    );
    let err = c.fails(&["annotate", "configmap", "cfg", "owner=team-b"]);
    assert_contains(
        &err,
        "error: --overwrite is false but found the following declared annotation(s): 'owner' already has a value (team-a)",
    );
    c.ok(&[
        "annotate",
        "configmap",
        "cfg",
        "owner=team-b",
        "--overwrite",
    ]);
    assert_eq!(
        c.ok(&[
            "get",
            "configmap",
            "cfg",
            "-o",
            "jsonpath={.metadata.annotations.owner}"
        ]),
        "team-b"
    );
    assert_eq!(
        c.ok(&["annotate", "configmap", "cfg", "owner-", "note-"])
            .trim(),
        "configmap/cfg annotated"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "configmap",
            "cfg",
            "-o",
            "jsonpath={.metadata.annotations}"
        ]),
        ""
    );
    // Too large for one command-line argument: sent as a patch file.
    let big = c.write_file(
        "big.json",
        &format!(
            r#"{{"metadata":{{"annotations":{{"big":"{}"}}}}}}"#,
            "x".repeat(262_145)
        ),
    );
    let too_big = c.fails(&[
        "patch",
        "configmap",
        "cfg",
        "--type=merge",
        &format!("--patch-file={big}"),
    ]);
    assert_contains(
        &too_big,
        "The ConfigMap \"cfg\" is invalid: metadata.annotations: Too long: must have at most 262144 bytes",
    );
}
