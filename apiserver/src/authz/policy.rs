//! The RBAC policy as one immutable snapshot of every Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding, indexed for the request path: bindings per namespace, roles by
//! name with aggregated ClusterRoles' rules already resolved. Evaluation follows
//! upstream's RBAC authorizer: ClusterRoleBindings first, then the RoleBindings of the
//! request's namespace; the first rule that allows wins and is named in the reason.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::rules::Rule;
use crate::auth::{Attributes, User};
use crate::selectors::label::Selector;

/// A binding's `subjects` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    User(String),
    Group(String),
    ServiceAccount { namespace: String, name: String },
}

impl Subject {
    fn from_json(value: &Value, binding_namespace: &str) -> Option<Subject> {
        let name = value.get("name")?.as_str()?.to_owned();
        match value.get("kind")?.as_str()? {
            "User" => Some(Subject::User(name)),
            "Group" => Some(Subject::Group(name)),
            "ServiceAccount" => {
                let namespace = value
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty());
                let namespace = namespace.unwrap_or(binding_namespace).to_owned();
                Some(Subject::ServiceAccount { namespace, name })
            }
            _ => None,
        }
    }

    fn applies_to(&self, user: &User) -> bool {
        match self {
            Subject::User(name) => *name == user.name,
            Subject::Group(name) => user.groups.iter().any(|g| g == name),
            Subject::ServiceAccount { namespace, name } => user
                .name
                .strip_prefix("system:serviceaccount:")
                .and_then(|rest| rest.split_once(':'))
                .is_some_and(|(ns, n)| ns == namespace && n == name),
        }
    }

    /// As upstream's `describeSubject`: `Group "x"`, `ServiceAccount "name/namespace"`.
    fn describe(&self) -> String {
        match self {
            Subject::User(name) => format!("User {name:?}"),
            Subject::Group(name) => format!("Group {name:?}"),
            Subject::ServiceAccount { namespace, name } => {
                format!("ServiceAccount \"{name}/{namespace}\"")
            }
        }
    }
}

/// A RoleBinding (with its namespace) or ClusterRoleBinding (namespace empty).
#[derive(Clone, Debug)]
pub struct Binding {
    pub name: String,
    pub namespace: String,
    /// `Role` or `ClusterRole`.
    pub role_kind: String,
    pub role_name: String,
    pub subjects: Vec<Subject>,
}

impl Binding {
    pub fn from_json(object: &Value) -> Option<Binding> {
        let meta = object.get("metadata")?;
        let name = meta.get("name")?.as_str()?.to_owned();
        let namespace = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let role = object.get("roleRef")?;
        let subjects = object
            .get("subjects")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|s| Subject::from_json(s, &namespace))
                    .collect()
            })
            .unwrap_or_default();
        Some(Binding {
            name,
            role_kind: role.get("kind")?.as_str()?.to_owned(),
            role_name: role.get("name")?.as_str()?.to_owned(),
            namespace,
            subjects,
        })
    }

    fn describe(&self, subject: &Subject) -> String {
        let binding = if self.namespace.is_empty() {
            format!("ClusterRoleBinding {:?}", self.name)
        } else {
            format!("RoleBinding \"{}/{}\"", self.name, self.namespace)
        };
        format!(
            "{binding} of {} {:?} to {}",
            self.role_kind,
            self.role_name,
            subject.describe()
        )
    }
}

/// The outcome of evaluating a request against the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Why: the allowing binding, or the missing roles that may explain a denial.
    pub reason: String,
}

/// Every RBAC object, indexed; immutable once built.
#[derive(Debug, Default)]
pub struct Snapshot {
    cluster_roles: HashMap<String, Arc<[Rule]>>,
    roles: HashMap<(String, String), Arc<[Rule]>>,
    cluster_bindings: Vec<Binding>,
    role_bindings: HashMap<String, Vec<Binding>>,
}

/// The rules a role grants a subject, visited until the visitor says stop.
type Visitor<'a> = dyn FnMut(&Binding, &Subject, &[Rule]) -> bool + 'a;

impl Snapshot {
    /// Indexes the stored objects.
    pub fn build(
        cluster_roles: &[&Value],
        roles: &[&Value],
        cluster_bindings: &[&Value],
        role_bindings: &[&Value],
    ) -> Snapshot {
        let mut snapshot = Snapshot {
            cluster_roles: aggregate(cluster_roles)
                .into_iter()
                .map(|(name, rules)| (name, rules.into()))
                .collect(),
            ..Default::default()
        };
        for role in roles {
            let meta = &role["metadata"];
            let (Some(ns), Some(name)) = (meta["namespace"].as_str(), meta["name"].as_str()) else {
                continue;
            };
            snapshot.roles.insert(
                (ns.to_owned(), name.to_owned()),
                Rule::all_from(role).into(),
            );
        }
        snapshot.cluster_bindings = cluster_bindings
            .iter()
            .filter_map(|b| Binding::from_json(b))
            .collect();
        for binding in role_bindings.iter().filter_map(|b| Binding::from_json(b)) {
            snapshot
                .role_bindings
                .entry(binding.namespace.clone())
                .or_default()
                .push(binding);
        }
        snapshot
    }

    /// The rules a binding's role grants; `Err` names a missing role, as upstream.
    fn role_rules(&self, binding: &Binding) -> Result<&[Rule], String> {
        let found = match binding.role_kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&binding.role_name),
            "Role" => self
                .roles
                .get(&(binding.namespace.clone(), binding.role_name.clone())),
            _ => None,
        };
        found
            .map(|rules| &rules[..])
            .ok_or_else(|| match binding.role_kind.as_str() {
                "Role" => format!(
                    "role.rbac.authorization.k8s.io {:?} not found",
                    binding.role_name
                ),
                _ => format!(
                    "clusterrole.rbac.authorization.k8s.io {:?} not found",
                    binding.role_name
                ),
            })
    }

    /// Visits the rules that apply to `user` in `namespace` (cluster-wide ones first);
    /// returns the errors met (missing roles).
    fn visit(&self, user: &User, namespace: &str, visitor: &mut Visitor<'_>) -> Vec<String> {
        let mut errors = Vec::new();
        let namespaced = self
            .role_bindings
            .get(namespace)
            .filter(|_| !namespace.is_empty());
        let bindings = self
            .cluster_bindings
            .iter()
            .chain(namespaced.into_iter().flatten());
        for binding in bindings {
            let Some(subject) = binding.subjects.iter().find(|s| s.applies_to(user)) else {
                continue;
            };
            match self.role_rules(binding) {
                Ok(rules) => {
                    if !visitor(binding, subject, rules) {
                        break;
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Allows or denies one request.
    pub fn authorize(&self, user: &User, request: &Attributes) -> Decision {
        let mut allowed_by = None;
        let errors = self.visit(user, &request.namespace, &mut |binding, subject, rules| {
            if rules.iter().any(|r| r.allows(request)) {
                allowed_by = Some(binding.describe(subject));
                return false;
            }
            true
        });
        match allowed_by {
            Some(by) => Decision {
                allowed: true,
                reason: format!("RBAC: allowed by {by}"),
            },
            None if errors.is_empty() => Decision {
                allowed: false,
                reason: String::new(),
            },
            None => Decision {
                allowed: false,
                reason: format!("RBAC: [{}]", errors.join(", ")),
            },
        }
    }

    /// Every rule granted to `user` in `namespace`, for SelfSubjectRulesReview; the
    /// second part lists the problems met (missing roles), as `evaluationError`.
    pub fn rules_for(&self, user: &User, namespace: &str) -> (Vec<Rule>, Vec<String>) {
        let mut rules = Vec::new();
        let mut seen = HashSet::new();
        let errors = self.visit(user, namespace, &mut |_, _, granted| {
            for rule in granted {
                if seen.insert(rule.clone()) {
                    rules.push(rule.clone());
                }
            }
            true
        });
        (rules, errors)
    }
}

/// Each ClusterRole's rules, an aggregated one's (with `aggregationRule`) extended by the
/// rules of every ClusterRole its selectors pick, transitively, as upstream's
/// aggregation controller would write them.
pub fn aggregate(cluster_roles: &[&Value]) -> Vec<(String, Vec<Rule>)> {
    let named: Vec<(&str, &Value)> = cluster_roles
        .iter()
        .filter_map(|role| Some((role["metadata"]["name"].as_str()?, *role)))
        .collect();
    let selectors = |role: &Value| -> Vec<Selector> {
        role.pointer("/aggregationRule/clusterRoleSelectors")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|s| Selector::from_object(s).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    named
        .iter()
        .map(|(name, role)| {
            let mut rules = Rule::all_from(role);
            let mut pending: Vec<&Value> = vec![*role];
            let mut visited: HashSet<&str> = HashSet::from([*name]);
            while let Some(aggregating) = pending.pop() {
                for selector in selectors(aggregating) {
                    for (other, candidate) in &named {
                        if selector.matches(candidate.pointer("/metadata/labels"))
                            && visited.insert(*other)
                        {
                            for rule in Rule::all_from(candidate) {
                                if !rules.contains(&rule) {
                                    rules.push(rule);
                                }
                            }
                            pending.push(*candidate);
                        }
                    }
                }
            }
            ((*name).to_owned(), rules)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pods(verb: &str, namespace: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource: "pods".into(),
            namespace: namespace.into(),
            ..Default::default()
        }
    }

    fn snapshot() -> Snapshot {
        let reader = json!({"metadata": {"name": "reader", "labels": {"agg": "yes"}}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
        let writer = json!({"metadata": {"name": "writer", "namespace": "dev"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]});
        let ops = json!({"metadata": {"name": "ops"}, "roleRef": {"kind": "ClusterRole", "name": "reader"}, "subjects": [{"kind": "Group", "name": "ops"}]});
        let dev = json!({"metadata": {"name": "dev", "namespace": "dev"}, "roleRef": {"kind": "Role", "name": "writer"},
            "subjects": [{"kind": "ServiceAccount", "name": "bot"}, {"kind": "User", "name": "jane"}]});
        let broken = json!({"metadata": {"name": "broken", "namespace": "dev"}, "roleRef": {"kind": "ClusterRole", "name": "gone"}, "subjects": [{"kind": "User", "name": "jane"}]});
        Snapshot::build(&[&reader], &[&writer], &[&ops], &[&dev, &broken])
    }

    #[test]
    fn cluster_bindings_then_namespace_bindings_name_the_allowing_binding() {
        let policy = snapshot();
        let ops = User::new("sam", vec!["ops".into()]);
        assert_eq!(
            policy.authorize(&ops, &pods("list", "any")),
            Decision { allowed: true, reason: "RBAC: allowed by ClusterRoleBinding \"ops\" of ClusterRole \"reader\" to Group \"ops\"".into() }
        );
        assert!(!policy.authorize(&ops, &pods("create", "dev")).allowed);
        let bot = User::new("system:serviceaccount:dev:bot", vec![]);
        assert_eq!(
            policy.authorize(&bot, &pods("create", "dev")).reason,
            "RBAC: allowed by RoleBinding \"dev/dev\" of Role \"writer\" to ServiceAccount \"bot/dev\""
        );
        assert!(!policy.authorize(&bot, &pods("create", "prod")).allowed);
        let other = User::new("system:serviceaccount:prod:bot", vec![]);
        assert!(!policy.authorize(&other, &pods("create", "dev")).allowed);
    }

    #[test]
    fn a_denial_names_missing_roles() {
        let jane = User::new("jane", vec![]);
        assert_eq!(
            snapshot().authorize(&jane, &pods("delete", "dev")),
            Decision {
                allowed: false,
                reason: "RBAC: [clusterrole.rbac.authorization.k8s.io \"gone\" not found]".into()
            }
        );
        let (rules, errors) = snapshot().rules_for(&jane, "dev");
        assert_eq!(rules.len(), 1);
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn aggregation_collects_selected_roles_transitively() {
        let base = json!({"metadata": {"name": "base", "labels": {"to-view": "true"}}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]});
        let view = json!({"metadata": {"name": "view", "labels": {"to-edit": "true"}}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-view": "true"}}]}});
        let edit = json!({"metadata": {"name": "edit"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-edit": "true"}}]},
            "rules": [{"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]}]});
        let aggregated: HashMap<String, Vec<Rule>> =
            aggregate(&[&base, &view, &edit]).into_iter().collect();
        assert_eq!(aggregated["view"].len(), 1);
        assert_eq!(
            aggregated["edit"].len(),
            2,
            "edit picks view, which picks base"
        );
        assert_eq!(aggregated["base"].len(), 1);
    }
}
