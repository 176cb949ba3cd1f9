//! Upstream's list merge metadata (the `patchStrategy`/`patchMergeKey` struct tags and
//! `+listType`/`+listMapKey` markers of the Kubernetes Go types), which k8s-openapi's
//! schemas do not carry. [`super::definitions`] stamps them onto the generated schemas as
//! `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`
//! and `x-kubernetes-list-map-keys`; strategic merge and server-side apply read them back
//! from there, so this table is the single source.

/// Merge metadata of one list (or, for `retainKeys`, struct) field.
#[derive(Clone, Copy, Debug)]
pub struct FieldMeta {
    /// Definition name, e.g. `io.k8s.api.core.v1.PodSpec`.
    pub definition: &'static str,
    pub field: &'static str,
    /// `x-kubernetes-patch-merge-key`.
    pub merge_key: Option<&'static str>,
    /// `x-kubernetes-patch-strategy`: `merge`, `retainKeys`, `merge,retainKeys`.
    pub strategy: Option<&'static str>,
    /// `x-kubernetes-list-type`: `map`, `set` or `atomic`.
    pub list_type: Option<&'static str>,
    /// `x-kubernetes-list-map-keys` (only with `list_type == Some("map")`).
    pub map_keys: &'static [&'static str],
}

const fn keyed(definition: &'static str, field: &'static str, key: &'static str, map_keys: &'static [&'static str]) -> FieldMeta {
    FieldMeta { definition, field, merge_key: Some(key), strategy: Some("merge"), list_type: Some("map"), map_keys }
}

const fn keyed_retain(definition: &'static str, field: &'static str, key: &'static str) -> FieldMeta {
    FieldMeta { definition, field, merge_key: Some(key), strategy: Some("merge,retainKeys"), list_type: Some("map"), map_keys: &["name"] }
}

const fn merge_only(definition: &'static str, field: &'static str, key: &'static str) -> FieldMeta {
    FieldMeta { definition, field, merge_key: Some(key), strategy: Some("merge"), list_type: None, map_keys: &[] }
}

const fn set(definition: &'static str, field: &'static str, strategy: Option<&'static str>) -> FieldMeta {
    FieldMeta { definition, field, merge_key: None, strategy, list_type: Some("set"), map_keys: &[] }
}

const fn atomic(definition: &'static str, field: &'static str) -> FieldMeta {
    FieldMeta { definition, field, merge_key: None, strategy: None, list_type: Some("atomic"), map_keys: &[] }
}

const fn retain(definition: &'static str, field: &'static str) -> FieldMeta {
    FieldMeta { definition, field, merge_key: None, strategy: Some("retainKeys"), list_type: None, map_keys: &[] }
}

macro_rules! core {
    ($name:literal) => {
        concat!("io.k8s.api.core.v1.", $name)
    };
}

/// The table. Conditions lists use `type` as merge key everywhere upstream does.
pub static FIELDS: &[FieldMeta] = &[
    // metadata
    set("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", Some("merge")),
    keyed("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", "uid", &["uid"]),
    atomic("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "managedFields"),
    // pods
    keyed(core!("PodSpec"), "containers", "name", &["name"]),
    keyed(core!("PodSpec"), "initContainers", "name", &["name"]),
    keyed(core!("PodSpec"), "ephemeralContainers", "name", &["name"]),
    keyed_retain(core!("PodSpec"), "volumes", "name"),
    keyed(core!("PodSpec"), "imagePullSecrets", "name", &["name"]),
    keyed(core!("PodSpec"), "hostAliases", "ip", &["ip"]),
    keyed(core!("PodSpec"), "topologySpreadConstraints", "topologyKey", &["topologyKey", "whenUnsatisfiable"]),
    keyed(core!("PodSpec"), "schedulingGates", "name", &["name"]),
    keyed_retain(core!("PodSpec"), "resourceClaims", "name"),
    atomic(core!("PodSpec"), "tolerations"),
    keyed(core!("Container"), "ports", "containerPort", &["containerPort", "protocol"]),
    keyed(core!("Container"), "env", "name", &["name"]),
    keyed(core!("Container"), "volumeMounts", "mountPath", &["mountPath"]),
    keyed(core!("Container"), "volumeDevices", "devicePath", &["devicePath"]),
    atomic(core!("Container"), "args"),
    atomic(core!("Container"), "command"),
    keyed(core!("EphemeralContainer"), "ports", "containerPort", &["containerPort", "protocol"]),
    keyed(core!("EphemeralContainer"), "env", "name", &["name"]),
    keyed(core!("EphemeralContainer"), "volumeMounts", "mountPath", &["mountPath"]),
    keyed(core!("EphemeralContainer"), "volumeDevices", "devicePath", &["devicePath"]),
    merge_only(core!("PodStatus"), "conditions", "type"),
    keyed(core!("PodStatus"), "podIPs", "ip", &["ip"]),
    keyed(core!("PodStatus"), "hostIPs", "ip", &["ip"]),
    // services, endpoints, nodes, namespaces, accounts
    keyed(core!("ServiceSpec"), "ports", "port", &["port", "protocol"]),
    keyed(core!("ServiceStatus"), "conditions", "type", &["type"]),
    set(core!("NodeSpec"), "podCIDRs", Some("merge")),
    merge_only(core!("NodeStatus"), "conditions", "type"),
    merge_only(core!("NodeStatus"), "addresses", "type"),
    merge_only(core!("NamespaceStatus"), "conditions", "type"),
    merge_only(core!("ServiceAccount"), "secrets", "name"),
    merge_only(core!("ReplicationControllerStatus"), "conditions", "type"),
    // apps, batch
    retain("io.k8s.api.apps.v1.DeploymentSpec", "strategy"),
    merge_only("io.k8s.api.apps.v1.DeploymentStatus", "conditions", "type"),
    merge_only("io.k8s.api.apps.v1.ReplicaSetStatus", "conditions", "type"),
    merge_only("io.k8s.api.apps.v1.DaemonSetStatus", "conditions", "type"),
    merge_only("io.k8s.api.apps.v1.StatefulSetStatus", "conditions", "type"),
    atomic("io.k8s.api.batch.v1.CronJobStatus", "active"),
    // storage
    atomic(core!("PersistentVolumeSpec"), "accessModes"),
    atomic(core!("PersistentVolumeSpec"), "mountOptions"),
    atomic(core!("PersistentVolumeClaimSpec"), "accessModes"),
    keyed(core!("PersistentVolumeClaimStatus"), "conditions", "type", &["type"]),
    atomic(core!("PersistentVolumeClaimStatus"), "accessModes"),
    atomic("io.k8s.api.storage.v1.StorageClass", "mountOptions"),
    atomic("io.k8s.api.storage.v1.StorageClass", "allowedTopologies"),
    // networking
    atomic("io.k8s.api.networking.v1.IngressSpec", "rules"),
    atomic("io.k8s.api.networking.v1.IngressSpec", "tls"),
    atomic("io.k8s.api.networking.v1.IngressTLS", "hosts"),
    atomic("io.k8s.api.networking.v1.HTTPIngressRuleValue", "paths"),
    atomic("io.k8s.api.networking.v1.IngressLoadBalancerStatus", "ingress"),
    // policy, autoscaling, certificates
    keyed("io.k8s.api.policy.v1.PodDisruptionBudgetStatus", "conditions", "type", &["type"]),
    keyed("io.k8s.api.certificates.v1.CertificateSigningRequestStatus", "conditions", "type", &["type"]),
    atomic("io.k8s.api.certificates.v1.CertificateSigningRequestSpec", "usages"),
    atomic("io.k8s.api.certificates.v1.CertificateSigningRequestSpec", "groups"),
    atomic("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec", "metrics"),
    keyed("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", "conditions", "type", &["type"]),
    atomic("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", "currentMetrics"),
    atomic("io.k8s.api.autoscaling.v2.HPAScalingRules", "policies"),
    // rbac
    atomic("io.k8s.api.rbac.v1.Role", "rules"),
    atomic("io.k8s.api.rbac.v1.ClusterRole", "rules"),
    atomic("io.k8s.api.rbac.v1.AggregationRule", "clusterRoleSelectors"),
    atomic("io.k8s.api.rbac.v1.RoleBinding", "subjects"),
    atomic("io.k8s.api.rbac.v1.ClusterRoleBinding", "subjects"),
    atomic("io.k8s.api.rbac.v1.PolicyRule", "verbs"),
    atomic("io.k8s.api.rbac.v1.PolicyRule", "apiGroups"),
    atomic("io.k8s.api.rbac.v1.PolicyRule", "resources"),
    atomic("io.k8s.api.rbac.v1.PolicyRule", "resourceNames"),
    atomic("io.k8s.api.rbac.v1.PolicyRule", "nonResourceURLs"),
    FieldMeta {
        definition: "io.k8s.api.batch.v1.JobStatus",
        field: "conditions",
        merge_key: Some("type"),
        strategy: Some("merge"),
        list_type: Some("atomic"),
        map_keys: &[],
    },
];

/// The metadata of `definition.field`, if upstream declares any.
pub fn lookup(definition: &str, field: &str) -> Option<&'static FieldMeta> {
    FIELDS.iter().find(|m| m.definition == definition && m.field == field)
}

