//! OpenAPI v3 documents of custom resources' group versions, as apiextensions-apiserver
//! publishes them: each kind's definition is its version's `openAPIV3Schema` with
//! `apiVersion`, `kind` and `metadata` filled in, beside its list and the meta types
//! the operations use. Built per request from the current [`Registry`] (custom groups
//! are small); `kubectl explain` reads them, and `apply` learns from the PATCH
//! operations that custom resources take no strategic merge patch.

use serde_json::{Map, Value, json};

use super::definitions::{self, definition_name};
use super::paths::{self, Dialect};
use super::{KUBERNETES_VERSION, to_v3};
use crate::registry::{Registry, Resource};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// The v3 paths (`apis/<group>/<version>`) of the custom group versions.
pub fn paths(registry: &Registry) -> Vec<(String, &'static str, &'static str)> {
    let mut out: Vec<(String, &'static str, &'static str)> = Vec::new();
    for r in registry.custom() {
        let path = format!("apis/{}/{}", r.group, r.version);
        if !out.iter().any(|(p, _, _)| *p == path) {
            out.push((path, r.group, r.version));
        }
    }
    out
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The document of one custom group version.
pub fn document(registry: &Registry, group: &str, version: &str) -> Value {
    let mut defs = definitions::generate(Some((group, version)));
    defs.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(),
        paths::patch_definition(),
    );
    let mut schemas = match to_v3(&Value::Object(defs)) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let mut operations = Map::new();
    for r in registry.in_group_version(group, version) {
        paths::add_resource_paths(Dialect::OpenApi3, r, &mut operations);
        let name = definition_name(r.group, r.version, r.kind);
        schemas.insert(name.clone(), kind_schema(r));
        schemas.insert(format!("{name}List"), list_schema(r, &name));
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": KUBERNETES_VERSION},
        "paths": to_v3(&Value::Object(operations)),
        "components": {"schemas": schemas},
    })
}

fn gvk(r: &Resource, kind: &str) -> Value {
    json!([{"group": r.group, "kind": kind, "version": r.version}])
}

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

fn kind_schema(r: &Resource) -> Value {
    let schema = r.custom.map(|c| c.schema.clone()).unwrap_or(Value::Null);
    let mut schema = match schema {
        Value::Object(map) => map,
        _ => {
            let mut map = Map::new();
            map.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
            map
        }
    };
    schema.insert("type".into(), "object".into());
    let properties = schema
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut filled = Map::new();
    filled.insert(
        "apiVersion".into(),
        json!({"type": "string", "description": API_VERSION_DESCRIPTION}),
    );
    filled.insert(
        "kind".into(),
        json!({"type": "string", "description": KIND_DESCRIPTION}),
    );
    filled.insert(
        "metadata".into(),
        json!({"description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata", "allOf": [reference(OBJECT_META)]}),
    );
    for (key, value) in properties {
        if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            filled.insert(key, value);
        }
    }
    schema.insert("properties".into(), Value::Object(filled));
    schema.insert("x-kubernetes-group-version-kind".into(), gvk(r, r.kind));
    Value::Object(schema)
}

fn list_schema(r: &Resource, item: &str) -> Value {
    let list_kind = r
        .custom
        .map_or_else(|| format!("{}List", r.kind), |c| c.list_kind.clone());
    json!({
        "description": format!("{list_kind} is a list of {}", r.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": API_VERSION_DESCRIPTION},
            "items": {"type": "array", "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", r.plural), "items": reference(item)},
            "kind": {"type": "string", "description": KIND_DESCRIPTION},
            "metadata": {"description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "allOf": [reference(LIST_META)]},
        },
        "x-kubernetes-group-version-kind": gvk(r, &list_kind),
    })
}
