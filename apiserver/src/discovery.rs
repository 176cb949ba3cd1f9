//! Discovery documents served from the resource registry: `/api`, `/apis`,
//! `/api/v1`, `/apis/<group>/<version>`, and `/version`.
//!
//! The documents come from `waggle_apimachinery::discovery` (aggregated discovery and
//! OpenAPI are negotiated in [`crate::router`]).

use serde_json::{Value, json};
use waggle_apimachinery::registry::Registry;

/// The Kubernetes minor version we serve (it picks the kubectl binary that talks to us).
pub const MINOR: &str = "32";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": MINOR,
        "gitVersion": format!("v1.{MINOR}.0-waggle"),
        "gitCommit": "waggle",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// `/api`: the core group's versions.
pub fn core_versions(server: &str) -> Value {
    waggle_apimachinery::discovery::api_versions(server)
}

/// `/apis`: every other group.
pub fn groups(registry: &Registry) -> Value {
    waggle_apimachinery::discovery::api_group_list(registry)
}

/// `/apis/<group>`: one group.
pub fn group_document(registry: &Registry, name: &str) -> Option<Value> {
    waggle_apimachinery::discovery::api_group(registry, name)
}

/// `/api/v1` or `/apis/<group>/<version>`: the resources with their verbs.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    waggle_apimachinery::discovery::api_resource_list(registry, group, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_list_registry_entries() {
        let core = resource_list(&Registry::default(), "", "v1").unwrap();
        let names: Vec<&str> = core["resources"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
        assert!(names.contains(&"pods") && names.contains(&"pods/status") && names.contains(&"pods/binding"));
        let apps = resource_list(&Registry::default(), "apps", "v1").unwrap();
        let scale = apps["resources"].as_array().unwrap().iter().find(|r| r["name"] == "deployments/scale").unwrap();
        assert_eq!(scale["group"], "autoscaling");
        assert!(resource_list(&Registry::default(), "nope", "v1").is_none());
        assert_eq!(groups(&Registry::default())["groups"][0]["name"], "apps");
    }
}
