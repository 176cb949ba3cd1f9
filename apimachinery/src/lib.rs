//! Kubernetes API machinery shared by Waggle's API server and tools: what resources
//! exist ([`registry`]), how they are discovered ([`discovery`]), described
//! ([`openapi`]), printed ([`table`]) and patched ([`strategic_merge`], [`apply`]).
//!
//! Everything here is pure: JSON in, JSON out, no I/O. The API server calls it at these
//! hook points:
//!
//! | request | function |
//! |---|---|
//! | `GET /api`, `/apis` with `Accept: ...;g=apidiscovery.k8s.io;v=v2[beta1];as=APIGroupDiscoveryList` | [`discovery::negotiate_aggregated`], [`discovery::aggregated`], [`discovery::aggregated_content_type`] |
//! | `GET /api`, `/apis`, `/apis/<g>`, `/api/v1`, `/apis/<g>/<v>` | [`discovery::api_versions`], [`discovery::api_group_list`], [`discovery::api_group`], [`discovery::api_resource_list`] |
//! | `GET /openapi/v2`, `/openapi/v3`, `/openapi/v3/<path>` | [`openapi::v2_response`], [`openapi::v3_index_bytes`], [`openapi::v3_document_bytes`] |
//! | request body `Content-Type: application/vnd.kubernetes.protobuf` | [`protobuf::decode`] |
//! | `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` | [`table::to_table`] |
//! | `PATCH` `application/strategic-merge-patch+json` | [`strategic_merge::strategic_merge_patch`] |
//! | `PATCH` `application/apply-patch+yaml` | [`apply::apply`] |
//! | every other create/update/patch (managed fields) | [`apply::record_update`], [`apply::default_manager`] |
//! | `fieldValidation=Strict\|Warn` | [`openapi::validate::unknown_fields`] and its message helpers |
//! | custom resource create/update/read with the CRD version's `openAPIV3Schema` | [`schema::prune`], [`schema::apply_defaults`], [`schema::validate`] |

pub mod apply;
pub mod discovery;
pub mod openapi;
pub mod protobuf;
pub mod registry;
pub mod schema;
pub mod strategic_merge;
pub mod table;
