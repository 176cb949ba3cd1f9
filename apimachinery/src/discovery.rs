//! Discovery documents, derived from [`crate::registry`]: the legacy endpoints
//! (`/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`) and aggregated discovery
//! (`apidiscovery.k8s.io/v2` and `v2beta1`), which kubectl 1.32 asks for first.
//!
//! Aggregated discovery must be served with the response header
//! `Content-Type: application/json;g=apidiscovery.k8s.io;v=<v2|v2beta1>;as=APIGroupDiscoveryList`
//! (see [`aggregated_content_type`]); client-go falls back to the legacy endpoints when
//! the response content type does not say so.

use serde_json::{Value, json};

use crate::registry::{Registry, Resource};

/// `GET /api`: the core group's versions. `server_address` is `host:port` as clients reach it.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_entry(name: &str, versions: &[&str]) -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(versions[0]),
    })
}

/// `GET /apis`: every non-core group.
pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .map(|(g, vs)| group_entry(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`: one group, or `None` when it is not served.
pub fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    let (name, versions) = registry.groups().into_iter().find(|(g, _)| *g == group)?;
    let mut entry = group_entry(name, &versions);
    let obj = entry.as_object_mut().expect("group entry is an object");
    obj.insert("kind".into(), "APIGroup".into());
    obj.insert("apiVersion".into(), "v1".into());
    Some(entry)
}

fn legacy_resource(r: &Resource) -> Value {
    let mut v = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced(),
        "kind": r.kind,
        "verbs": r.verbs(),
    });
    let obj = v.as_object_mut().expect("object");
    if !r.short_names.is_empty() {
        obj.insert("shortNames".into(), json!(r.short_names));
    }
    if !r.categories.is_empty() {
        obj.insert("categories".into(), json!(r.categories));
    }
    v
}

fn legacy_subresource(r: &Resource, sub: &str) -> Option<Value> {
    let info = r.subresource_info(sub)?;
    let mut v = json!({
        "name": format!("{}/{sub}", r.plural),
        "singularName": "",
        "namespaced": r.namespaced(),
        "kind": info.kind,
        "verbs": info.verbs,
    });
    if info.group != r.group || info.version != r.version {
        let obj = v.as_object_mut().expect("object");
        obj.insert("group".into(), info.group.into());
        obj.insert("version".into(), info.version.into());
    }
    Some(v)
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`: an `APIResourceList` with each
/// resource followed by its subresources, sorted by name as upstream does.
/// `None` when nothing is served at that group/version.
pub fn api_resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in registry.in_group_version(group, version) {
        resources.push(legacy_resource(r));
        resources.extend(
            r.subresources
                .iter()
                .filter_map(|s| legacy_subresource(r, s)),
        );
    }
    if resources.is_empty() {
        return None;
    }
    resources.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

/// The aggregated discovery versions a client may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregatedVersion {
    V2,
    V2Beta1,
}

impl AggregatedVersion {
    fn as_str(self) -> &'static str {
        match self {
            Self::V2 => "v2",
            Self::V2Beta1 => "v2beta1",
        }
    }
}

/// Picks the aggregated discovery version from an `Accept` header, in the client's order
/// of preference, or `None` when the client did not ask for aggregated discovery.
pub fn negotiate_aggregated(accept: &str) -> Option<AggregatedVersion> {
    accept.split(',').find_map(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        let has = |p: &str| params.iter().any(|x| x.eq_ignore_ascii_case(p));
        if !(has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList")) {
            return None;
        }
        if has("v=v2") {
            Some(AggregatedVersion::V2)
        } else if has("v=v2beta1") {
            Some(AggregatedVersion::V2Beta1)
        } else {
            None
        }
    })
}

/// The `Content-Type` an aggregated discovery response must carry.
pub fn aggregated_content_type(version: AggregatedVersion) -> String {
    format!(
        "application/json;g=apidiscovery.k8s.io;v={};as=APIGroupDiscoveryList",
        version.as_str()
    )
}

fn aggregated_resource(r: &Resource) -> Value {
    let mut v = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced() { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs(),
    });
    let obj = v.as_object_mut().expect("object");
    if !r.short_names.is_empty() {
        obj.insert("shortNames".into(), json!(r.short_names));
    }
    if !r.categories.is_empty() {
        obj.insert("categories".into(), json!(r.categories));
    }
    let subs: Vec<Value> = r
        .subresources
        .iter()
        .filter_map(|s| {
            let info = r.subresource_info(s)?;
            Some(json!({
                "subresource": s,
                "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
                "verbs": info.verbs,
            }))
        })
        .collect();
    if !subs.is_empty() {
        obj.insert("subresources".into(), Value::Array(subs));
    }
    v
}

fn aggregated_group(registry: &Registry, group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let mut resources: Vec<Value> = registry
                .in_group_version(group, v)
                .map(aggregated_resource)
                .collect();
            resources.sort_by(|a, b| a["resource"].as_str().cmp(&b["resource"].as_str()));
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let mut metadata = json!({"creationTimestamp": null});
    if !group.is_empty() {
        metadata["name"] = group.into();
    }
    json!({"metadata": metadata, "versions": versions})
}

/// Aggregated discovery for `GET /api` (`core == true`) or `GET /apis` (`core == false`)
/// when the client's `Accept` asks for `APIGroupDiscoveryList`.
pub fn aggregated(registry: &Registry, core: bool, version: AggregatedVersion) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group(registry, "", &["v1"])]
    } else {
        registry
            .groups()
            .iter()
            .map(|(g, vs)| aggregated_group(registry, g, vs))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{}", version.as_str()),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_resource_list_has_pods_and_subresources() {
        let list = api_resource_list(&Registry::default(), "", "v1").unwrap();
        assert_eq!(list["groupVersion"], "v1");
        let res = list["resources"].as_array().unwrap();
        let pods = res.iter().find(|r| r["name"] == "pods").unwrap();
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert_eq!(pods["namespaced"], true);
        let status = res.iter().find(|r| r["name"] == "pods/status").unwrap();
        assert_eq!(status["kind"], "Pod");
        assert_eq!(status["verbs"], json!(["get", "patch", "update"]));
        let eviction = res.iter().find(|r| r["name"] == "pods/eviction").unwrap();
        assert_eq!(
            (eviction["group"].as_str(), eviction["kind"].as_str()),
            (Some("policy"), Some("Eviction"))
        );
        let names: Vec<_> = res.iter().map(|r| r["name"].as_str().unwrap()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn only_served_subresources_and_verbs_are_advertised() {
        let core = api_resource_list(&Registry::default(), "", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        for served in [
            "pods/eviction",
            "pods/ephemeralcontainers",
            "namespaces/finalize",
            "resourcequotas",
            "limitranges",
            "serviceaccounts/token",
            "persistentvolumeclaims/status",
        ] {
            assert!(names.contains(&served), "{served} missing");
        }
        assert!(
            !names.contains(&"services/proxy") && !names.contains(&"pods/proxy"),
            "{names:?}"
        );
        let authz = api_resource_list(&Registry::default(), "authorization.k8s.io", "v1").unwrap();
        // Upstream's order (alphabetical); the local review is the namespaced one.
        assert_eq!(authz["resources"][0]["name"], "localsubjectaccessreviews");
        assert_eq!(authz["resources"][0]["namespaced"], true);
        assert_eq!(authz["resources"][1]["name"], "selfsubjectaccessreviews");
        assert_eq!(authz["resources"][1]["verbs"], json!(["create"]));
    }

    #[test]
    fn apps_scale_subresource_is_autoscaling_scale() {
        let list = api_resource_list(&Registry::default(), "apps", "v1").unwrap();
        let scale = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(scale["group"], "autoscaling");
        assert_eq!(scale["kind"], "Scale");
        assert!(api_resource_list(&Registry::default(), "apps", "v2").is_none());
    }

    #[test]
    fn group_list_and_group() {
        let list = api_group_list(&Registry::default());
        let apps = &list["groups"][0];
        assert_eq!(apps["name"], "apps");
        assert_eq!(apps["preferredVersion"]["groupVersion"], "apps/v1");
        assert_eq!(api_group(&Registry::default(), "batch").unwrap()["kind"], "APIGroup");
        assert!(api_group(&Registry::default(), "nope").is_none());
    }

    #[test]
    fn negotiates_aggregated_accept_headers() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate_aggregated(kubectl), Some(AggregatedVersion::V2));
        assert_eq!(
            negotiate_aggregated(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            ),
            Some(AggregatedVersion::V2Beta1)
        );
        assert_eq!(negotiate_aggregated("application/json, */*"), None);
        assert_eq!(
            aggregated_content_type(AggregatedVersion::V2),
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
    }

    #[test]
    fn aggregated_core_and_groups() {
        let core = aggregated(&Registry::default(), true, AggregatedVersion::V2);
        assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2");
        let v1 = &core["items"][0]["versions"][0];
        assert_eq!(v1["version"], "v1");
        let pods = v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["responseKind"]["kind"], "Pod");
        assert!(
            pods["subresources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["subresource"] == "status")
        );
        let groups = aggregated(&Registry::default(), false, AggregatedVersion::V2Beta1);
        assert_eq!(groups["items"][0]["metadata"]["name"], "apps");
        let deploy = groups["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap();
        let deploy = deploy
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        let scale = deploy["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subresource"] == "scale")
            .unwrap();
        assert_eq!(
            scale["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
    }
}
