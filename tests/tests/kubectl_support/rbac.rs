//! RBAC kinds through kubectl's generators (`create role|clusterrole|rolebinding|
//! clusterrolebinding`), their columns and validation, and who a request is:
//! `kubectl create token` issues a service-account token the server accepts, and
//! `kubectl auth whoami` reports the user of each credential (client certificate or
//! token); the roles are enforced: a token's service account may do only what is
//! bound to it.

use crate::asserts::{assert_contains, assert_line};
use crate::harness::{Cluster, columns};

#[test]
fn create_roles_and_bindings() {
    let c = Cluster::start();
    assert_eq!(
        c.ok(&["create", "role", "pod-reader", "--verb=get,list,watch", "--resource=pods,pods/log"]).trim(),
        "role.rbac.authorization.k8s.io/pod-reader created"
    );
    assert_eq!(
        c.ok(&["get", "role", "pod-reader", "-o", "jsonpath={.rules[0].apiGroups} {.rules[0].resources} {.rules[0].verbs}"]),
        r#"[""] ["pods","pods/log"] ["get","list","watch"]"#
    );
    let roles = columns(&c.ok(&["get", "roles"]));
    assert_eq!(roles[0], "NAME CREATED AT");
    assert!(roles[1].starts_with("pod-reader 20"), "{roles:?}");
    assert_eq!(
        c.ok(&["create", "rolebinding", "read-pods", "--role=pod-reader", "--user=jane", "--group=devs", "--serviceaccount=default:builder"]).trim(),
        "rolebinding.rbac.authorization.k8s.io/read-pods created"
    );
    let bindings = columns(&c.ok(&["get", "rolebindings", "-o", "wide"]));
    assert_eq!(bindings[0], "NAME ROLE AGE USERS GROUPS SERVICEACCOUNTS");
    assert!(bindings[1].starts_with("read-pods Role/pod-reader "), "{bindings:?}");
    assert!(bindings[1].ends_with(" jane devs default/builder"), "{bindings:?}");

    assert_eq!(
        c.ok(&["create", "clusterrole", "node-viewer", "--verb=get", "--resource=nodes", "--non-resource-url=/healthz"]).trim(),
        "clusterrole.rbac.authorization.k8s.io/node-viewer created"
    );
    c.ok(&["create", "clusterrolebinding", "ops-nodes", "--clusterrole=node-viewer", "--group=ops"]);
    let cluster = columns(&c.ok(&["get", "clusterrolebinding", "ops-nodes", "-o", "wide"]));
    assert!(cluster[1].starts_with("ops-nodes ClusterRole/node-viewer "), "{cluster:?}");
    assert!(cluster[1].ends_with(" ops"), "{cluster:?}");

    // A binding's role cannot change, as upstream.
    let err = c.fails(&["patch", "rolebinding", "read-pods", "--type=merge", "-p", r#"{"roleRef":{"name":"other"}}"#]);
    assert_contains(&err, "roleRef: Invalid value:");
    assert_contains(&err, "cannot change roleRef");
    // A namespaced role cannot name non-resource URLs.
    let bad = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: urls}
rules:
- nonResourceURLs: [/metrics]
  verbs: [get]
";
    let err = c.fails_stdin(&["create", "-f", "-"], bad);
    assert_contains(
        &err,
        "The Role \"urls\" is invalid: rules[0].nonResourceURLs: Invalid value: []string{\"/metrics\"}: namespaced rules cannot apply to non-resource URLs",
    );
}

#[test]
fn strict_validation_rejects_an_unknown_role_field() {
    let c = Cluster::start();
    let role = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: typo}
rules:
- apiGroups: ['']
  resources: [pods]
  verbz: [get]
";
    let err = c.fails_stdin(&["apply", "--validate=strict", "-f", "-"], role);
    assert_contains(&err, "unknown field \"rules[0].verbz\"");
    assert!(c.run(&["get", "role", "typo"]).code != Some(0));
    // Fixed, it applies server-side; another manager changing the verbs conflicts.
    let fixed = role.replace("verbz", "verbs");
    assert_eq!(
        c.ok_stdin(&["apply", "--server-side", "--validate=strict", "-f", "-"], &fixed).trim(),
        "role.rbac.authorization.k8s.io/typo serverside-applied"
    );
    let other = fixed.replace("[get]", "[get, list]");
    let err = c.fails_stdin(&["apply", "--server-side", "--field-manager=robot", "-f", "-"], &other);
    assert_contains(&err, "Apply failed with 1 conflict: conflict with \"kubectl\": .rules");
    let explained = c.ok(&["explain", "role.rules.verbs"]);
    assert_line(&explained, "GROUP: rbac.authorization.k8s.io");
    assert_line(&explained, "KIND: Role");
}

/// A kubectl invocation whose only credential is a bearer token (no client certificate).
fn as_token(c: &Cluster, token: &str, args: &[&str]) -> crate::harness::Run {
    let server = c.ok(&["config", "view", "-o", "jsonpath={.clusters[0].cluster.server}"]);
    let empty = c.write_file("empty.kubeconfig", "apiVersion: v1\nkind: Config\n");
    let flag = format!("--token={token}");
    let mut all = vec!["--kubeconfig", &empty, "--server", &server, "--insecure-skip-tls-verify", &flag];
    all.extend_from_slice(args);
    c.run(&all)
}

#[test]
fn create_token_and_whoami_per_credential() {
    let c = Cluster::start();
    // The admin kubeconfig's client certificate names the admin.
    let admin = columns(&c.ok(&["auth", "whoami"]));
    assert_eq!(admin[1], "Username admin");
    c.ok(&["create", "serviceaccount", "builder"]);
    let uid = c.ok(&["get", "sa", "builder", "-o", "jsonpath={.metadata.uid}"]);
    let token = c.ok(&["create", "token", "builder", "--duration=15m"]).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let who = as_token(&c, &token, &["auth", "whoami"]);
    assert_eq!(who.code, Some(0), "{}", who.stderr);
    let rows = columns(&who.stdout);
    assert_eq!(rows[1], "Username system:serviceaccount:default:builder");
    assert_eq!(rows[2], format!("UID {uid}"));
    assert_eq!(rows[3], "Groups [system:serviceaccounts system:serviceaccounts:default system:authenticated]");
    assert!(rows[4].starts_with("Extra: authentication.kubernetes.io/credential-id [JTI="), "{rows:?}");
    // The token is refused what nothing grants, and allowed it once bound.
    let denied = as_token(&c, &token, &["get", "serviceaccount", "builder", "-o", "name"]);
    assert_eq!(denied.code, Some(1));
    assert_contains(
        &denied.stderr,
        "Error from server (Forbidden): serviceaccounts \"builder\" is forbidden: User \"system:serviceaccount:default:builder\" cannot get resource \"serviceaccounts\" in API group \"\" in the namespace \"default\"",
    );
    c.ok(&["create", "rolebinding", "builder-view", "--clusterrole=view", "--serviceaccount=default:builder"]);
    let listed = as_token(&c, &token, &["get", "serviceaccount", "builder", "-o", "name"]);
    assert_eq!(listed.stdout.trim(), "serviceaccount/builder", "{}", listed.stderr);
    let create = as_token(&c, &token, &["create", "configmap", "x"]);
    assert_contains(&create.stderr, "cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\"");

    let forged = as_token(&c, &format!("{token}x"), &["get", "pods"]);
    assert_eq!(forged.code, Some(1));
    assert_contains(&forged.stderr, "error: You must be logged in to the server (Unauthorized)");

    let err = c.fails(&["create", "token", "nobody"]);
    assert_contains(&err, "error: failed to create token: serviceaccounts \"nobody\" not found");
    let err = c.fails(&["create", "token", "builder", "--duration=1m"]);
    assert_contains(
        &err,
        "TokenRequest.authentication.k8s.io \"builder\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes",
    );
}


