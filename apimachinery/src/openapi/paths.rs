//! The `paths` section of the OpenAPI documents: per resource a collection path
//! (list, create, deletecollection), an item path (read, replace, patch, delete) and
//! the `status`/`scale` subresource paths. Each operation carries upstream's
//! `x-kubernetes-group-version-kind` and `x-kubernetes-action` extensions and its query
//! parameters, which is how kubectl decides that the server supports
//! `fieldValidation` (it looks for that parameter on the kind's PATCH operation).

use serde_json::{Map, Value, json};

use super::definitions::definition_name;
use crate::registry::Resource;

/// Which OpenAPI dialect to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Swagger2,
    OpenApi3,
}

impl Dialect {
    fn reference(self, name: &str) -> String {
        match self {
            Self::Swagger2 => format!("#/definitions/{name}"),
            Self::OpenApi3 => format!("#/components/schemas/{name}"),
        }
    }
}

fn camel(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn group_camel(group: &str) -> String {
    if group.is_empty() {
        "Core".into()
    } else {
        camel(group.split('.').next().unwrap_or(group))
    }
}

const JSON_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
/// Custom resources have no strategic merge patch (kubectl reads this list to choose
/// the patch `apply` sends).
const CUSTOM_PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

struct Param {
    name: &'static str,
    kind: &'static str,
    description: &'static str,
}

const DRY_RUN: Param = Param {
    name: "dryRun",
    kind: "string",
    description: "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
};
const FIELD_MANAGER: Param = Param {
    name: "fieldManager",
    kind: "string",
    description: "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
};
const FIELD_VALIDATION: Param = Param {
    name: "fieldValidation",
    kind: "string",
    description: "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
};
const FORCE: Param = Param {
    name: "force",
    kind: "boolean",
    description: "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
};
const PRETTY: Param = Param {
    name: "pretty",
    kind: "string",
    description: "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP client (curl and wget).",
};
const WATCH: Param = Param {
    name: "watch",
    kind: "boolean",
    description: "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
};
const LABEL_SELECTOR: Param = Param {
    name: "labelSelector",
    kind: "string",
    description: "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
};

fn query_param(d: Dialect, p: &Param) -> Value {
    match d {
        Dialect::Swagger2 => {
            json!({"uniqueItems": true, "type": p.kind, "description": p.description, "name": p.name, "in": "query"})
        }
        Dialect::OpenApi3 => {
            json!({"name": p.name, "in": "query", "description": p.description, "schema": {"type": p.kind, "uniqueItems": true}})
        }
    }
}

fn path_param(d: Dialect, name: &str, description: &str) -> Value {
    match d {
        Dialect::Swagger2 => {
            json!({"uniqueItems": true, "type": "string", "description": description, "name": name, "in": "path", "required": true})
        }
        Dialect::OpenApi3 => {
            json!({"name": name, "in": "path", "description": description, "required": true, "schema": {"type": "string", "uniqueItems": true}})
        }
    }
}

struct Op<'a> {
    verb: &'static str,
    action: &'static str,
    description: String,
    gvk: Value,
    id: String,
    body: Option<(&'a str, &'static [&'static str])>,
    response: &'a str,
    params: &'a [&'a Param],
}

fn operation(d: Dialect, op: &Op<'_>) -> Value {
    let mut params: Vec<Value> = op.params.iter().map(|p| query_param(d, p)).collect();
    let mut o = Map::new();
    o.insert("tags".into(), json!([op.id.trim_start_matches(op.verb)]));
    o.insert("description".into(), op.description.clone().into());
    o.insert("operationId".into(), op.id.clone().into());
    match d {
        Dialect::Swagger2 => {
            if let Some((body, consumes)) = op.body {
                params.insert(0, json!({"name": "body", "in": "body", "required": true, "schema": {"$ref": d.reference(body)}}));
                o.insert("consumes".into(), json!(consumes));
            } else {
                o.insert("consumes".into(), json!(["*/*"]));
            }
            o.insert("produces".into(), json!(JSON_TYPES));
            o.insert("schemes".into(), json!(["https"]));
            o.insert("parameters".into(), Value::Array(params));
            o.insert(
                "responses".into(),
                json!({
                    "200": {"description": "OK", "schema": {"$ref": d.reference(op.response)}},
                    "401": {"description": "Unauthorized"},
                }),
            );
        }
        Dialect::OpenApi3 => {
            o.insert("parameters".into(), Value::Array(params));
            if let Some((body, consumes)) = op.body {
                let content: Map<String, Value> = consumes
                    .iter()
                    .map(|c| {
                        (
                            (*c).to_owned(),
                            json!({"schema": {"$ref": d.reference(body)}}),
                        )
                    })
                    .collect();
                o.insert(
                    "requestBody".into(),
                    json!({"content": content, "required": true}),
                );
            }
            let content: Map<String, Value> = JSON_TYPES
                .iter()
                .map(|c| {
                    (
                        (*c).to_owned(),
                        json!({"schema": {"$ref": d.reference(op.response)}}),
                    )
                })
                .collect();
            o.insert("responses".into(), json!({"200": {"description": "OK", "content": content}, "401": {"description": "Unauthorized"}}));
        }
    }
    o.insert("x-kubernetes-action".into(), op.action.into());
    o.insert("x-kubernetes-group-version-kind".into(), op.gvk.clone());
    Value::Object(o)
}

/// Adds every path of resource `r` to `paths`.
pub fn add_resource_paths(d: Dialect, r: &Resource, paths: &mut Map<String, Value>) {
    let prefix = if r.group.is_empty() {
        "/api/v1".to_owned()
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let ns = if r.namespaced() {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    let ns_word = if r.namespaced() { "Namespaced" } else { "" };
    let id = |verb: &str, suffix: &str| {
        format!(
            "{verb}{}{}{ns_word}{}{suffix}",
            group_camel(r.group),
            camel(r.version),
            r.kind
        )
    };
    let kind_def = definition_name(r.group, r.version, r.kind);
    let list_def = format!("{kind_def}List");
    let patch_types = if r.custom.is_some() { CUSTOM_PATCH_TYPES } else { PATCH_TYPES };
    let status_def = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
    let gvk = json!({"group": r.group, "kind": r.kind, "version": r.version});
    let mut path_params = Vec::new();
    if r.namespaced() {
        path_params.push(path_param(
            d,
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    let item_params = {
        let mut p = vec![path_param(d, "name", &format!("name of the {}", r.kind))];
        p.extend(path_params.iter().cloned());
        p
    };
    let writes: &[&Param] = &[&PRETTY, &DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION];
    let patch_params: &[&Param] = &[&PRETTY, &DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION, &FORCE];
    let op = |verb: &'static str, action: &'static str, description: String, id: String| Op {
        verb,
        action,
        description,
        gvk: gvk.clone(),
        id,
        body: None,
        response: &kind_def,
        params: &[&PRETTY],
    };

    let create = operation(
        d,
        &Op {
            body: Some((&kind_def, &["*/*"])),
            params: writes,
            ..op(
                "create",
                "post",
                format!("create a {}", r.kind),
                id("create", ""),
            )
        },
    );
    if !r.persisted() {
        // A review is created and answered, never stored: POST on the collection only.
        let mut collection = Map::new();
        collection.insert("post".into(), create);
        collection.insert("parameters".into(), Value::Array(path_params));
        paths.insert(
            format!("{prefix}{ns}/{}", r.plural),
            Value::Object(collection),
        );
        return;
    }
    let mut collection = Map::new();
    collection.insert(
        "get".into(),
        operation(
            d,
            &Op {
                response: &list_def,
                params: &[&PRETTY, &LABEL_SELECTOR, &WATCH],
                ..op(
                    "list",
                    "list",
                    format!("list or watch objects of kind {}", r.kind),
                    id("list", ""),
                )
            },
        ),
    );
    collection.insert("post".into(), create);
    collection.insert(
        "delete".into(),
        operation(
            d,
            &Op {
                response: status_def,
                ..op(
                    "delete",
                    "deletecollection",
                    format!("delete collection of {}", r.kind),
                    id("deleteCollection", ""),
                )
            },
        ),
    );
    collection.insert("parameters".into(), Value::Array(path_params.clone()));
    paths.insert(
        format!("{prefix}{ns}/{}", r.plural),
        Value::Object(collection),
    );

    let mut item = Map::new();
    item.insert(
        "get".into(),
        operation(
            d,
            &op(
                "read",
                "get",
                format!("read the specified {}", r.kind),
                id("read", ""),
            ),
        ),
    );
    item.insert(
        "put".into(),
        operation(
            d,
            &Op {
                body: Some((&kind_def, &["*/*"])),
                params: writes,
                ..op(
                    "replace",
                    "put",
                    format!("replace the specified {}", r.kind),
                    id("replace", ""),
                )
            },
        ),
    );
    item.insert(
        "patch".into(),
        operation(
            d,
            &Op {
                body: Some(("io.k8s.apimachinery.pkg.apis.meta.v1.Patch", patch_types)),
                params: patch_params,
                ..op(
                    "patch",
                    "patch",
                    format!("partially update the specified {}", r.kind),
                    id("patch", ""),
                )
            },
        ),
    );
    item.insert(
        "delete".into(),
        operation(
            d,
            &Op {
                response: status_def,
                params: &[&PRETTY, &DRY_RUN],
                ..op(
                    "delete",
                    "delete",
                    format!("delete a {}", r.kind),
                    id("delete", ""),
                )
            },
        ),
    );
    item.insert("parameters".into(), Value::Array(item_params.clone()));
    paths.insert(
        format!("{prefix}{ns}/{}/{{name}}", r.plural),
        Value::Object(item),
    );

    for sub in ["status", "scale"]
        .into_iter()
        .filter(|s| r.has_subresource(s))
    {
        let Some(info) = r.subresource_info(sub) else {
            continue;
        };
        let body = definition_name(info.group, info.version, info.kind);
        let sub_gvk = json!({"group": info.group, "kind": info.kind, "version": info.version});
        let suffix = camel(sub);
        let sop = |verb: &'static str, action: &'static str, what: &str| Op {
            gvk: sub_gvk.clone(),
            response: &body,
            ..op(
                verb,
                action,
                format!("{what} {sub} of the specified {}", r.kind),
                id(verb, &suffix),
            )
        };
        let mut subpath = Map::new();
        subpath.insert("get".into(), operation(d, &sop("read", "get", "read")));
        subpath.insert(
            "put".into(),
            operation(
                d,
                &Op {
                    body: Some((&body, &["*/*"])),
                    params: writes,
                    ..sop("replace", "put", "replace")
                },
            ),
        );
        subpath.insert(
            "patch".into(),
            operation(
                d,
                &Op {
                    body: Some(("io.k8s.apimachinery.pkg.apis.meta.v1.Patch", patch_types)),
                    params: patch_params,
                    ..sop("patch", "patch", "partially update")
                },
            ),
        );
        subpath.insert("parameters".into(), Value::Array(item_params.clone()));
        paths.insert(
            format!("{prefix}{ns}/{}/{{name}}/{sub}", r.plural),
            Value::Object(subpath),
        );
    }
}

/// The `Patch` body schema upstream references from every PATCH operation.
pub fn patch_definition() -> Value {
    json!({
        "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
        "type": "object",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;

    #[test]
    fn pod_patch_operation_advertises_field_validation() {
        let mut paths = Map::new();
        add_resource_paths(
            Dialect::Swagger2,
            registry::find("", "v1", "pods").unwrap(),
            &mut paths,
        );
        let patch = &paths["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(patch["operationId"], "patchCoreV1NamespacedPod");
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "", "kind": "Pod", "version": "v1"})
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        assert!(paths.contains_key("/api/v1/namespaces/{namespace}/pods/{name}/status"));
    }

    #[test]
    fn scale_paths_use_autoscaling_scale() {
        let mut paths = Map::new();
        add_resource_paths(
            Dialect::OpenApi3,
            registry::find("apps", "v1", "deployments").unwrap(),
            &mut paths,
        );
        let scale =
            &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"];
        assert_eq!(scale["operationId"], "patchAppsV1NamespacedDeploymentScale");
        assert_eq!(scale["x-kubernetes-group-version-kind"]["kind"], "Scale");
        assert!(scale["requestBody"]["content"]["application/apply-patch+yaml"].is_object());
    }

    #[test]
    fn reviews_are_create_only() {
        let mut paths = Map::new();
        add_resource_paths(
            Dialect::Swagger2,
            registry::find("authorization.k8s.io", "v1", "selfsubjectaccessreviews").unwrap(),
            &mut paths,
        );
        let keys: Vec<&String> = paths.keys().collect();
        assert_eq!(
            keys,
            ["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
        );
        let collection = paths["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
            .as_object()
            .unwrap();
        assert_eq!(
            collection["post"]["operationId"],
            "createAuthorizationV1SelfSubjectAccessReview"
        );
        assert!(!collection.contains_key("get") && !collection.contains_key("delete"));
    }
}
