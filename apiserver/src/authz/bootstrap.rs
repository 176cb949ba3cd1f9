//! The default RBAC policy, created at start when missing (upstream's
//! `rbac/bootstrap-roles` post-start hook): `cluster-admin` bound to `system:masters`,
//! the discovery, basic-user and public-info roles for every (and, for public info,
//! every anonymous) caller, and the user-facing `admin`, `edit` and `view` roles,
//! which aggregate the `system:aggregate-to-*` roles as upstream's do; their rules
//! are written out already aggregated. Objects carry upstream's bootstrapping label
//! and auto-update annotation. As upstream, an existing default gets back the rules
//! and subjects it lacks unless its `rbac.authorization.k8s.io/autoupdate` annotation
//! is `"false"`; what the cluster admin added is kept.

use serde_json::{Value, json};
use waggle_apimachinery::registry;
use waggle_store::{Store, StoreError};

use super::index::RBAC_GROUP;
use super::policy;
use super::rules::Rule;
use crate::{defaults, keys, lifecycle, objects};

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
/// Every verb of a stored kind, read and write.
const READ_WRITE: &[&str] = registry::CRUD;
const AGGREGATE_TO: &str = "rbac.authorization.k8s.io/aggregate-to-";

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn urls(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"nonResourceURLs": urls, "verbs": verbs})
}

fn metadata(name: &str, extra_labels: &[(&str, &str)]) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    for (key, value) in extra_labels {
        labels[*key] = json!(value);
    }
    json!({
        "name": name,
        "labels": labels,
        "annotations": {"rbac.authorization.k8s.io/autoupdate": "true"},
    })
}

fn cluster_role(name: &str, labels: &[(&str, &str)], rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name, labels),
        "rules": rules,
    })
}

fn aggregating(name: &str, labels: &[(&str, &str)], picks: &str) -> Value {
    let mut role = cluster_role(name, labels, Vec::new());
    role["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {format!("{AGGREGATE_TO}{picks}"): "true"}}]});
    role
}

fn binding(role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": RBAC_GROUP, "kind": "Group", "name": g}))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(role, &[]),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

/// The roles `view`, `edit` and `admin` aggregate (upstream's, for the kinds served here).
fn aggregated_parts() -> Vec<Value> {
    let view = vec![
        rule(
            READ,
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
        ),
        rule(
            READ,
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
        ),
        rule(READ, &[""], &["namespaces"]),
        rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
        rule(
            READ,
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        rule(
            READ,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        ),
        rule(
            READ,
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
        ),
    ];
    let edit = vec![
        rule(
            READ,
            &[""],
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], &[""], &["serviceaccounts"]),
        rule(
            WRITE,
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
        ),
        rule(&["create"], &[""], &["pods/eviction"]),
        rule(
            WRITE,
            &[""],
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
        rule(
            WRITE,
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        rule(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
        rule(WRITE, &["batch"], &["cronjobs", "jobs"]),
        rule(WRITE, &["policy"], &["poddisruptionbudgets"]),
        rule(
            WRITE,
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
        ),
        rule(READ_WRITE, &["coordination.k8s.io"], &["leases"]),
    ];
    let admin = vec![
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews"],
        ),
        rule(READ_WRITE, &[RBAC_GROUP], &["rolebindings", "roles"]),
    ];
    vec![
        cluster_role(
            "system:aggregate-to-view",
            &[("rbac.authorization.k8s.io/aggregate-to-view", "true")],
            view,
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[("rbac.authorization.k8s.io/aggregate-to-edit", "true")],
            edit,
        ),
        cluster_role(
            "system:aggregate-to-admin",
            &[("rbac.authorization.k8s.io/aggregate-to-admin", "true")],
            admin,
        ),
    ]
}

/// Every default ClusterRole, `admin`/`edit`/`view` with their aggregated rules.
pub fn cluster_roles() -> Vec<Value> {
    let mut roles = vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![urls(
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
        ),
        aggregating("admin", &[], "admin"),
        aggregating(
            "edit",
            &[("rbac.authorization.k8s.io/aggregate-to-admin", "true")],
            "edit",
        ),
        aggregating(
            "view",
            &[("rbac.authorization.k8s.io/aggregate-to-edit", "true")],
            "view",
        ),
    ];
    roles.extend(aggregated_parts());
    let refs: Vec<&Value> = roles.iter().collect();
    let resolved = policy::aggregate(&refs);
    for role in &mut roles {
        if role.get("aggregationRule").is_some() {
            let name = role["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if let Some((_, rules)) = resolved.iter().find(|(n, _)| *n == name) {
                role["rules"] = rules.iter().map(Rule::to_json).collect();
            }
        }
    }
    roles
}

/// Every default ClusterRoleBinding.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", &[super::MASTERS]),
        binding("system:basic-user", &["system:authenticated"]),
        binding("system:discovery", &["system:authenticated"]),
        binding(
            "system:service-account-issuer-discovery",
            &["system:serviceaccounts"],
        ),
        binding(
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
    ]
}

/// Creates the default policy objects that do not exist yet.
pub async fn ensure(store: &dyn Store) -> Result<(), StoreError> {
    let kinds = [
        ("clusterroles", cluster_roles()),
        ("clusterrolebindings", cluster_role_bindings()),
    ];
    for (plural, defaults_of_kind) in kinds {
        let resource = registry::find(RBAC_GROUP, "v1", plural).expect("RBAC kinds are served");
        for mut object in defaults_of_kind {
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let key = keys::object_key(resource, None, &name);
            if let Some(kv) = store.get(&key).await? {
                let Ok(stored) = serde_json::from_slice::<Value>(&kv.value) else {
                    continue;
                };
                if let Some(updated) = reconciled(&object, &stored) {
                    match store
                        .update(&key, objects::encode(&updated), kv.mod_revision)
                        .await
                    {
                        // Another server reconciled it meanwhile.
                        Ok(_) | Err(StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            lifecycle::prepare_create(resource, &mut object);
            defaults::apply(resource, &mut object);
            match store.create(&key, objects::encode(&object)).await {
                Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// `stored` with the rules and subjects of `default` that it lacks, unless it opted
/// out of auto-update; `None` when nothing is to change.
fn reconciled(default: &Value, stored: &Value) -> Option<Value> {
    let opted_out = stored
        .pointer("/metadata/annotations/rbac.authorization.k8s.io~1autoupdate")
        .and_then(Value::as_str)
        == Some("false");
    if opted_out {
        return None;
    }
    let subject_key = |s: &Value| (s["kind"].clone(), s["name"].clone(), s["namespace"].clone());
    let mut updated = stored.clone();
    let mut changed = false;
    for field in ["rules", "subjects"] {
        let Some(wanted) = default.get(field).and_then(Value::as_array) else {
            continue;
        };
        let have = stored
            .get(field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let present = |w: &Value| match field {
            "rules" => have
                .iter()
                .any(|h| Rule::from_json(h) == Rule::from_json(w)),
            _ => have.iter().any(|h| subject_key(h) == subject_key(w)),
        };
        let missing: Vec<Value> = wanted.iter().filter(|w| !present(w)).cloned().collect();
        if !missing.is_empty() {
            let mut all = have.clone();
            all.extend(missing);
            updated[field] = Value::Array(all);
            changed = true;
        }
    }
    changed.then_some(updated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Attributes, User};

    #[test]
    fn reconciling_restores_missing_rules_unless_opted_out() {
        let default = cluster_roles()
            .into_iter()
            .find(|r| r["metadata"]["name"] == "system:basic-user")
            .unwrap();
        let mut trimmed = default.clone();
        trimmed["rules"] =
            json!([default["rules"][0].clone(), {"verbs": ["get"], "nonResourceURLs": ["/extra"]}]);
        let restored = reconciled(&default, &trimmed).expect("a rule was missing");
        assert_eq!(
            restored["rules"].as_array().unwrap().len(),
            3,
            "the admin's own rule stays"
        );
        assert!(
            reconciled(&default, &restored).is_none(),
            "nothing left to add"
        );
        trimmed["metadata"]["annotations"]["rbac.authorization.k8s.io/autoupdate"] = json!("false");
        assert!(reconciled(&default, &trimmed).is_none());
        let binding = cluster_role_bindings().remove(0);
        let mut emptied = binding.clone();
        emptied["subjects"] = json!([]);
        assert_eq!(
            reconciled(&binding, &emptied).unwrap()["subjects"],
            binding["subjects"]
        );
    }

    #[test]
    fn defaults_grant_what_upstream_grants() {
        let roles = cluster_roles();
        let bindings = cluster_role_bindings();
        let policy = policy::Snapshot::build(
            &roles.iter().collect::<Vec<_>>(),
            &[],
            &bindings.iter().collect::<Vec<_>>(),
            &[],
        );
        let anonymous = User::new("system:anonymous", vec!["system:unauthenticated".into()]);
        let jane = User::new("jane", vec!["system:authenticated".into()]);
        let get = |path: &str| Attributes {
            verb: "get".into(),
            path: path.into(),
            ..Default::default()
        };
        assert!(policy.authorize(&anonymous, &get("/healthz")).allowed);
        assert!(!policy.authorize(&anonymous, &get("/apis")).allowed);
        assert!(policy.authorize(&jane, &get("/apis/apps/v1")).allowed);
        let review = Attributes {
            verb: "create".into(),
            group: "authorization.k8s.io".into(),
            resource: "selfsubjectaccessreviews".into(),
            ..Default::default()
        };
        assert_eq!(
            policy.authorize(&jane, &review).reason,
            "RBAC: allowed by ClusterRoleBinding \"system:basic-user\" of ClusterRole \"system:basic-user\" to Group \"system:authenticated\""
        );
        let pods = Attributes {
            verb: "list".into(),
            resource: "pods".into(),
            namespace: "default".into(),
            ..Default::default()
        };
        assert!(!policy.authorize(&jane, &pods).allowed);
        let names = |name: &str| -> Vec<Rule> {
            let role = roles
                .iter()
                .find(|r| r["metadata"]["name"] == name)
                .unwrap();
            Rule::all_from(role)
        };
        // `admin` ⊇ `edit` ⊇ `view`, each written out.
        let (view, edit, admin) = (names("view"), names("edit"), names("admin"));
        assert!(
            !view.is_empty()
                && view.iter().all(|r| edit.contains(r))
                && edit.iter().all(|r| admin.contains(r))
        );
        assert!(admin.len() > edit.len() && edit.len() > view.len());
        for role in &roles {
            assert_eq!(
                role["metadata"]["labels"]["kubernetes.io/bootstrapping"],
                "rbac-defaults"
            );
            assert_eq!(
                role["metadata"]["annotations"]["rbac.authorization.k8s.io/autoupdate"],
                "true"
            );
        }
    }
}
