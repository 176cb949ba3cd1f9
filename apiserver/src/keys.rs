//! Storage key layout, as kube-apiserver's: `/registry/[GROUP/]PLURAL/[NAMESPACE/]NAME`.

use waggle_apimachinery::registry::Resource;

/// The group whose keys hold `resource`'s objects: its own, except for the kinds
/// upstream serves from another group's storage (`events.k8s.io` Events are core Events).
fn storage_group(resource: &Resource) -> &str {
    match (resource.group, resource.plural) {
        ("events.k8s.io", "events") => "",
        (group, _) => group,
    }
}

/// The prefix of every object of `resource`, or of those in `namespace`.
pub fn collection_prefix(resource: &Resource, namespace: Option<&str>) -> String {
    let mut key = String::from("/registry/");
    let group = storage_group(resource);
    if !group.is_empty() {
        key.push_str(group);
        key.push('/');
    }
    key.push_str(resource.plural);
    key.push('/');
    if let Some(ns) = namespace.filter(|_| resource.namespaced()) {
        key.push_str(ns);
        key.push('/');
    }
    key
}

/// The key of one object.
pub fn object_key(resource: &Resource, namespace: Option<&str>, name: &str) -> String {
    let mut key = collection_prefix(resource, namespace);
    key.push_str(name);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use waggle_apimachinery::registry::find;

    #[test]
    fn keys_follow_upstream_layout() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(object_key(pods, Some("default"), "p"), "/registry/pods/default/p");
        assert_eq!(collection_prefix(pods, None), "/registry/pods/");
        let nodes = find("", "v1", "nodes").unwrap();
        assert_eq!(object_key(nodes, Some("ignored"), "n1"), "/registry/nodes/n1");
        let events = find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(object_key(events, Some("a"), "e"), "/registry/events/a/e");
        let deploy = find("apps", "v1", "deployments").unwrap();
        assert_eq!(collection_prefix(deploy, Some("a")), "/registry/apps/deployments/a/");
    }
}
