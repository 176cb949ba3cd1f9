//! OpenAPI documents for every served kind, built once and cached:
//!
//! | endpoint | function | content type |
//! |---|---|---|
//! | `GET /openapi/v2` | [`v2_response`] (by `Accept`: [`v2_protobuf`] or [`v2_json`]) | [`V2_PROTOBUF_CONTENT_TYPE`] or `application/json` |
//! | `GET /openapi/v3` | [`v3_index_bytes`] ([`v3_index`]) | `application/json` |
//! | `GET /openapi/v3/<api/v1 \| apis/g/v>` (any `?hash=`) | [`v3_document_bytes`] ([`v3_document`]) | `application/json` |
//!
//! kubectl 1.32 reads the v3 documents for `explain`, for the patch metadata of
//! client-side `apply`, and to learn that the server does `fieldValidation` (the
//! parameter on each kind's PATCH operation); without them it falls back to the protobuf
//! v2 document, and refuses `create -f`/`apply` when it cannot get that either (older
//! kubectls always use v2).
//! [`all_definitions`] and [`navigate::Node`] give the other modules the schemas.

pub mod custom;
pub mod definitions;
pub mod navigate;
pub mod patch_meta;
pub mod paths;
pub mod proto;
pub mod validate;

use std::borrow::Cow;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::registry::{self, Registry};
use definitions::Definitions;
use paths::Dialect;

/// Content type of the protobuf v2 document.
pub const V2_PROTOBUF_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The Kubernetes version the documents describe (k8s-openapi's `v1_33` types).
pub const KUBERNETES_VERSION: &str = "v1.33.0";

/// Every served kind's definitions (swagger 2 `$ref`s), generated on first use.
pub fn all_definitions() -> &'static Definitions {
    static DEFS: OnceLock<Definitions> = OnceLock::new();
    DEFS.get_or_init(|| {
        let mut defs = definitions::generate(None);
        defs.insert("io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(), paths::patch_definition());
        defs
    })
}

/// `/openapi/v2` as JSON.
pub fn v2_json() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut paths = Map::new();
        for r in registry::RESOURCES {
            paths::add_resource_paths(Dialect::Swagger2, r, &mut paths);
        }
        json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
            "paths": paths,
            "definitions": all_definitions(),
        })
    })
}

/// `/openapi/v2` as gnostic protobuf (what kubectl asks for).
pub fn v2_protobuf() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| proto::encode_document(v2_json()))
}

/// The `/openapi/v2` response for a request's `Accept` header: `(content type, body)`,
/// protobuf when the client asks for it (kubectl does), JSON otherwise. Cached.
pub fn v2_response(accept: &str) -> (&'static str, &'static [u8]) {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    if accept.contains("protobuf") {
        (V2_PROTOBUF_CONTENT_TYPE, v2_protobuf())
    } else {
        ("application/json", JSON.get_or_init(|| serde_json::to_vec(v2_json()).expect("documents serialize")))
    }
}

/// The serialized `/openapi/v3` index of `registry`: the built-in group versions'
/// (cached) and the custom ones'.
pub fn v3_index_bytes(registry: &Registry) -> Cow<'static, [u8]> {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    let custom = custom::paths(registry);
    if custom.is_empty() {
        return Cow::Borrowed(BYTES.get_or_init(|| serde_json::to_vec(v3_index()).expect("documents serialize")));
    }
    let mut index = v3_index().clone();
    for (path, group, version) in custom {
        // A custom document is a function of its group version's resources: hash those,
        // rather than build every document for the index.
        let described: String = registry.in_group_version(group, version).map(|r| format!("{r:?}")).collect();
        let hash = fnv1a(described.as_bytes());
        index["paths"][&path] = json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash:016X}")});
    }
    Cow::Owned(serde_json::to_vec(&index).expect("documents serialize"))
}

/// The serialized `/openapi/v3/<path>` document of `registry` (cached for built-in
/// group versions), `None` when not served.
pub fn v3_document_bytes(registry: &Registry, path: &str) -> Option<Cow<'static, [u8]>> {
    static BYTES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    let all = BYTES.get_or_init(|| v3().docs.iter().map(|(p, d)| (p.clone(), serde_json::to_vec(d).expect("documents serialize"))).collect());
    let path = path.split('?').next().unwrap_or_default().trim_matches('/');
    if let Some((_, bytes)) = all.iter().find(|(p, _)| p == path) {
        return Some(Cow::Borrowed(bytes.as_slice()));
    }
    let (_, group, version) = custom::paths(registry).into_iter().find(|(p, _, _)| p == path)?;
    Some(Cow::Owned(serde_json::to_vec(&custom::document(registry, group, version)).expect("documents serialize")))
}

/// The v3 discovery paths served: `api/v1`, `apis/apps/v1`, ...
fn v3_paths() -> Vec<(String, &'static str, &'static str)> {
    let mut out: Vec<(String, &'static str, &'static str)> = Vec::new();
    for r in registry::RESOURCES {
        let path = if r.group.is_empty() { format!("api/{}", r.version) } else { format!("apis/{}/{}", r.group, r.version) };
        if !out.iter().any(|(p, _, _)| *p == path) {
            out.push((path, r.group, r.version));
        }
    }
    out
}

/// Rewrites swagger 2 references to OpenAPI 3 ones; a `$ref` with siblings (a field's
/// description) becomes `allOf: [{$ref}]` as upstream writes it.
fn to_v3(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut out = Map::new();
            let reference = o.get("$ref").and_then(Value::as_str).map(|r| r.replace("#/definitions/", "#/components/schemas/"));
            for (k, val) in o {
                if k != "$ref" {
                    out.insert(k.clone(), to_v3(val));
                }
            }
            match reference {
                Some(r) if out.is_empty() => {
                    out.insert("$ref".into(), r.into());
                }
                Some(r) => {
                    out.insert("allOf".into(), json!([{"$ref": r}]));
                }
                None => {}
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(to_v3).collect()),
        other => other.clone(),
    }
}

fn build_v3(group: &str, version: &str) -> Value {
    let mut defs = definitions::generate(Some((group, version)));
    defs.insert("io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(), paths::patch_definition());
    if let Some(Value::Object(q)) = defs.get_mut("io.k8s.apimachinery.pkg.api.resource.Quantity") {
        q.remove("type");
        q.insert("oneOf".into(), json!([{"type": "string"}, {"type": "number"}]));
    }
    let mut p = Map::new();
    for r in registry::Registry::default().in_group_version(group, version) {
        paths::add_resource_paths(Dialect::OpenApi3, r, &mut p);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": to_v3(&Value::Object(p)),
        "components": {"schemas": to_v3(&Value::Object(defs))},
    })
}

struct V3 {
    index: Value,
    docs: Vec<(String, Value)>,
}

fn v3() -> &'static V3 {
    static V3_DOCS: OnceLock<V3> = OnceLock::new();
    V3_DOCS.get_or_init(|| {
        let docs: Vec<(String, Value)> = v3_paths().into_iter().map(|(p, g, v)| (p, build_v3(g, v))).collect();
        let mut index = Map::new();
        for (path, doc) in &docs {
            let hash = fnv1a(doc.to_string().as_bytes());
            index.insert(path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash:016X}")}));
        }
        V3 { index: json!({"paths": index}), docs }
    })
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// `/openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}}}`.
pub fn v3_index() -> &'static Value {
    &v3().index
}

/// `/openapi/v3/<path>` for `path` = `api/v1` or `apis/<group>/<version>` (no leading
/// slash, query string stripped); `None` when that group/version is not served.
pub fn v3_document(path: &str) -> Option<&'static Value> {
    let path = path.trim_matches('/');
    v3().docs.iter().find(|(p, _)| p == path).map(|(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_index_lists_every_group_version() {
        let paths = v3_index()["paths"].as_object().unwrap();
        assert!(paths["api/v1"]["serverRelativeURL"].as_str().unwrap().starts_with("/openapi/v3/api/v1?hash="));
        assert!(paths.contains_key("apis/apps/v1"));
        assert!(paths.contains_key("apis/discovery.k8s.io/v1"));
        assert!(v3_document("/apis/apps/v1").is_some());
        assert!(v3_document("apis/apps/v2").is_none());
    }

    #[test]
    fn v3_uses_component_refs_and_all_of() {
        let doc = v3_document("api/v1").unwrap();
        let pod = &doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
        assert_eq!(pod["properties"]["spec"]["allOf"][0]["$ref"], "#/components/schemas/io.k8s.api.core.v1.PodSpec");
        assert!(pod["properties"]["spec"]["description"].as_str().unwrap().starts_with("Specification"));
        let text = doc.to_string();
        assert!(!text.contains("#/definitions/"));
        assert!(doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
    }

    #[test]
    fn responses_pick_the_encoding_and_strip_queries() {
        let (ct, body) = v2_response("application/com.github.proto-openapi.spec.v2@v1.0+protobuf");
        assert_eq!(ct, V2_PROTOBUF_CONTENT_TYPE);
        assert_eq!(body, v2_protobuf());
        let (ct, body) = v2_response("application/json");
        assert_eq!(ct, "application/json");
        assert_eq!(serde_json::from_slice::<Value>(body).unwrap()["swagger"], "2.0");
        assert!(v3_document_bytes(&Registry::default(), "api/v1?hash=ABC").is_some());
        assert!(serde_json::from_slice::<Value>(&v3_index_bytes(&Registry::default())).unwrap()["paths"].is_object());
    }

    #[test]
    fn v2_protobuf_starts_with_swagger_version() {
        let bytes = v2_protobuf();
        assert_eq!(&bytes[..5], &[0x0a, 3, b'2', b'.', b'0']);
        assert!(bytes.len() > 100_000);
        assert!(v2_json()["definitions"]["io.k8s.api.apps.v1.DeploymentList"].is_object());
    }
}
