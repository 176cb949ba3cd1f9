//! `kubectl auth whoami` (SelfSubjectReview) and `kubectl auth can-i`
//! (SelfSubjectAccessReview, SelfSubjectRulesReview for `--list`): create-only kinds
//! the server answers from its RBAC authorizer without storing them; `--as`
//! impersonates another user (the admin may).

use crate::asserts::{assert_contains, json};
use crate::harness::Cluster;

#[test]
fn whoami_reports_the_admin_user() {
    let c = Cluster::start();
    let table = c.ok(&["auth", "whoami"]);
    assert_eq!(
        table,
        "ATTRIBUTE   VALUE\nUsername    admin\nGroups      [system:masters system:authenticated]\n"
    );
    let review = json(&c.ok(&["auth", "whoami", "-o", "json"]));
    assert_eq!(
        (review["apiVersion"].as_str(), review["kind"].as_str()),
        (Some("authentication.k8s.io/v1"), Some("SelfSubjectReview"))
    );
    assert_eq!(review["status"]["userInfo"]["username"], "admin");
    // Reviews are never stored: there is nothing to list.
    let listed = c.fails(&["get", "selfsubjectreviews"]);
    assert_contains(&listed, "MethodNotAllowed");
}

#[test]
fn can_i_answers_from_rbac() {
    let c = Cluster::start();
    for args in [
        &["auth", "can-i", "create", "pods"][..],
        &[
            "auth",
            "can-i",
            "delete",
            "deployments.apps",
            "-n",
            "kube-system",
        ],
        &["auth", "can-i", "get", "/healthz"],
        &["auth", "can-i", "*", "*"],
    ] {
        let run = c.run(args);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "yes\n"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // Another user has only what is bound to them.
    let jane = c.run(&["auth", "can-i", "create", "pods", "--as=jane"]);
    assert_eq!(
        (jane.code, jane.stdout.as_str()),
        (Some(1), "no\n"),
        "{}",
        jane.stderr
    );
    c.ok(&["create", "namespace", "other"]);
    c.ok(&[
        "create",
        "rolebinding",
        "jane-edit",
        "--clusterrole=edit",
        "--user=jane",
    ]);
    assert_eq!(
        c.ok(&["auth", "can-i", "create", "pods", "--as=jane"]),
        "yes\n"
    );
    let elsewhere = c.run(&[
        "auth",
        "can-i",
        "create",
        "pods",
        "--as=jane",
        "-n",
        "other",
    ]);
    assert_eq!(
        (elsewhere.code, elsewhere.stdout.as_str()),
        (Some(1), "no\n")
    );
    let secrets = c.run(&[
        "auth",
        "can-i",
        "list",
        "secrets",
        "--as=jane",
        "--as-group=devs",
    ]);
    assert_eq!(secrets.stdout, "yes\n", "edit reads secrets");
    // Denied requests are upstream's 403.
    let denied = c.fails(&["get", "pods", "-n", "other", "--as=jane"]);
    assert_contains(
        &denied,
        "Error from server (Forbidden): pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"other\"",
    );
    // `--list`: the rules that apply in the namespace.
    let listed = c.ok(&["auth", "can-i", "--list", "--as=jane"]);
    assert!(listed.starts_with("Resources "), "{listed}");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("pods ") && l.contains("create") && l.contains("list")),
        "{listed}"
    );
    assert!(
        listed.lines().any(
            |l| l.starts_with("selfsubjectaccessreviews.authorization.k8s.io ")
                && l.ends_with("[create]")
        ),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.contains("[/version]") || l.contains("/version/")),
        "{listed}"
    );
    let admin = c.ok(&["auth", "can-i", "--list"]);
    assert!(
        admin
            .lines()
            .any(|l| l.starts_with("*.* ") && l.ends_with("[*]")),
        "{admin}"
    );

    let review = r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":{"verb":"list","resource":"secrets"}}}"#;
    // `create -f` would first look for a CRD of this kind (CRDs are not served yet);
    // `--raw` posts the review as is.
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let answered = json(&c.ok(&[
        "create",
        "--raw",
        path,
        "-f",
        &c.write_file("review.json", review),
    ]));
    // The admin is in `system:masters`, which needs no binding (and gives no reason).
    assert_eq!(answered["status"], serde_json::json!({"allowed": true}));
    assert_eq!(
        answered["spec"]["resourceAttributes"]["resource"],
        "secrets"
    );
    let empty =
        r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{}}"#;
    let err = c.fails(&[
        "create",
        "--raw",
        path,
        "-f",
        &c.write_file("empty.json", empty),
    ]);
    assert_contains(
        &err,
        "The SelfSubjectAccessReview \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
    );
}
