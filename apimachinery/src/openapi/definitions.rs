//! Schema definitions for every served kind, generated from k8s-openapi's types (their
//! `schemars` impls carry upstream's descriptions) and completed with what upstream's
//! documents add: `x-kubernetes-group-version-kind`, list merge metadata from
//! [`super::patch_meta`], `<Kind>List` definitions, and the `int-or-string` formats.
//!
//! Definitions use swagger 2.0 references (`#/definitions/<name>`); the OpenAPI v3
//! rendering rewrites them.

use k8s_openapi::api::{
    apps, authentication, authorization, autoscaling, batch, certificates, coordination, core, discovery, events,
    networking, policy, rbac, scheduling, storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use super::patch_meta;
use crate::registry::{self, Resource};

/// Definition name → schema.
pub type Definitions = Map<String, Value>;

const REF_PREFIX: &str = "#/definitions/";

/// The name upstream gives a kind's schema: `io.k8s.api.<short group>.<version>.<kind>`
/// for built-in kinds, the reversed group for custom ones (`com.example.stable.v1.CronTab`).
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    if group == registry::custom::GROUP {
        return format!("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{version}.{kind}");
    }
    if !group.is_empty() && !registry::RESOURCES.iter().any(|r| r.group == group) {
        let reversed: Vec<&str> = group.split('.').rev().collect();
        return format!("{}.{version}.{kind}", reversed.join("."));
    }
    let short = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("io.k8s.api.{short}.{version}.{kind}")
}

/// The definition name of the object a `$ref` points at.
pub fn ref_target(reference: &str) -> Option<&str> {
    reference
        .strip_prefix(REF_PREFIX)
        .or_else(|| reference.strip_prefix("#/components/schemas/"))
}

macro_rules! add_types {
    ($generator:ident, $($t:ty),* $(,)?) => {
        {
            $( let _ = $generator.subschema_for::<$t>(); )*
        }
    };
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = "/definitions".into();
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator()
}

fn add_group_version(generator: &mut SchemaGenerator, group: &str, version: &str) {
    match (group, version) {
        ("", "v1") => add_types!(
            generator,
            core::v1::Namespace,
            core::v1::Pod,
            core::v1::Service,
            core::v1::Endpoints,
            core::v1::Node,
            core::v1::ConfigMap,
            core::v1::Secret,
            core::v1::ServiceAccount,
            core::v1::Event,
            core::v1::ReplicationController,
            core::v1::ResourceQuota,
            core::v1::LimitRange,
            core::v1::PersistentVolume,
            core::v1::PersistentVolumeClaim,
            core::v1::Binding,
            authentication::v1::TokenRequest,
            policy::v1::Eviction,
            autoscaling::v1::Scale,
        ),
        ("apps", "v1") => add_types!(
            generator,
            apps::v1::Deployment,
            apps::v1::ReplicaSet,
            apps::v1::DaemonSet,
            apps::v1::StatefulSet,
            apps::v1::ControllerRevision,
            autoscaling::v1::Scale,
        ),
        ("batch", "v1") => add_types!(generator, batch::v1::Job, batch::v1::CronJob),
        ("autoscaling", "v1") => add_types!(generator, autoscaling::v1::HorizontalPodAutoscaler),
        ("autoscaling", "v2") => add_types!(generator, autoscaling::v2::HorizontalPodAutoscaler),
        ("certificates.k8s.io", "v1") => add_types!(generator, certificates::v1::CertificateSigningRequest),
        ("policy", "v1") => add_types!(generator, policy::v1::PodDisruptionBudget),
        ("discovery.k8s.io", "v1") => add_types!(generator, discovery::v1::EndpointSlice),
        ("events.k8s.io", "v1") => add_types!(generator, events::v1::Event),
        ("networking.k8s.io", "v1") => add_types!(
            generator,
            networking::v1::NetworkPolicy,
            networking::v1::Ingress,
            networking::v1::IngressClass,
        ),
        ("rbac.authorization.k8s.io", "v1") => add_types!(
            generator,
            rbac::v1::ClusterRoleBinding,
            rbac::v1::ClusterRole,
            rbac::v1::RoleBinding,
            rbac::v1::Role,
        ),
        ("storage.k8s.io", "v1") => add_types!(generator, storage::v1::StorageClass),
        ("apiextensions.k8s.io", "v1") => add_types!(generator, apiextensions::CustomResourceDefinition),
        ("scheduling.k8s.io", "v1") => add_types!(generator, scheduling::v1::PriorityClass),
        ("coordination.k8s.io", "v1") => add_types!(generator, coordination::v1::Lease),
        ("authentication.k8s.io", "v1") => {
            add_types!(generator, authentication::v1::SelfSubjectReview)
        }
        ("authorization.k8s.io", "v1") => {
            add_types!(
                generator,
                authorization::v1::LocalSubjectAccessReview,
                authorization::v1::SelfSubjectAccessReview,
                authorization::v1::SelfSubjectRulesReview,
                authorization::v1::SubjectAccessReview,
            )
        }
        _ => {}
    }
    add_types!(
        generator,
        meta::Status,
        meta::DeleteOptions,
        meta::APIResourceList
    );
}

/// Definitions for the resources of one group/version (`None`: every served group),
/// plus the meta types their operations use.
pub fn generate(only: Option<(&str, &str)>) -> Definitions {
    let mut generator = generator();
    let mut served: Vec<&'static Resource> = Vec::new();
    let mut gvs: Vec<(&str, &str)> = Vec::new();
    for r in registry::RESOURCES {
        if only.is_some_and(|(g, v)| (g, v) != (r.group, r.version)) {
            continue;
        }
        served.push(r);
        if !gvs.contains(&(r.group, r.version)) {
            gvs.push((r.group, r.version));
        }
    }
    for (g, v) in &gvs {
        add_group_version(&mut generator, g, v);
    }
    let mut defs = generator.take_definitions(false);
    for r in &served {
        complete_kind(&mut defs, r);
    }
    stamp_gvk(
        &mut defs,
        "io.k8s.api.autoscaling.v1.Scale",
        &[("autoscaling", "v1", "Scale")],
    );
    stamp_gvk(
        &mut defs,
        "io.k8s.api.policy.v1.Eviction",
        &[("policy", "v1", "Eviction")],
    );
    stamp_gvk(
        &mut defs,
        "io.k8s.api.authentication.v1.TokenRequest",
        &[("authentication.k8s.io", "v1", "TokenRequest")],
    );
    stamp_gvk(
        &mut defs,
        "io.k8s.api.core.v1.Binding",
        &[("", "v1", "Binding")],
    );
    stamp_gvk(
        &mut defs,
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        &[("", "v1", "Status")],
    );
    let delete_gvks: Vec<(&str, &str, &str)> =
        gvs.iter().map(|(g, v)| (*g, *v, "DeleteOptions")).collect();
    stamp_gvk(
        &mut defs,
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        &delete_gvks,
    );
    let names: Vec<String> = defs.keys().cloned().collect();
    for name in names {
        if let Some(schema) = defs.get_mut(&name) {
            stamp_field_meta(&name, schema);
        }
    }
    fix_scalars(&mut defs);
    for name in ATOMIC_STRUCTS {
        if let Some(Value::Object(s)) = defs.get_mut(*name) {
            s.insert("x-kubernetes-map-type".into(), "atomic".into());
        }
    }
    defs
}

/// Structs upstream marks `+structType=atomic`: owned and replaced as a whole.
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
];

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

fn stamp_gvk(defs: &mut Definitions, name: &str, gvks: &[(&str, &str, &str)]) {
    if let Some(Value::Object(schema)) = defs.get_mut(name) {
        let list: Vec<Value> = gvks.iter().map(|(g, v, k)| gvk(g, v, k)).collect();
        schema.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
    }
}

fn complete_kind(defs: &mut Definitions, r: &Resource) {
    let name = definition_name(r.group, r.version, r.kind);
    let Some(Value::Object(schema)) = defs.get_mut(&name) else {
        return;
    };
    // k8s-openapi marks `metadata` required because its Rust field is not optional;
    // upstream does not.
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|f| f != "metadata");
        if required.is_empty() {
            schema.remove("required");
        }
    }
    stamp_gvk(defs, &name, &[(r.group, r.version, r.kind)]);
    if !r.persisted() {
        // Nothing is stored, so nothing is listed: no `<Kind>List`, as upstream.
        return;
    }
    let list_name = format!("{name}List");
    let Some(Value::Object(kind_schema)) = defs.get(&name) else {
        return;
    };
    let props = kind_schema.get("properties").and_then(Value::as_object);
    let api_version = props
        .and_then(|p| p.get("apiVersion"))
        .cloned()
        .unwrap_or(json!({"type": "string"}));
    let kind = props
        .and_then(|p| p.get("kind"))
        .cloned()
        .unwrap_or(json!({"type": "string"}));
    let plural_kind = if r.kind.ends_with('s') {
        r.kind.to_owned()
    } else {
        format!("{}s", r.kind)
    };
    let list = json!({
        "description": format!("{}List is a list of {}.", r.kind, plural_kind),
        "type": "object",
        "properties": {
            "apiVersion": api_version,
            "items": {
                "description": format!("List of {}.", r.plural),
                "type": "array",
                "items": {"$ref": format!("{REF_PREFIX}{name}")},
            },
            "kind": kind,
            "metadata": {
                "$ref": format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [gvk(r.group, r.version, &format!("{}List", r.kind))],
    });
    defs.insert(list_name, list);
    if !defs.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta") {
        let mut generator = generator();
        let _ = generator.subschema_for::<meta::ListMeta>();
        defs.extend(generator.take_definitions(false));
    }
}

fn stamp_field_meta(name: &str, schema: &mut Value) {
    let Some(Value::Object(props)) = schema.get_mut("properties") else {
        return;
    };
    for (field, prop) in props.iter_mut() {
        let Some(m) = patch_meta::lookup(name, field) else {
            continue;
        };
        let Value::Object(prop) = prop else { continue };
        if let Some(key) = m.merge_key {
            prop.insert("x-kubernetes-patch-merge-key".into(), key.into());
        }
        if let Some(strategy) = m.strategy {
            prop.insert("x-kubernetes-patch-strategy".into(), strategy.into());
        }
        if let Some(list_type) = m.list_type {
            prop.insert("x-kubernetes-list-type".into(), list_type.into());
        }
        if !m.map_keys.is_empty() {
            prop.insert("x-kubernetes-list-map-keys".into(), json!(m.map_keys));
        }
    }
}

/// Upstream's swagger types for the scalar wrappers.
fn fix_scalars(defs: &mut Definitions) {
    if let Some(Value::Object(s)) = defs.get_mut("io.k8s.apimachinery.pkg.util.intstr.IntOrString")
    {
        s.remove("x-kubernetes-int-or-string");
        s.insert("type".into(), "string".into());
        s.insert("format".into(), "int-or-string".into());
    }
    if let Some(Value::Object(s)) = defs.get_mut("io.k8s.apimachinery.pkg.api.resource.Quantity") {
        s.remove("x-kubernetes-int-or-string");
        s.insert("type".into(), "string".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstream() {
        assert_eq!(definition_name("", "v1", "Pod"), "io.k8s.api.core.v1.Pod");
        assert_eq!(
            definition_name("discovery.k8s.io", "v1", "EndpointSlice"),
            "io.k8s.api.discovery.v1.EndpointSlice"
        );
        assert_eq!(
            ref_target("#/definitions/io.k8s.api.core.v1.Pod"),
            Some("io.k8s.api.core.v1.Pod")
        );
    }

    #[test]
    fn every_served_kind_and_list_has_a_gvk_definition() {
        let defs = generate(None);
        for r in registry::RESOURCES {
            let name = definition_name(r.group, r.version, r.kind);
            let def = defs.get(&name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(def["x-kubernetes-group-version-kind"][0]["kind"], r.kind);
            assert!(
                def.get("required")
                    .is_none_or(|req| !req.as_array().unwrap().contains(&json!("metadata")))
            );
            if !r.persisted() {
                assert!(!defs.contains_key(&format!("{name}List")), "{name}List");
                continue;
            }
            let list = defs.get(&format!("{name}List")).unwrap();
            assert_eq!(
                list["properties"]["items"]["items"]["$ref"],
                format!("#/definitions/{name}")
            );
        }
    }

    #[test]
    fn containers_carry_merge_metadata_and_descriptions() {
        let defs = generate(Some(("", "v1")));
        let containers = &defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        let ports = &defs["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"])
        );
        let desc = defs["io.k8s.api.core.v1.Container"]["description"]
            .as_str()
            .unwrap();
        assert!(desc.contains("single application container"));
        assert_eq!(
            defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"],
            "int-or-string"
        );
        assert!(!defs.contains_key("io.k8s.api.apps.v1.Deployment"));
    }
}
