//! Parsing a resource URL into what it addresses: resource, namespace, name, subresource.
//!
//! Shapes served (as kube-apiserver): `/api/v1/[watch/][namespaces/NS/]PLURAL[/NAME[/SUB]]`
//! and the same under `/apis/GROUP/VERSION/`.

use waggle_apimachinery::registry::{Registry, Resource};

use crate::status::ApiError;

/// What a resource request addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub resource: &'static Resource,
    /// The namespace from the path (`None` for cluster-scoped or all-namespace requests).
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The legacy `/watch/` path prefix was used.
    pub watch_path: bool,
}

impl Target {
    /// The object's name; the caller checked it is an item request.
    pub fn item_name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}

/// Parses `path` against the served resources; `Ok(None)` if it is not under `/api/v1`
/// or `/apis/G/V` with a resource.
pub fn parse(registry: &Registry, path: &str) -> Result<Option<Target>, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return Ok(None),
    };
    let (watch_path, rest) = match rest {
        ["watch", rest @ ..] if !rest.is_empty() => (true, rest),
        _ => (false, rest),
    };
    // `namespaces/NS/PLURAL...` addresses a namespaced resource when PLURAL is one.
    let (namespace, rest): (Option<String>, Vec<&str>) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if registry.find(group, version, plural).is_some_and(Resource::namespaced) =>
        {
            let mut segments = vec![*plural];
            segments.extend_from_slice(tail);
            (Some((*ns).to_owned()), segments)
        }
        _ => (None, rest.to_vec()),
    };
    let Some(resource) = rest
        .first()
        .and_then(|plural| registry.find(group, version, plural))
    else {
        return Ok(None);
    };
    if rest.len() > 3 || rest.iter().any(|s| s.is_empty()) {
        return Ok(None);
    }
    let name = rest.get(1).map(|s| (*s).to_owned());
    let subresource = rest.get(2).map(|s| (*s).to_owned());
    if let Some(sub) = &subresource {
        if !resource.has_subresource(sub) {
            return Ok(None);
        }
    }
    if resource.namespaced() && namespace.is_none() && name.is_some() {
        // `/api/v1/pods/x` is not a thing: namespaced items need their namespace.
        return Ok(None);
    }
    if watch_path && subresource.is_some() {
        return Err(ApiError::bad_request(
            "watch is not supported on subresources",
        ));
    }
    Ok(Some(Target {
        resource,
        namespace,
        name,
        subresource,
        watch_path,
    }))
}

/// What any resource-shaped path names, served or not, as upstream's `RequestInfo`
/// reads it: so that a request for an unknown resource is authorized (and refused)
/// as the resource request it is, not as a non-resource path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// The legacy `/watch/` prefix was used.
    pub watch_path: bool,
}

/// The [`Shape`] of `path`; `None` for discovery and non-resource paths.
pub fn shape(path: &str) -> Option<Shape> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] if !rest.is_empty() => ("", rest),
        ["apis", group, _version, rest @ ..] if !rest.is_empty() => (*group, rest),
        _ => return None,
    };
    let (watch_path, mut rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let mut namespace = "";
    if let ["namespaces", ns, tail @ ..] = rest {
        namespace = ns;
        // `namespaces/NS/status` and `/finalize` are the namespace's own subresources.
        if !matches!(tail.first(), None | Some(&"status" | &"finalize")) {
            rest = tail;
        }
    }
    let part = |i: usize| rest.get(i).copied().unwrap_or_default().to_owned();
    Some(Shape {
        group: group.to_owned(),
        resource: part(0),
        name: part(1),
        subresource: part(2),
        namespace: namespace.to_owned(),
        watch_path,
    })
    .filter(|s| !s.resource.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(path: &str) -> Target {
        parse(&Registry::default(), path).unwrap().unwrap()
    }

    #[test]
    fn parses_core_and_group_paths() {
        let pods = t("/api/v1/namespaces/default/pods");
        assert_eq!(pods.resource.plural, "pods");
        assert_eq!(pods.namespace.as_deref(), Some("default"));
        assert_eq!(pods.name, None);

        let status = t("/apis/apps/v1/namespaces/ns/deployments/web/scale");
        assert_eq!(status.resource.kind, "Deployment");
        assert_eq!(status.name.as_deref(), Some("web"));
        assert_eq!(status.subresource.as_deref(), Some("scale"));

        let all = t("/api/v1/pods");
        assert_eq!(all.namespace, None);
        assert!(t("/api/v1/watch/namespaces/a/pods").watch_path);
    }

    #[test]
    fn namespace_items_and_their_subresources() {
        let ns = t("/api/v1/namespaces/kube-system");
        assert_eq!(ns.resource.plural, "namespaces");
        assert_eq!(ns.name.as_deref(), Some("kube-system"));
        let fin = t("/api/v1/namespaces/x/finalize");
        assert_eq!(fin.subresource.as_deref(), Some("finalize"));
        let node = t("/api/v1/nodes/n1/status");
        assert_eq!(node.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn shapes_read_any_resource_path_as_upstream_does() {
        let widgets = shape("/apis/example.com/v1/namespaces/team/widgets/w1/scale").unwrap();
        assert_eq!(
            widgets,
            Shape {
                group: "example.com".into(),
                resource: "widgets".into(),
                name: "w1".into(),
                subresource: "scale".into(),
                namespace: "team".into(),
                watch_path: false,
            }
        );
        let ns = shape("/api/v1/namespaces/team").unwrap();
        assert_eq!(
            (
                ns.resource.as_str(),
                ns.name.as_str(),
                ns.namespace.as_str()
            ),
            ("namespaces", "team", "team")
        );
        let status = shape("/api/v1/namespaces/team/status").unwrap();
        assert_eq!(
            (status.resource.as_str(), status.subresource.as_str()),
            ("namespaces", "status")
        );
        assert!(shape("/api/v1/watch/gadgets").unwrap().watch_path);
        assert_eq!(shape("/apis/example.com/v1"), None, "discovery");
        assert_eq!(shape("/healthz"), None);
    }

    #[test]
    fn unknown_paths_are_none() {
        assert!(parse(&Registry::default(), "/api/v1/widgets").unwrap().is_none());
        assert!(parse(&Registry::default(), "/api/v1/pods/x").unwrap().is_none());
        assert!(
            parse(&Registry::default(), "/api/v1/namespaces/a/configmaps/b/status")
                .unwrap()
                .is_none()
        );
        assert!(parse(&Registry::default(), "/version").unwrap().is_none());
    }
}
