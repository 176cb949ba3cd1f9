//! RBAC validation: the rules of Roles and ClusterRoles, and the role reference and
//! subjects of RoleBindings and ClusterRoleBindings, with upstream's messages.

use serde_json::Value;

use super::{Errors, at, items, names};
use crate::status::Cause;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

pub fn validate(kind: &str, obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    match kind {
        "Role" | "ClusterRole" => {
            for (i, rule) in items(obj, "/rules").iter().enumerate() {
                policy_rule(rule, &format!("rules[{i}]"), kind == "Role", errors);
            }
        }
        _ => binding(kind, obj, old, errors),
    }
}

fn non_empty(rule: &Value, field: &str) -> bool {
    !items(rule, &format!("/{field}")).is_empty()
}

fn policy_rule(rule: &Value, path: &str, namespaced: bool, errors: &mut Errors) {
    if !non_empty(rule, "verbs") {
        errors.push(required(format!("{path}.verbs"), "verbs must contain at least one value"));
    }
    if non_empty(rule, "nonResourceURLs") {
        let field = format!("{path}.nonResourceURLs");
        let urls = go_strings(items(rule, "/nonResourceURLs"));
        if namespaced {
            errors.push(invalid_strings(&field, &urls, "namespaced rules cannot apply to non-resource URLs"));
        }
        if ["apiGroups", "resources", "resourceNames"].iter().any(|f| non_empty(rule, f)) {
            errors.push(invalid_strings(&field, &urls, "rules cannot apply to both regular resources and non-resource URLs"));
        }
        return;
    }
    if !non_empty(rule, "apiGroups") {
        errors.push(required(format!("{path}.apiGroups"), "resource rules must supply at least one api group"));
    }
    if !non_empty(rule, "resources") {
        errors.push(required(format!("{path}.resources"), "resource rules must supply at least one resource"));
    }
}

/// A string list as Go's `%#v` prints it in field errors: `[]string{"/a", "/b"}`.
fn go_strings(list: &[Value]) -> String {
    let quoted: Vec<String> = list.iter().map(|v| format!("{:?}", v.as_str().unwrap_or_default())).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn invalid_strings(field: &str, rendered: &str, detail: &str) -> Cause {
    Cause { reason: "FieldValueInvalid", field: field.to_owned(), message: format!("Invalid value: {rendered}: {detail}") }
}

fn required(field: String, detail: &str) -> Cause {
    let mut cause = Cause::required(field);
    cause.message = format!("Required value: {detail}");
    cause
}

fn binding(kind: &str, obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let role_ref = at(obj, "/roleRef");
    let group = role_ref.get("apiGroup").cloned().unwrap_or(Value::String(String::new()));
    if group.as_str() != Some(RBAC_GROUP) {
        errors.push(Cause::not_supported("roleRef.apiGroup", &group, &[RBAC_GROUP]));
    }
    let kinds: &[&str] = if kind == "RoleBinding" { &["Role", "ClusterRole"] } else { &["ClusterRole"] };
    let role_kind = role_ref.get("kind").cloned().unwrap_or(Value::String(String::new()));
    if !role_kind.as_str().is_some_and(|k| kinds.contains(&k)) {
        errors.push(Cause::not_supported("roleRef.kind", &role_kind, kinds));
    }
    match role_ref.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
        None => errors.push(Cause::required("roleRef.name")),
        Some(name) => errors.check("roleRef.name", name, names::path_segment(name)),
    }
    for (i, subject) in items(obj, "/subjects").iter().enumerate() {
        validate_subject(subject, &format!("subjects[{i}]"), kind == "RoleBinding", errors);
    }
    if let Some(old) = old
        && at(old, "/roleRef") != role_ref
    {
        errors.push(Cause::invalid("roleRef", role_ref, "cannot change roleRef"));
    }
}

fn validate_subject(subject: &Value, path: &str, namespaced: bool, errors: &mut Errors) {
    let name = subject.get("name").and_then(Value::as_str).unwrap_or_default();
    if name.is_empty() {
        errors.push(Cause::required(format!("{path}.name")));
    }
    let group = subject.get("apiGroup").and_then(Value::as_str).unwrap_or_default();
    match subject.get("kind").and_then(Value::as_str).unwrap_or_default() {
        "ServiceAccount" => {
            if !name.is_empty() {
                errors.check(&format!("{path}.name"), name, names::dns1123_subdomain(name));
            }
            if !group.is_empty() {
                errors.push(Cause::not_supported(format!("{path}.apiGroup"), &Value::String(group.into()), &[""]));
            }
            if !namespaced && subject.get("namespace").and_then(Value::as_str).is_none_or(str::is_empty) {
                errors.push(Cause::required(format!("{path}.namespace")));
            }
        }
        "User" | "Group" => {
            if group != RBAC_GROUP {
                errors.push(Cause::not_supported(format!("{path}.apiGroup"), &Value::String(group.into()), &[RBAC_GROUP]));
            }
        }
        other => errors.push(Cause::not_supported(
            format!("{path}.kind"),
            &Value::String(other.into()),
            &["ServiceAccount", "User", "Group"],
        )),
    }
}
