//! CustomResourceDefinitions: what a stored definition makes the server serve, and its
//! lifecycle, as apiextensions-apiserver's controllers keep it.
//!
//! * Writes: [`default_definition`] fills a definition's defaulted names and its status
//!   (accepted names, `NamesAccepted` and `Established` conditions, stored versions).
//! * Serving: [`Definitions`] holds the [`Registry`] built from every established
//!   definition. It follows the store (a watch re-lists the definitions on any change)
//!   and is re-read right after this server writes one ([`refresh`]), so a client that
//!   created a definition can use its resource on its next request.
//! * Deletion: deleting a definition adds the clean-up finalizer and a `Terminating`
//!   condition; [`spawn_cleanup`] then deletes every object of the resource and removes
//!   the finalizer, which deletes the definition. Until then new objects are refused.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::{Mutex, RwLock};
use serde_json::{Value, json};
use waggle_apimachinery::registry::custom::{CLEANUP_FINALIZER, GROUP};
use waggle_apimachinery::registry::{self, Registry, Resource};
use waggle_store::{ListOptions, Revision, StoreError};

use crate::handlers::delete::{self, DeleteOptions};
use crate::handlers::write::{Mode, Update};
use crate::state::{ApiState, Shared};
use crate::status::ApiError;
use crate::{keys, objects};

const PLURAL: &str = "customresourcedefinitions";

/// The CustomResourceDefinition resource.
pub fn definitions_resource() -> &'static Resource {
    registry::find(GROUP, "v1", PLURAL).expect("definitions are served")
}

/// Whether `group`/`plural` names CustomResourceDefinitions.
pub fn is_definitions(group: &str, plural: &str) -> bool {
    group == GROUP && plural == PLURAL
}

/// The served resources as the stored definitions make them.
#[derive(Default)]
pub struct Definitions {
    registry: RwLock<Registry>,
    /// Definitions whose clean-up runs in this server.
    cleaning: Mutex<HashSet<String>>,
}

impl Definitions {
    /// A snapshot of the served resources.
    pub fn registry(&self) -> Registry {
        self.registry.read().clone()
    }
}

/// Re-reads every definition, swaps the registry and resumes the clean-up of those
/// being deleted; returns the revision read at.
pub async fn refresh(state: &Shared) -> Result<Revision, StoreError> {
    let prefix = keys::collection_prefix(definitions_resource(), None);
    let listed = waggle_store::list_prefix(state.store.as_ref(), &prefix).await?;
    let definitions: Vec<Value> = listed
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect();
    *state.definitions.registry.write() = Registry::from_definitions(&definitions);
    for definition in definitions.iter().filter(|d| awaits_cleanup(d)) {
        spawn_cleanup(state.clone(), objects::name(definition).to_owned());
    }
    Ok(listed.revision)
}

/// Follows the stored definitions from `after` until aborted.
pub fn follow(state: Shared, mut after: Revision) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let prefix = keys::collection_prefix(definitions_resource(), None);
        loop {
            match state.store.watch(&prefix, after).await {
                Ok(mut stream) => {
                    while let Some(event) = stream.next().await {
                        match event {
                            Ok(event) => {
                                after = after.max(event.revision());
                                if let Err(e) = refresh(&state).await {
                                    tracing::warn!(error = %e, "re-reading definitions failed");
                                }
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "definition watch ended");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "definition watch failed"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            match refresh(&state).await {
                Ok(revision) => after = revision,
                Err(e) => tracing::warn!(error = %e, "re-reading definitions failed"),
            }
        }
    })
}

fn awaits_cleanup(definition: &Value) -> bool {
    objects::is_deleting(definition)
        && objects::finalizers(definition)
            .iter()
            .any(|f| f == CLEANUP_FINALIZER)
}

/// Defaults a definition's names and sets its status, as the naming and establishing
/// controllers would (names never conflict here: a definition's name is its plural
/// and group, and built-in groups are not served from definitions).
pub fn default_definition(obj: &mut Value) {
    let Some(names) = obj
        .pointer_mut("/spec/names")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !kind.is_empty() {
        if names
            .get("singular")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            names.insert("singular".into(), json!(kind.to_ascii_lowercase()));
        }
        if names
            .get("listKind")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    let accepted = Value::Object(names.clone());
    let spec = obj["spec"].as_object_mut().expect("spec holds names");
    spec.entry("conversion")
        .or_insert_with(|| json!({"strategy": "None"}));
    let storage = spec
        .get("versions")
        .and_then(Value::as_array)
        .and_then(|vs| vs.iter().find(|v| v["storage"] == true))
        .and_then(|v| v["name"].as_str())
        .map(str::to_owned);
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({});
    }
    let status = obj["status"].as_object_mut().expect("status is an object");
    status.insert("acceptedNames".into(), accepted);
    let stored = status.entry("storedVersions").or_insert_with(|| json!([]));
    if let (Some(list), Some(storage)) = (stored.as_array_mut(), storage)
        && !list.iter().any(|v| *v == storage.as_str())
    {
        list.push(json!(storage));
    }
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    set_condition(
        conditions,
        "NamesAccepted",
        "True",
        "NoConflicts",
        "no conflicts found",
    );
    set_condition(
        conditions,
        "Established",
        "True",
        "InitialNamesAccepted",
        "the initial names have been accepted",
    );
}

/// Refuses names another definition of the same group serves, as upstream's naming
/// controller does: `NamesAccepted` turns false with the first conflict, and a
/// definition never established stays so (it is not served). Runs after
/// [`default_definition`], with the served resources of `registry`.
pub fn check_names(registry: &Registry, obj: &mut Value) {
    let spec = &obj["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let own = objects::name(obj).to_owned();
    let taken: Vec<&Resource> = registry
        .custom()
        .iter()
        .copied()
        .filter(|r| r.group == group && r.custom.is_some_and(|c| c.definition != own.as_str()))
        .collect();
    let names = &spec["names"];
    let name = |key: &str| names[key].as_str().unwrap_or_default().to_owned();
    let used_as_resource = |n: &str| {
        taken
            .iter()
            .any(|r| r.plural == n || r.singular == n || r.short_names.contains(&n))
    };
    let used_as_kind = |n: &str| {
        taken
            .iter()
            .any(|r| r.kind == n || r.custom.is_some_and(|c| c.list_kind == n))
    };
    let short_names: Vec<String> = names["shortNames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let conflict = [
        (
            "PluralConflict",
            Some(name("plural")).filter(|n| used_as_resource(n)),
        ),
        (
            "SingularConflict",
            Some(name("singular")).filter(|n| used_as_resource(n)),
        ),
        (
            "ShortNamesConflict",
            short_names.into_iter().find(|n| used_as_resource(n)),
        ),
        (
            "KindConflict",
            Some(name("kind")).filter(|n| used_as_kind(n)),
        ),
        (
            "ListKindConflict",
            Some(name("listKind")).filter(|n| used_as_kind(n)),
        ),
    ]
    .into_iter()
    .find_map(|(reason, taken)| Some((reason, taken?)));
    let Some((reason, taken)) = conflict else {
        return;
    };
    let served = registry
        .custom()
        .iter()
        .any(|r| r.custom.is_some_and(|c| c.definition == own.as_str()));
    let Some(conditions) = obj.pointer_mut("/status/conditions") else {
        return;
    };
    set_condition(
        conditions,
        "NamesAccepted",
        "False",
        reason,
        &format!("\"{taken}\" is already in use"),
    );
    if !served {
        set_condition(
            conditions,
            "Established",
            "False",
            "NotAccepted",
            "not all names are accepted",
        );
    }
}

/// Sets a condition, keeping its transition time when its status does not change.
fn set_condition(conditions: &mut Value, kind: &str, status: &str, reason: &str, message: &str) {
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let list = conditions.as_array_mut().expect("conditions are a list");
    let condition = json!({
        "type": kind,
        "status": status,
        "lastTransitionTime": objects::now(),
        "reason": reason,
        "message": message,
    });
    match list.iter_mut().find(|c| c["type"] == kind) {
        Some(existing) if existing["status"] == status => {
            existing["reason"] = json!(reason);
            existing["message"] = json!(message);
        }
        Some(existing) => *existing = condition,
        None => list.push(condition),
    }
}

/// What the author of a definition should know: CEL rules this server cannot compile
/// are not enforced (nor are rules that call what this server's CEL environment lacks of
/// Kubernetes', such as the authorizer), and
/// no conversion webhook is called (such a definition serves its storage version alone).
pub fn warnings(definition: &Value) -> Vec<String> {
    let schemas = definition
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/schema/openAPIV3Schema"));
    let mut out: Vec<String> = schemas
        .flat_map(waggle_apimachinery::schema::unenforceable_rules)
        .map(|rule| {
            format!("x-kubernetes-validations rule not enforced by this API server: {rule}")
        })
        .collect();
    out.dedup();
    if definition
        .pointer("/spec/conversion/strategy")
        .and_then(Value::as_str)
        == Some("Webhook")
    {
        out.push("conversion webhooks are not called by this API server: only the storage version is served".into());
    }
    out
}

/// What deleting a definition does before it can go: the clean-up finalizer and the
/// `Terminating` condition.
pub fn mark_terminating(obj: &mut Value) {
    let meta = objects::meta_mut(obj);
    let finalizers = meta.entry("finalizers").or_insert_with(|| json!([]));
    if let Some(list) = finalizers.as_array_mut()
        && !list.iter().any(|f| f == CLEANUP_FINALIZER)
    {
        list.push(json!(CLEANUP_FINALIZER));
    }
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({});
    }
    let conditions = obj["status"]
        .as_object_mut()
        .expect("status is an object")
        .entry("conditions")
        .or_insert_with(|| json!([]));
    set_condition(
        conditions,
        "Terminating",
        "True",
        "InstanceDeletionInProgress",
        "CustomResource deletion is in progress",
    );
}

/// Deletes every object of a terminating definition, then lets the definition go.
pub fn spawn_cleanup(state: Shared, name: String) {
    if !state.definitions.cleaning.lock().insert(name.clone()) {
        return;
    }
    tokio::spawn(async move {
        loop {
            match cleanup_once(&state, &name).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(definition = name, error = %e, "definition clean-up failed; retrying")
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        state.definitions.cleaning.lock().remove(&name);
    });
}

/// One pass; `Ok(true)` when there is nothing left to do.
async fn cleanup_once(state: &Arc<ApiState>, name: &str) -> Result<bool, ApiError> {
    let definitions = definitions_resource();
    let key = keys::object_key(definitions, None, name);
    let Some(kv) = state.store.get(&key).await.map_err(ApiError::from_store)? else {
        return Ok(true);
    };
    let definition = objects::decode(&kv)?;
    if !awaits_cleanup(&definition) {
        return Ok(true);
    }
    let registry = state.registry();
    let served = registry
        .custom()
        .iter()
        .find(|r| r.custom.is_some_and(|c| c.definition == name));
    if let Some(&resource) = served {
        let list = state
            .store
            .list(&ListOptions {
                prefix: keys::collection_prefix(resource, None),
                ..Default::default()
            })
            .await
            .map_err(ApiError::from_store)?;
        if !list.items.is_empty() {
            for kv in list.items {
                let obj = objects::decode(&kv)?;
                let namespace =
                    objects::meta_str(&obj, "namespace").filter(|_| resource.namespaced());
                let options = DeleteOptions::default();
                match delete::delete_object(
                    state,
                    resource,
                    namespace,
                    objects::name(&obj),
                    &options,
                    false,
                )
                .await
                {
                    Ok(_) | Err(ApiError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(false);
        }
    }
    let update = Update {
        state,
        resource: definitions,
        namespace: None,
        name,
        precondition: None,
        mode: Mode::Raw,
        dry_run: false,
    };
    let done = update
        .run(|current| {
            let mut next = current.clone();
            if let Some(list) = next
                .pointer_mut("/metadata/finalizers")
                .and_then(Value::as_array_mut)
            {
                list.retain(|f| f != CLEANUP_FINALIZER);
            }
            Ok(next)
        })
        .await;
    match done {
        Ok(_) | Err(ApiError::NotFound { .. }) => Ok(true),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_definition_is_established_with_defaulted_names() {
        let mut crd = json!({
            "spec": {
                "group": "stable.example.com",
                "names": {"plural": "crontabs", "kind": "CronTab"},
                "versions": [{"name": "v1", "served": true, "storage": true}],
            },
        });
        default_definition(&mut crd);
        assert_eq!(crd["spec"]["names"]["singular"], "crontab");
        assert_eq!(crd["status"]["acceptedNames"]["listKind"], "CronTabList");
        assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(crd["spec"]["conversion"]["strategy"], "None");
        assert!(waggle_apimachinery::registry::custom::established(&crd));
        let established = crd["status"]["conditions"][1].clone();
        default_definition(&mut crd);
        assert_eq!(
            crd["status"]["conditions"][1], established,
            "unchanged conditions keep their time"
        );
        assert!(warnings(&crd).is_empty());
        crd["spec"]["versions"][0]["schema"] = json!({"openAPIV3Schema": {"type": "object", "x-kubernetes-validations": [{"rule": "self.a > 0"}, {"rule": "self.a >"}]}});
        crd["spec"]["conversion"] = json!({"strategy": "Webhook"});
        let said = warnings(&crd);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[0].starts_with(
                "x-kubernetes-validations rule not enforced by this API server: self.a >: "
            ),
            "{said:?}"
        );
        assert!(
            said[1].contains("only the storage version is served"),
            "{said:?}"
        );
        mark_terminating(&mut crd);
        assert_eq!(crd["metadata"]["finalizers"], json!([CLEANUP_FINALIZER]));
        assert_eq!(crd["status"]["conditions"][2]["type"], "Terminating");
    }

    #[test]
    fn names_another_definition_serves_are_not_accepted() {
        let served = |name: &str, plural: &str, kind: &str| {
            let mut crd = json!({
                "metadata": {"name": name},
                "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": plural, "singular": plural.trim_end_matches('s'), "kind": kind},
                         "versions": [{"name": "v1", "served": true, "storage": true}]},
            });
            default_definition(&mut crd);
            crd
        };
        let registry =
            Registry::from_definitions([&served("widgets.example.com", "widgets", "Widget")]);
        let mut clash = served("gadgets.example.com", "gadgets", "Widget");
        check_names(&registry, &mut clash);
        let conditions = &clash["status"]["conditions"];
        assert_eq!(
            (
                conditions[0]["status"].as_str(),
                conditions[0]["reason"].as_str()
            ),
            (Some("False"), Some("KindConflict"))
        );
        assert_eq!(conditions[0]["message"], "\"Widget\" is already in use");
        assert_eq!(conditions[1]["reason"], "NotAccepted");
        let mut fine = served("gizmos.example.com", "gizmos", "Gizmo");
        check_names(&registry, &mut fine);
        assert!(waggle_apimachinery::registry::custom::established(&fine));
        // A definition does not clash with itself.
        let mut again = served("widgets.example.com", "widgets", "Widget");
        check_names(&registry, &mut again);
        assert!(waggle_apimachinery::registry::custom::established(&again));
    }
}
