//! The resources Waggle's API server serves: the built-in table ([`RESOURCES`]) and
//! the custom resources that CustomResourceDefinitions add ([`custom`]), from which
//! routing, discovery and storage keys are derived.

pub mod custom;

pub use custom::{Custom, PrinterColumn, Registry, ScalePaths};

/// Whether objects of a resource live in a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// One served resource (a REST collection), as discovery describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    /// API group; "" is the core group (served under `/api`).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The path segment: `pods`.
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub scope: Scope,
    /// Subresources served: `status`, `scale`, `binding`, ...
    pub subresources: &'static [&'static str],
    /// The verbs served on the main resource: [`CRUD`] for stored kinds, [`CREATE`]
    /// for requests that are answered and never stored (access reviews).
    pub verbs: &'static [&'static str],
    /// What a CustomResourceDefinition says of a custom resource (`None` for built-ins).
    pub custom: Option<&'static Custom>,
}

/// The verbs of a stored kind.
pub const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// The verbs of a create-only kind (a review: the server answers, nothing is stored).
pub const CREATE: &[&str] = &["create"];

impl Resource {
    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// The verbs discovery lists for the main resource.
    pub fn verbs(&self) -> &'static [&'static str] {
        self.verbs
    }

    /// Whether objects of this kind are stored (and so can be read, listed, watched).
    pub fn persisted(&self) -> bool {
        self.verbs.contains(&"get")
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.contains(&name)
    }
}

/// What discovery says about one subresource (`pods/status`, `deployments/scale`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubresourceInfo {
    /// Group of the object the subresource accepts and returns ("" is core).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

impl Resource {
    /// Discovery metadata of subresource `name` of this resource, as upstream lists it
    /// (`scale` is `autoscaling/v1 Scale`, `status` is the parent kind, ...).
    pub fn subresource_info(&self, name: &str) -> Option<SubresourceInfo> {
        if !self.has_subresource(name) {
            return None;
        }
        let own = |verbs| SubresourceInfo {
            group: self.group,
            version: self.version,
            kind: self.kind,
            verbs,
        };
        let core = |kind, verbs| SubresourceInfo {
            group: "",
            version: "v1",
            kind,
            verbs,
        };
        const GPU: &[&str] = &["get", "patch", "update"];
        const CREATE_GET: &[&str] = &["create", "get"];
        const PROXY: &[&str] = &["create", "delete", "get", "patch", "update"];
        Some(match name {
            "status" | "ephemeralcontainers" | "approval" => own(GPU),
            "scale" => SubresourceInfo {
                group: "autoscaling",
                version: "v1",
                kind: "Scale",
                verbs: GPU,
            },
            "binding" => core("Binding", &["create"]),
            "log" => core("Pod", &["get"]),
            "exec" => core("PodExecOptions", CREATE_GET),
            "attach" => core("PodAttachOptions", CREATE_GET),
            "portforward" => core("PodPortForwardOptions", CREATE_GET),
            "eviction" => SubresourceInfo {
                group: "policy",
                version: "v1",
                kind: "Eviction",
                verbs: &["create"],
            },
            "finalize" => own(&["update"]),
            "token" => SubresourceInfo {
                group: "authentication.k8s.io",
                version: "v1",
                kind: "TokenRequest",
                verbs: &["create"],
            },
            "proxy" => match self.kind {
                "Pod" => core("PodProxyOptions", PROXY),
                _ => core("NodeProxyOptions", PROXY),
            },
            _ => return None,
        })
    }
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];
const API_EXTENSIONS: &[&str] = &["api-extensions"];

macro_rules! resource {
    ($group:literal, $version:literal, $kind:literal, $plural:literal, $singular:literal,
     [$($short:literal),*], $categories:expr, $scope:ident, [$($sub:literal),*]) => {
        resource!($group, $version, $kind, $plural, $singular, [$($short),*], $categories, $scope, [$($sub),*], CRUD)
    };
    ($group:literal, $version:literal, $kind:literal, $plural:literal, $singular:literal,
     [$($short:literal),*], $categories:expr, $scope:ident, [$($sub:literal),*], $verbs:expr) => {
        Resource {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            short_names: &[$($short),*],
            categories: $categories,
            scope: Scope::$scope,
            subresources: &[$($sub),*],
            verbs: $verbs,
            custom: None,
        }
    };
}

/// Every served resource, grouped by API group in discovery order.
pub static RESOURCES: &[Resource] = &[
    resource!(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        ["ns"],
        NONE,
        Cluster,
        ["status", "finalize"]
    ),
    resource!(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        ["po"],
        ALL,
        Namespaced,
        [
            "status",
            "binding",
            "log",
            "exec",
            "portforward",
            "attach",
            "eviction",
            "ephemeralcontainers"
        ]
    ),
    resource!(
        "",
        "v1",
        "Service",
        "services",
        "service",
        ["svc"],
        ALL,
        Namespaced,
        ["status"]
    ),
    resource!(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        ["ep"],
        NONE,
        Namespaced,
        []
    ),
    resource!(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        ["no"],
        NONE,
        Cluster,
        ["status", "proxy"]
    ),
    resource!(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        ["cm"],
        NONE,
        Namespaced,
        []
    ),
    resource!(
        "",
        "v1",
        "Secret",
        "secrets",
        "secret",
        [],
        NONE,
        Namespaced,
        []
    ),
    resource!(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        ["sa"],
        NONE,
        Namespaced,
        ["token"]
    ),
    resource!(
        "",
        "v1",
        "Event",
        "events",
        "event",
        ["ev"],
        NONE,
        Namespaced,
        []
    ),
    resource!(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        ["quota"],
        NONE,
        Namespaced,
        ["status"]
    ),
    resource!(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        "limitrange",
        ["limits"],
        NONE,
        Namespaced,
        []
    ),
    resource!(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
        ["rc"],
        ALL,
        Namespaced,
        ["status", "scale"]
    ),
    resource!(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        ["pv"],
        NONE,
        Cluster,
        ["status"]
    ),
    resource!(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        ["pvc"],
        NONE,
        Namespaced,
        ["status"]
    ),
    resource!(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        ["deploy"],
        ALL,
        Namespaced,
        ["status", "scale"]
    ),
    resource!(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        ["rs"],
        ALL,
        Namespaced,
        ["status", "scale"]
    ),
    resource!(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        ["ds"],
        ALL,
        Namespaced,
        ["status"]
    ),
    resource!(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        ["sts"],
        ALL,
        Namespaced,
        ["status", "scale"]
    ),
    resource!(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        [],
        NONE,
        Namespaced,
        []
    ),
    resource!(
        "batch",
        "v1",
        "Job",
        "jobs",
        "job",
        [],
        ALL,
        Namespaced,
        ["status"]
    ),
    resource!(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        "cronjob",
        ["cj"],
        ALL,
        Namespaced,
        ["status"]
    ),
    resource!(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        ["hpa"],
        ALL,
        Namespaced,
        ["status"]
    ),
    resource!(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        ["hpa"],
        ALL,
        Namespaced,
        ["status"]
    ),
    resource!(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        "certificatesigningrequest",
        ["csr"],
        NONE,
        Cluster,
        ["approval", "status"]
    ),
    resource!(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        ["pdb"],
        NONE,
        Namespaced,
        ["status"]
    ),
    resource!(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        [],
        NONE,
        Namespaced,
        []
    ),
    // Stored with the core group's Events (see `apiserver::keys`), in their form.
    resource!(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        "event",
        ["ev"],
        NONE,
        Namespaced,
        []
    ),
    resource!(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        ["netpol"],
        NONE,
        Namespaced,
        []
    ),
    resource!(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        ["ing"],
        NONE,
        Namespaced,
        ["status"]
    ),
    resource!(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
        [],
        NONE,
        Cluster,
        []
    ),
    resource!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        [],
        NONE,
        Cluster,
        []
    ),
    resource!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        [],
        NONE,
        Cluster,
        []
    ),
    resource!(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        [],
        NONE,
        Namespaced,
        []
    ),
    resource!(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        [],
        NONE,
        Namespaced,
        []
    ),
    resource!(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        "storageclass",
        ["sc"],
        NONE,
        Cluster,
        []
    ),
    resource!(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
        ["crd", "crds"],
        API_EXTENSIONS,
        Cluster,
        ["status"]
    ),
    resource!(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
        ["pc"],
        NONE,
        Cluster,
        []
    ),
    resource!(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        [],
        NONE,
        Namespaced,
        []
    ),
    resource!(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        "selfsubjectreview",
        [],
        NONE,
        Cluster,
        [],
        CREATE
    ),
    resource!(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
        [],
        NONE,
        Namespaced,
        [],
        CREATE
    ),
    resource!(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        [],
        NONE,
        Cluster,
        [],
        CREATE
    ),
    resource!(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        [],
        NONE,
        Cluster,
        [],
        CREATE
    ),
    resource!(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        "subjectaccessreview",
        [],
        NONE,
        Cluster,
        [],
        CREATE
    ),
];

/// The built-in resource served at `group`/`version`/`plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    Registry::default().find(group, version, plural)
}

/// The built-in resource of an `apiVersion` + `kind` pair.
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    Registry::default().find_kind(api_version, kind)
}

/// The built-in API groups other than core, in discovery order, each with its versions.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    Registry::default().groups()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plural_is_unique_within_its_group_version() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "{} served twice",
                    a.plural
                );
            }
        }
    }

    #[test]
    fn finds_by_path_and_by_kind() {
        assert_eq!(
            find("apps", "v1", "deployments").unwrap().kind,
            "Deployment"
        );
        assert_eq!(find_kind("v1", "Pod").unwrap().plural, "pods");
        assert_eq!(
            find_kind("discovery.k8s.io/v1", "EndpointSlice")
                .unwrap()
                .plural,
            "endpointslices"
        );
        assert!(find("", "v1", "deployments").is_none());
    }

    #[test]
    fn every_subresource_has_discovery_metadata() {
        for r in RESOURCES {
            for sub in r.subresources {
                assert!(r.subresource_info(sub).is_some(), "{}/{sub}", r.plural);
            }
        }
        let scale = find("apps", "v1", "deployments")
            .unwrap()
            .subresource_info("scale")
            .unwrap();
        assert_eq!((scale.group, scale.kind), ("autoscaling", "Scale"));
    }

    #[test]
    fn groups_are_listed_once_in_order() {
        let names: Vec<_> = groups().into_iter().map(|(g, _)| g).collect();
        assert_eq!(
            names,
            [
                "apps",
                "batch",
                "autoscaling",
                "certificates.k8s.io",
                "policy",
                "discovery.k8s.io",
                "events.k8s.io",
                "networking.k8s.io",
                "rbac.authorization.k8s.io",
                "storage.k8s.io",
                "apiextensions.k8s.io",
                "scheduling.k8s.io",
                "coordination.k8s.io",
                "authentication.k8s.io",
                "authorization.k8s.io"
            ]
        );
    }
}
