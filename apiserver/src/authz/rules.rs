//! RBAC policy rules and how one matches a request, as upstream's
//! `rbac/v1` helpers: `*` matches any verb, group, resource or URL; a resource entry
//! `pods/log` names a subresource and `*/scale` that subresource of any resource;
//! empty `resourceNames` match every name; a non-resource URL ending in `*` matches
//! every path with that prefix.

use serde_json::{Value, json};

use crate::auth::Attributes;

const ALL: &str = "*";

/// One entry of a (Cluster)Role's `rules`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn strings(value: &Value, field: &str) -> Vec<String> {
    value
        .get(field)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl Rule {
    /// A rule from its JSON form (missing lists are empty).
    pub fn from_json(value: &Value) -> Rule {
        Rule {
            verbs: strings(value, "verbs"),
            api_groups: strings(value, "apiGroups"),
            resources: strings(value, "resources"),
            resource_names: strings(value, "resourceNames"),
            non_resource_urls: strings(value, "nonResourceURLs"),
        }
    }

    /// The `rules` of a (Cluster)Role object.
    pub fn all_from(role: &Value) -> Vec<Rule> {
        role.get("rules")
            .and_then(Value::as_array)
            .map(|rules| rules.iter().map(Rule::from_json).collect())
            .unwrap_or_default()
    }

    /// The JSON form, with empty lists left out as upstream's `omitempty`.
    pub fn to_json(&self) -> Value {
        let mut rule = json!({"verbs": self.verbs});
        for (field, list) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !list.is_empty() {
                rule[field] = json!(list);
            }
        }
        rule
    }

    /// Whether this rule allows the request.
    pub fn allows(&self, request: &Attributes) -> bool {
        if !any_or(&self.verbs, &request.verb) {
            return false;
        }
        if request.is_resource_request() {
            any_or(&self.api_groups, &request.group)
                && self.resource_matches(&request.resource, &request.subresource)
                && (self.resource_names.is_empty() || self.resource_names.contains(&request.name))
        } else {
            self.non_resource_urls
                .iter()
                .any(|url| url_matches(url, &request.path))
        }
    }

    fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        self.resources.iter().any(|entry| {
            if entry == ALL {
                return true;
            }
            if subresource.is_empty() {
                return entry == resource;
            }
            match entry.split_once('/') {
                Some((r, s)) => s == subresource && (r == ALL || r == resource),
                None => false,
            }
        })
    }
}

fn any_or(list: &[String], wanted: &str) -> bool {
    list.iter().any(|item| item == ALL || item == wanted)
}

fn url_matches(rule: &str, path: &str) -> bool {
    if rule == ALL || rule == path {
        return true;
    }
    rule.strip_suffix('*')
        .is_some_and(|prefix| path.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> Rule {
        Rule::from_json(&v)
    }

    fn resource(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "default".into(),
            path: String::new(),
        }
    }

    fn path(verb: &str, path: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    #[test]
    fn verbs_groups_and_resources_match_exactly_or_by_wildcard() {
        let reader =
            rule(json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}));
        assert!(reader.allows(&resource("get", "", "pods", "", "x")));
        assert!(reader.allows(&resource("list", "", "pods", "", "")));
        assert!(!reader.allows(&resource("watch", "", "pods", "", "")));
        assert!(!reader.allows(&resource("get", "apps", "pods", "", "")));
        assert!(!reader.allows(&resource("get", "", "services", "", "")));
        assert!(
            !reader.allows(&resource("get", "", "pods", "log", "x")),
            "a subresource needs its own entry"
        );
        let everything = rule(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}));
        assert!(everything.allows(&resource("deletecollection", "apps", "deployments", "", "")));
        assert!(everything.allows(&resource("create", "", "pods", "eviction", "p")));
        assert!(
            !everything.allows(&path("get", "/healthz")),
            "resource rules never match paths"
        );
    }

    #[test]
    fn subresources_by_name_and_by_star_prefix() {
        let logs = rule(json!({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}));
        assert!(logs.allows(&resource("get", "", "pods", "log", "x")));
        assert!(!logs.allows(&resource("get", "", "pods", "", "x")));
        assert!(!logs.allows(&resource("get", "", "nodes", "log", "x")));
        let scale =
            rule(json!({"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["update"]}));
        assert!(scale.allows(&resource("update", "apps", "deployments", "scale", "web")));
        assert!(!scale.allows(&resource("update", "apps", "deployments", "", "web")));
        assert!(!scale.allows(&resource("update", "apps", "deployments", "status", "web")));
    }

    #[test]
    fn resource_names_limit_the_objects() {
        let one = rule(
            json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"], "verbs": ["get"]}),
        );
        assert!(one.allows(&resource("get", "", "configmaps", "", "cfg")));
        assert!(!one.allows(&resource("get", "", "configmaps", "", "other")));
        assert!(
            !one.allows(&resource("get", "", "configmaps", "", "")),
            "a list names no object"
        );
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_trailing_star() {
        let urls = rule(json!({"nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"]}));
        assert!(urls.allows(&path("get", "/healthz")));
        assert!(!urls.allows(&path("get", "/healthz/etcd")));
        assert!(urls.allows(&path("get", "/apis/apps/v1")));
        assert!(!urls.allows(&path("get", "/apis")));
        assert!(!urls.allows(&path("post", "/healthz")));
        assert!(
            rule(json!({"nonResourceURLs": ["*"], "verbs": ["*"]}))
                .allows(&path("put", "/anything"))
        );
        assert!(
            !urls.allows(&resource("get", "", "pods", "", "")),
            "URL rules never match resources"
        );
    }

    #[test]
    fn json_round_trip_leaves_out_empty_lists() {
        let value = json!({"verbs": ["get"], "nonResourceURLs": ["/version"]});
        assert_eq!(rule(value.clone()).to_json(), value);
    }
}
