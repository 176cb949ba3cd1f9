//! What the API server serves, from discovery: the resources the collector watches
//! (those that can be listed, watched and deleted, at their group's preferred version)
//! and how an owner reference's `apiVersion` and `kind` map to a resource.

use std::collections::{BTreeMap, HashMap};

use kube::Client;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs};

use crate::Error;

/// Resources never watched, as upstream: events are numerous and never owners.
const IGNORED: [(&str, &str); 2] = [("", "events"), ("events.k8s.io", "events")];

/// One served resource.
#[derive(Clone, Debug, PartialEq)]
pub struct Served {
    pub resource: ApiResource,
    pub namespaced: bool,
}

impl Served {
    /// `apiVersion/plural`: names the watch of this resource.
    pub fn key(&self) -> String {
        format!("{}/{}", self.resource.api_version, self.resource.plural)
    }
}

/// The served resources, as of one discovery.
#[derive(Clone, Debug, Default)]
pub struct Resources {
    /// By apiVersion and kind, every served version.
    by_version: HashMap<(String, String), Served>,
    /// By group and kind, at the group's preferred version.
    by_group: HashMap<(String, String), Served>,
    /// What to watch, by key.
    watched: BTreeMap<String, Served>,
}

impl Resources {
    /// Asks the API server.
    pub async fn discover(client: &Client) -> Result<Resources, Error> {
        let discovery = Discovery::new(client.clone()).run().await?;
        let mut resources = Resources::default();
        for group in discovery.groups() {
            for version in group.versions() {
                for (resource, capabilities) in group.versioned_resources(version) {
                    resources.add_version(resource, &capabilities);
                }
            }
            for (resource, capabilities) in group.recommended_resources() {
                resources.add_preferred(resource, &capabilities);
            }
        }
        Ok(resources)
    }

    fn add_version(&mut self, resource: ApiResource, capabilities: &ApiCapabilities) {
        let served = Served { namespaced: capabilities.scope == Scope::Namespaced, resource };
        self.by_version.insert((served.resource.api_version.clone(), served.resource.kind.clone()), served);
    }

    fn add_preferred(&mut self, resource: ApiResource, capabilities: &ApiCapabilities) {
        let served = Served { namespaced: capabilities.scope == Scope::Namespaced, resource };
        let group_kind = (served.resource.group.clone(), served.resource.kind.clone());
        let ignored = IGNORED.iter().any(|(g, p)| *g == served.resource.group && *p == served.resource.plural);
        let watchable = [verbs::LIST, verbs::WATCH, verbs::DELETE].iter().all(|v| capabilities.supports_operation(v));
        if watchable && !ignored {
            self.watched.insert(served.key(), served.clone());
        }
        self.by_group.insert(group_kind, served);
    }

    /// The resources to watch, by key.
    pub fn watched(&self) -> &BTreeMap<String, Served> {
        &self.watched
    }

    /// The resource an owner reference (or an object) of `api_version` and `kind` is
    /// in: that version if served, else the group's preferred one (an object is the
    /// same at every version of its group).
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<&Served> {
        self.by_version.get(&(api_version.to_owned(), kind.to_owned())).or_else(|| {
            let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
            self.by_group.get(&(group.to_owned(), kind.to_owned()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capabilities(namespaced: bool, operations: &[&str]) -> ApiCapabilities {
        ApiCapabilities {
            scope: if namespaced { Scope::Namespaced } else { Scope::Cluster },
            subresources: Vec::new(),
            operations: operations.iter().map(|o| o.to_string()).collect(),
        }
    }

    fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
        let api_version = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
        ApiResource {
            group: group.into(),
            version: version.into(),
            api_version,
            kind: kind.into(),
            plural: plural.into(),
        }
    }

    #[test]
    fn watches_what_can_be_listed_watched_and_deleted() {
        let all = [verbs::LIST, verbs::WATCH, verbs::DELETE, verbs::GET];
        let mut resources = Resources::default();
        for (group, version, kind, plural, operations) in [
            ("apps", "v1", "Deployment", "deployments", &all[..]),
            ("", "v1", "Event", "events", &all[..]),
            ("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", &[verbs::CREATE][..]),
        ] {
            let r = resource(group, version, kind, plural);
            resources.add_version(r.clone(), &capabilities(true, operations));
            resources.add_preferred(r, &capabilities(true, operations));
        }
        let old = resource("example.com", "v1beta1", "Widget", "widgets");
        resources.add_version(old, &capabilities(false, &all));
        let new = resource("example.com", "v1", "Widget", "widgets");
        resources.add_version(new.clone(), &capabilities(false, &all));
        resources.add_preferred(new, &capabilities(false, &all));

        let keys: Vec<&str> = resources.watched().keys().map(String::as_str).collect();
        assert_eq!(keys, ["apps/v1/deployments", "example.com/v1/widgets"]);
        assert_eq!(resources.resolve("example.com/v1beta1", "Widget").unwrap().resource.version, "v1beta1");
        assert_eq!(resources.resolve("example.com/v2", "Widget").unwrap().resource.version, "v1");
        assert!(!resources.resolve("example.com/v1", "Widget").unwrap().namespaced);
        assert!(resources.resolve("v1", "Gadget").is_none());
    }
}
