//! DELETE of one object and of a collection: graceful pod deletion, finalizers,
//! propagation policies, preconditions, namespace termination.

use http::HeaderMap;
use serde_json::{Value, json};
use waggle_apimachinery::registry::Resource;
use waggle_store::{Revision, StoreError};

use super::write::{Mode, Update};
use crate::params::Params;
use crate::reply::Reply;
use crate::state::ApiState;
use crate::status::{self, ApiError};
use crate::target::Target;
use crate::{body, keys, namespaces, objects};

/// `DeleteOptions` from the body and the query.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period: Option<i64>,
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// `dryRun: ["All"]` in the body (the query's `dryRun` counts too).
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn parse(params: &Params, headers: &HeaderMap, bytes: &[u8]) -> Result<Self, ApiError> {
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            body::parse(headers, bytes)?
        };
        let mut options = DeleteOptions {
            grace_period: body.get("gracePeriodSeconds").and_then(Value::as_i64),
            propagation: body
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_owned),
            uid: body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            resource_version: body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned),
            dry_run: params.dry_run()?,
        };
        match body
            .get("dryRun")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            None | Some([]) => {}
            Some([all]) if all == "All" => options.dry_run = true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid dryRun value: {other:?}; only \"All\" is supported"
                )));
            }
        }
        if body.get("orphanDependents") == Some(&json!(true))
            || params.get("orphanDependents") == Some("true")
        {
            options.propagation.get_or_insert_with(|| "Orphan".into());
        }
        if let Some(g) = params.int("gracePeriodSeconds")? {
            options.grace_period = Some(g);
        }
        if let Some(p) = params.value("propagationPolicy") {
            options.propagation = Some(p.to_owned());
        }
        if let Some(p) = options.propagation.as_deref() {
            if !matches!(p, "Orphan" | "Background" | "Foreground") {
                return Err(ApiError::bad_request(format!(
                    "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                )));
            }
        }
        Ok(options)
    }
}

/// What a delete did.
pub enum Deleted {
    /// Removed from the store; the object as it was, at the delete's revision.
    Gone(Value),
    /// Marked for deletion (graceful, finalizers, namespace termination).
    Pending(Value),
}

/// Grace period for a pod delete: 0 for unbound or finished pods.
fn pod_grace(obj: &Value, requested: Option<i64>) -> i64 {
    let bound = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        obj.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if !bound || finished {
        return 0;
    }
    let grace = requested
        .or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30);
    // As upstream, a negative grace period means "now, but not forced" (1 second).
    if grace < 0 { 1 } else { grace }
}

/// Deletes (or marks) one object.
pub async fn delete_object(
    state: &ApiState,
    resource: &'static Resource,
    namespace: Option<&str>,
    name: &str,
    options: &DeleteOptions,
    dry_run: bool,
) -> Result<Deleted, ApiError> {
    let key = keys::object_key(resource, namespace, name);
    let is_pod = resource.group.is_empty() && resource.kind == "Pod";
    let is_namespace = resource.group.is_empty() && resource.kind == "Namespace";
    let is_definition = crate::crd::is_definitions(resource.group, resource.plural);
    loop {
        let kv = state
            .store
            .get(&key)
            .await
            .map_err(ApiError::from_store)?
            .ok_or_else(|| ApiError::not_found(resource.group, resource.plural, name))?;
        let obj = objects::decode(&kv)?;
        check_preconditions(resource, name, &obj, options, kv.mod_revision)?;
        let mut marked = obj.clone();
        let mut pending = false;
        if is_pod {
            let grace = pod_grace(&obj, options.grace_period);
            let current = obj
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if grace > 0 && current.is_none_or(|c| grace < c) {
                let meta = objects::meta_mut(&mut marked);
                meta.insert(
                    "deletionTimestamp".into(),
                    json!(objects::timestamp_in(grace)),
                );
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
                pending = true;
            } else if grace > 0 {
                pending = true;
            } else if objects::is_deleting(&obj) {
                objects::meta_mut(&mut marked)
                    .insert("deletionGracePeriodSeconds".into(), json!(0));
            }
        }
        // As upstream, Foreground and Orphan leave the object to the garbage collector
        // behind a finalizer (each replacing the other's), which does the rest.
        let gc_finalizer = match options.propagation.as_deref() {
            Some("Foreground") => Some(("foregroundDeletion", "orphan")),
            Some("Orphan") => Some(("orphan", "foregroundDeletion")),
            _ => None,
        };
        if let Some((wanted, replaced)) = gc_finalizer.filter(|_| !objects::is_deleting(&obj)) {
            let meta = objects::meta_mut(&mut marked);
            let list = meta.entry("finalizers").or_insert_with(|| json!([]));
            if let Some(list) = list.as_array_mut() {
                list.retain(|f| f != replaced);
                if !list.iter().any(|f| f == wanted) {
                    list.push(json!(wanted));
                }
            }
        }
        if is_namespace {
            marked["status"] = json!({"phase": "Terminating"});
            pending = true;
        }
        if is_definition && !objects::is_deleting(&obj) {
            // Its objects go first (see `crd::spawn_cleanup`).
            crate::crd::mark_terminating(&mut marked);
        }
        if !objects::finalizers(&marked).is_empty() {
            pending = true;
        }
        if pending {
            if !objects::is_deleting(&marked) {
                let meta = objects::meta_mut(&mut marked);
                meta.insert("deletionTimestamp".into(), json!(objects::now()));
                meta.entry("deletionGracePeriodSeconds").or_insert(json!(0));
            }
            if marked == obj || dry_run {
                return Ok(Deleted::Pending(marked));
            }
            let update = Update {
                state,
                resource,
                namespace,
                name,
                precondition: Some(kv.mod_revision),
                mode: Mode::Raw,
                dry_run,
            };
            match update.run(|_| Ok(marked.clone())).await {
                Ok(written) => return Ok(Deleted::Pending(written)),
                Err(ApiError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        if dry_run {
            return Ok(Deleted::Gone(obj));
        }
        match state.store.delete(&key, Some(kv.mod_revision)).await {
            Ok((_, revision)) => {
                if resource.group.is_empty() && resource.kind == "Service" {
                    state.alloc.release_dropped(&obj, None);
                }
                let mut gone = obj;
                objects::set_resource_version(&mut gone, revision);
                return Ok(Deleted::Gone(gone));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound { .. }) => {
                return Err(ApiError::not_found(resource.group, resource.plural, name));
            }
            Err(e) => return Err(ApiError::from_store(e)),
        }
    }
}

fn check_preconditions(
    resource: &Resource,
    name: &str,
    obj: &Value,
    options: &DeleteOptions,
    revision: Revision,
) -> Result<(), ApiError> {
    let qualified = status::qualified(resource.group, resource.plural);
    if let Some(uid) = options.uid.as_deref() {
        let actual = objects::meta_str(obj, "uid").unwrap_or_default();
        if uid != actual {
            return Err(ApiError::Conflict {
                message: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
                kind: qualified,
                name: name.into(),
            });
        }
    }
    if let Some(rv) = options.resource_version.as_deref() {
        if rv != revision.to_string() {
            return Err(ApiError::Conflict {
                message: format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {revision}"
                ),
                kind: qualified,
                name: name.into(),
            });
        }
    }
    Ok(())
}

/// Kinds whose DELETE returns the object rather than a `Status`, as upstream.
fn returns_object(resource: &Resource) -> bool {
    resource.group.is_empty() && matches!(resource.kind, "Pod" | "Service" | "Namespace")
}

pub async fn delete(
    state: &std::sync::Arc<ApiState>,
    target: &Target,
    params: &Params,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Reply, ApiError> {
    let resource = target.resource;
    let options = DeleteOptions::parse(params, headers, bytes)?;
    let dry_run = options.dry_run;
    let name = target.item_name();
    if resource.group.is_empty()
        && resource.kind == "Namespace"
        && IMMORTAL_NAMESPACES.contains(&name)
    {
        return Err(ApiError::forbidden(
            "",
            "namespaces",
            name,
            "this namespace may not be deleted",
        ));
    }
    match delete_object(
        state,
        resource,
        target.namespace.as_deref(),
        name,
        &options,
        dry_run,
    )
    .await?
    {
        Deleted::Pending(obj) => {
            if resource.group.is_empty() && resource.kind == "Namespace" && !dry_run {
                namespaces::spawn_cleanup(state.clone(), name.to_owned());
            }
            if crate::crd::is_definitions(resource.group, resource.plural) && !dry_run {
                crate::crd::spawn_cleanup(state.clone(), name.to_owned());
            }
            Ok(Reply::ok(obj))
        }
        Deleted::Gone(obj) if returns_object(resource) => Ok(Reply::ok(obj)),
        Deleted::Gone(obj) => Ok(Reply::ok(status::success_status(
            resource.group,
            resource.plural,
            name,
            objects::meta_str(&obj, "uid").unwrap_or_default(),
        ))),
    }
}

/// Namespaces the server keeps (upstream's NamespaceLifecycle admission).
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// DELETE of a collection: every object the selectors match; returns the list.
pub async fn delete_collection(
    state: &std::sync::Arc<ApiState>,
    target: &Target,
    params: &Params,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Reply, ApiError> {
    let resource = target.resource;
    let options = DeleteOptions::parse(params, headers, bytes)?;
    let dry_run = options.dry_run;
    let listed = super::list::list_all(state, target, params).await?;
    let mut deleted = Vec::new();
    for obj in listed {
        let name = objects::name(&obj).to_owned();
        let namespace = objects::namespace(&obj).map(str::to_owned);
        match delete_object(
            state,
            resource,
            namespace.as_deref(),
            &name,
            &options,
            dry_run,
        )
        .await
        {
            Ok(Deleted::Gone(obj) | Deleted::Pending(obj)) => {
                if resource.group.is_empty() && resource.kind == "Namespace" && !dry_run {
                    namespaces::spawn_cleanup(state.clone(), name.clone());
                }
                deleted.push(obj)
            }
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let revision = state
        .store
        .current_revision()
        .await
        .map_err(ApiError::from_store)?;
    let mut meta = serde_json::Map::new();
    meta.insert("resourceVersion".into(), json!(revision.to_string()));
    Ok(Reply::ok(objects::list_object(
        &resource.api_version(),
        resource.kind,
        deleted,
        meta,
    )))
}
