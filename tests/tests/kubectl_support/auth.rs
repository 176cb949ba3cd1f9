//! `kubectl auth whoami` (SelfSubjectReview) and `kubectl auth can-i`
//! (SelfSubjectAccessReview): create-only kinds the server answers without storing.
//! No authorizer is configured yet, so every access review is allowed.

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
fn can_i_is_always_yes_without_an_authorizer() {
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
    assert_eq!(answered["status"]["allowed"], true);
    assert_eq!(
        answered["status"]["reason"],
        "no authorizer is configured: every request is allowed"
    );
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
