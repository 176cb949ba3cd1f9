//! POST to a collection: create.

use http::HeaderMap;
use rand::Rng;
use serde_json::Value;
use waggle_store::StoreError;

use crate::body;
use crate::params::Params;
use crate::reply::Reply;
use crate::state::ApiState;
use crate::status::ApiError;
use crate::target::Target;
use crate::{certificates, defaults, keys, lifecycle, namespaces, objects, validation};

/// Characters of generated name suffixes (no vowels, no look-alikes), as upstream.
const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The name for a `generateName` prefix.
pub fn generate_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let base = &prefix[..prefix.len().min(63 - 5)];
    let suffix: String = (0..5).map(|_| NAME_CHARS[rng.random_range(0..NAME_CHARS.len())] as char).collect();
    format!("{base}{suffix}")
}

pub async fn create(state: &ApiState, target: &Target, params: &Params, headers: &HeaderMap, bytes: &[u8]) -> Result<Reply, ApiError> {
    create_object(state, target, params, body::parse(headers, bytes)?).await
}

/// Creates `obj` (already parsed) in the collection `target` names.
pub async fn create_object(state: &ApiState, target: &Target, params: &Params, mut obj: Value) -> Result<Reply, ApiError> {
    let resource = target.resource;
    if resource.custom.is_some_and(|c| c.terminating) {
        return Err(ApiError::MethodNotAllowed {
            message: "create not allowed while custom resource definition is terminating".into(),
        });
    }
    let dry_run = params.dry_run()?;
    body::check_kind(resource, &mut obj)?;
    body::check_namespace(resource, &mut obj, target.namespace.as_deref())?;
    if objects::meta_str(&obj, "name").is_none_or(str::is_empty) {
        if let Some(prefix) = objects::meta_str(&obj, "generateName").filter(|p| !p.is_empty()) {
            let name = generate_name(prefix);
            objects::meta_mut(&mut obj).insert("name".into(), Value::String(name));
        }
    }
    let warnings = crate::kubectl::validation::check(resource, params, &obj)?;
    let name = objects::name(&obj).to_owned();
    if let Some(ns) = target.namespace.as_deref().filter(|_| resource.namespaced()) {
        namespaces::check_writable(state, ns, resource, &name).await?;
    }
    lifecycle::prepare_create(resource, &mut obj);
    if certificates::is_signing_request(resource) {
        certificates::record_requestor(&mut obj, crate::kubectl::context::current_user().as_ref());
    }
    defaults::apply(resource, &mut obj);
    if crate::crd::is_definitions(resource.group, resource.plural) {
        crate::crd::check_names(&state.registry(), &mut obj);
    }
    crate::kubectl::managed::record(resource, None, &mut obj, "");
    validation::validate(resource, &obj, None)?;
    let is_service = resource.group.is_empty() && resource.kind == "Service";
    let reservation = if is_service {
        Some(state.alloc.allocate(&mut obj, None).map_err(|causes| ApiError::invalid(resource.kind, &name, causes))?)
    } else {
        None
    };
    let release = |r: Option<crate::alloc::Reservation>| {
        if let Some(r) = r {
            r.release(&state.alloc);
        }
    };
    if dry_run {
        release(reservation);
        return Ok(Reply::created(obj).with_warnings(warnings));
    }
    let key = keys::object_key(resource, target.namespace.as_deref(), &name);
    let stored = crate::convert::to_storage(resource, &obj);
    match state.store.create(&key, objects::encode(stored.as_ref().unwrap_or(&obj))).await {
        Ok(revision) => {
            objects::set_resource_version(&mut obj, revision);
            Ok(Reply::created(obj).with_warnings(warnings))
        }
        Err(StoreError::AlreadyExists { .. }) => {
            release(reservation);
            Err(ApiError::already_exists(resource.group, resource.plural, &name))
        }
        Err(e) => {
            release(reservation);
            Err(ApiError::from_store(e))
        }
    }
}
