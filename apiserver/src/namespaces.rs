//! Namespace lifecycle: the built-in namespaces, admission of writes into a namespace
//! (missing → 404, terminating → 403), and the clean-up of deleted namespaces.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use waggle_apimachinery::registry::{self, Resource};
use waggle_store::{ListOptions, StoreError};

use crate::handlers::delete::{self, DeleteOptions};
use crate::state::ApiState;
use crate::status::ApiError;
use crate::{keys, objects};

/// Namespaces that always exist.
pub const SYSTEM: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

fn namespaces() -> &'static Resource {
    registry::find("", "v1", "namespaces").expect("namespaces are served")
}

/// Fails unless `namespace` exists and is not terminating.
pub async fn check_writable(
    state: &ApiState,
    namespace: &str,
    resource: &Resource,
    name: &str,
) -> Result<(), ApiError> {
    let key = keys::object_key(namespaces(), None, namespace);
    let kv = state.store.get(&key).await.map_err(ApiError::from_store)?;
    let Some(kv) = kv else {
        return Err(ApiError::not_found("", "namespaces", namespace));
    };
    let ns: Value =
        serde_json::from_slice(&kv.value).map_err(|e| ApiError::internal(e.to_string()))?;
    if objects::is_deleting(&ns)
        || ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
    {
        return Err(ApiError::forbidden(
            resource.group,
            resource.plural,
            name,
            &format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ),
        ));
    }
    Ok(())
}

/// Creates the system namespaces that are missing.
pub async fn ensure_system(state: &ApiState) -> Result<(), StoreError> {
    let resource = namespaces();
    for name in SYSTEM {
        let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {"finalizers": ["kubernetes"]}});
        crate::lifecycle::prepare_create(resource, &mut ns);
        crate::defaults::apply(resource, &mut ns);
        match state
            .store
            .create(
                &keys::object_key(resource, None, name),
                objects::encode(&ns),
            )
            .await
        {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes everything in a terminating namespace, then the namespace itself.
pub fn spawn_cleanup(state: Arc<ApiState>, namespace: String) {
    tokio::spawn(async move {
        loop {
            match cleanup_once(&state, &namespace).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(namespace, error = %e, "namespace clean-up failed; retrying")
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

/// Finds terminating namespaces at start-up and resumes their clean-up.
pub async fn resume_cleanups(state: &Arc<ApiState>) -> Result<(), StoreError> {
    let prefix = keys::collection_prefix(namespaces(), None);
    let list = state
        .store
        .list(&ListOptions {
            prefix,
            ..Default::default()
        })
        .await?;
    for kv in list.items {
        if let Ok(ns) = serde_json::from_slice::<Value>(&kv.value) {
            if objects::is_deleting(&ns) {
                spawn_cleanup(state.clone(), objects::name(&ns).to_owned());
            }
        }
    }
    Ok(())
}

/// One pass; `Ok(true)` when the namespace is gone.
async fn cleanup_once(state: &ApiState, namespace: &str) -> Result<bool, ApiError> {
    let mut remaining = 0;
    let registry = state.registry();
    let mut collections: Vec<&'static Resource> = registry.all().filter(|r| r.namespaced()).collect();
    // A custom resource served in several versions is stored once.
    collections.dedup_by(|a, b| (a.group, a.plural) == (b.group, b.plural));
    for resource in collections {
        let prefix = keys::collection_prefix(resource, Some(namespace));
        let list = state
            .store
            .list(&ListOptions {
                prefix,
                ..Default::default()
            })
            .await
            .map_err(ApiError::from_store)?;
        for kv in list.items {
            remaining += 1;
            let obj = objects::decode(&kv)?;
            let name = objects::name(&obj).to_owned();
            let graceful_overdue = obj
                .pointer("/metadata/deletionTimestamp")
                .and_then(Value::as_str)
                .and_then(objects::parse_timestamp)
                .is_some_and(|t| t <= jiff::Timestamp::now().as_second());
            let options = DeleteOptions {
                grace_period: graceful_overdue.then_some(0),
                ..Default::default()
            };
            match delete::delete_object(state, resource, Some(namespace), &name, &options, false)
                .await
            {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
        return Ok(false);
    }
    let key = keys::object_key(namespaces(), None, namespace);
    match state.store.get(&key).await.map_err(ApiError::from_store)? {
        None => Ok(true),
        Some(kv) => {
            let mut ns = objects::decode(&kv)?;
            let stored = ns.clone();
            // The "kubernetes" finalizer is ours; other finalizers keep the namespace.
            if let Some(list) = ns
                .pointer_mut("/spec/finalizers")
                .and_then(Value::as_array_mut)
            {
                list.retain(|f| f != "kubernetes");
            }
            let spec_done = ns
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
            if spec_done && objects::finalizers(&ns).is_empty() {
                match state.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(_) | Err(StoreError::NotFound { .. }) => Ok(true),
                    Err(StoreError::Conflict { .. }) => Ok(false),
                    Err(e) => Err(ApiError::from_store(e)),
                }
            } else if ns == stored {
                // Nothing of ours left to remove: no write (and no watch event) per pass.
                Ok(spec_done)
            } else {
                // Only metadata finalizers remain: whoever removes the last one deletes it.
                match state
                    .store
                    .update(&key, objects::encode(&ns), kv.mod_revision)
                    .await
                {
                    Ok(_) => Ok(spec_done),
                    Err(StoreError::Conflict { .. }) => Ok(false),
                    Err(e) => Err(ApiError::from_store(e)),
                }
            }
        }
    }
}
