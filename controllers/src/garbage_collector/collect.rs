//! What the collector does with one queued object, always checked against the API
//! server (the graph may lag): deletes a dependent whose owners are all gone, lets go
//! of the references to gone owners of a dependent that still has some, finishes the
//! foreground deletion of an owner whose blocking dependents are gone, and orphans the
//! dependents of an owner deleted with `propagationPolicy: Orphan`.

use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::Work;
use super::graph::{self, FOREGROUND, Graph, Node, ORPHAN};
use super::monitor::lock;
use super::queue::Queue;
use super::resources::{Resources, Served};
use crate::Error;
use crate::events::Events;

/// How often a read-modify-write is retried when the object changed in between.
const CONFLICT_RETRIES: usize = 5;

/// What an owner reference turned out to name.
#[derive(Debug, PartialEq)]
enum Owner {
    /// The owner exists.
    Solid,
    /// No object has that uid where the reference points.
    Dangling,
    /// The owner exists and waits, in a foreground deletion, for its dependents to go.
    Waiting,
}

pub struct Collector {
    pub client: Client,
    pub graph: Arc<Mutex<Graph>>,
    pub resources: Arc<RwLock<Resources>>,
    pub queue: Queue<Work>,
    pub events: Events,
}

impl Collector {
    pub async fn process(&self, work: &Work) -> Result<(), Error> {
        match work {
            Work::AttemptToDelete(uid) => self.attempt_to_delete(uid).await,
            Work::Orphan(uid) => self.orphan_dependents(uid).await,
        }
    }

    fn node(&self, uid: &str) -> Option<Node> {
        lock(&self.graph).get(uid).cloned()
    }

    fn resolve(&self, api_version: &str, kind: &str) -> Option<Served> {
        let resources = self.resources.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        resources.resolve(api_version, kind).cloned()
    }

    fn api(&self, served: &Served, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(namespace) if served.namespaced => {
                Api::namespaced_with(self.client.clone(), namespace, &served.resource)
            }
            _ => Api::all_with(self.client.clone(), &served.resource),
        }
    }

    /// The object as the API server has it now, if it is still the one with `uid`.
    async fn latest(&self, served: &Served, node: &Node) -> Result<Option<DynamicObject>, Error> {
        let object = self.api(served, node.namespace.as_deref()).get_opt(&node.name).await?;
        Ok(object.filter(|o| o.metadata.uid.as_deref() == Some(node.uid.as_str())))
    }

    /// Looks at an object whose owners may be gone, or an owner deleted in the foreground.
    async fn attempt_to_delete(&self, uid: &str) -> Result<(), Error> {
        let Some(node) = self.node(uid) else { return Ok(()) };
        if node.deleting_dependents() {
            return self.finish_foreground(&node).await;
        }
        if node.deleting {
            return Ok(());
        }
        let Some(served) = self.resolve(&node.api_version, &node.kind) else { return Ok(()) };
        // Gone or replaced: its watch event brings the graph up to date.
        let Some(latest) = self.latest(&served, &node).await? else { return Ok(()) };
        let references = latest.metadata.owner_references.clone().unwrap_or_default();
        if references.is_empty() {
            return Ok(());
        }
        let mut solid = Vec::new();
        let mut gone = Vec::new();
        let mut waiting = Vec::new();
        for reference in &references {
            let Some(owner) = self.owner(&node, reference).await? else { return Ok(()) };
            match owner {
                Owner::Solid => solid.push(reference),
                Owner::Dangling => gone.push(reference),
                Owner::Waiting => waiting.push(reference),
            }
        }
        if !solid.is_empty() {
            if gone.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            // Other owners keep it: only the references to gone owners, and to owners
            // that wait for their dependents (this one will not go), are dropped.
            let dropped: Vec<&str> = gone.iter().chain(&waiting).map(|r| r.uid.as_str()).collect();
            tracing::info!(
                object = %node.describe(),
                owners = ?dropped,
                "removing owner references to owners that are gone or being deleted"
            );
            return self.remove_references(&served, &node, |r| dropped.contains(&r.uid.as_str())).await;
        }
        // No owner keeps it. It goes in the foreground when an owner waits for it and it
        // blocks that owner (as its reference says) or has dependents itself (upstream's
        // rule, which relies on the graph alone): the owner then waits for those too.
        let blocks_waiting = waiting.iter().any(|r| graph::blocks(r));
        let (has_dependents, cycle) = {
            let graph = lock(&self.graph);
            let dependents = graph.dependents(&node);
            (!dependents.is_empty(), dependents.iter().any(|d| d.deleting_dependents()))
        };
        let finalizers = latest.finalizers();
        let policy = if !waiting.is_empty() && (blocks_waiting || has_dependents) {
            if cycle {
                // A dependent of it waits for its own dependents, and it waits for its
                // owner: a cycle of waits could never end. As upstream, it stops blocking
                // its owners (a cautious check: it may see cycles that are not there).
                let object = node.describe();
                tracing::info!(%object, "unblocking owner references to break a cycle of foreground deletions");
                self.edit_references(&served, &node, unblocked).await?;
            }
            PropagationPolicy::Foreground
        } else if finalizers.iter().any(|f| f == ORPHAN) {
            PropagationPolicy::Orphan
        } else if finalizers.iter().any(|f| f == FOREGROUND) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        tracing::info!(object = %node.describe(), ?policy, "deleting an object whose owners are gone");
        self.delete(&served, &node, policy).await
    }

    /// What `reference` of `dependent` names, as the API server says now; `None` when
    /// the reference cannot be valid (a cluster-scoped object naming a namespaced
    /// owner), which upstream leaves alone too.
    async fn owner(&self, dependent: &Node, reference: &OwnerReference) -> Result<Option<Owner>, Error> {
        let Some(served) = self.resolve(&reference.api_version, &reference.kind) else {
            // Not (yet) served: never a reason to delete. Retried with backoff, so a
            // custom resource defined later is found.
            return Err(Error::UnknownOwnerKind {
                dependent: dependent.describe(),
                api_version: reference.api_version.clone(),
                kind: reference.kind.clone(),
            });
        };
        let namespace = match (&dependent.namespace, served.namespaced) {
            (_, false) => None,
            (Some(namespace), true) => Some(namespace.as_str()),
            (None, true) => {
                let note = format!(
                    "ownerRef [{}, {}, {}, {}] does not exist in namespace \"\" (a cluster-scoped object cannot have a namespaced owner)",
                    reference.api_version, reference.kind, reference.name, reference.uid
                );
                tracing::warn!(object = %dependent.describe(), "{note}");
                self.events.warning(&object_reference(dependent), "OwnerRefInvalidNamespace", note).await;
                return Ok(None);
            }
        };
        let owner = self.api(&served, namespace).get_opt(&reference.name).await?;
        Ok(Some(match owner {
            Some(owner) if owner.metadata.uid.as_deref() == Some(reference.uid.as_str()) => {
                let waiting =
                    owner.metadata.deletion_timestamp.is_some() && owner.finalizers().iter().any(|f| f == FOREGROUND);
                if waiting { Owner::Waiting } else { Owner::Solid }
            }
            // Absent, or another object by that name: the owner is gone.
            _ => Owner::Dangling,
        }))
    }

    /// An owner deleted in the foreground: once no dependent blocks it, its
    /// `foregroundDeletion` finalizer goes (and with it, the owner); until then its
    /// blocking dependents get a look.
    async fn finish_foreground(&self, owner: &Node) -> Result<(), Error> {
        let blocking: Vec<Node> = lock(&self.graph).blocking_dependents(owner).into_iter().cloned().collect();
        if blocking.is_empty() {
            let object = owner.describe();
            tracing::info!(%object, "no blocking dependents left; finishing its foreground deletion");
            return self.remove_finalizer(owner, FOREGROUND).await;
        }
        tracing::debug!(object = %owner.describe(), blocking = blocking.len(), "waiting for blocking dependents");
        self.queue
            .extend(blocking.into_iter().filter(|d| !d.deleting_dependents()).map(|d| Work::AttemptToDelete(d.uid)));
        Ok(())
    }

    /// An owner deleted with `propagationPolicy: Orphan`: its dependents lose their
    /// references to it, then its `orphan` finalizer goes.
    async fn orphan_dependents(&self, uid: &str) -> Result<(), Error> {
        let Some(owner) = self.node(uid) else { return Ok(()) };
        if !owner.orphaning() {
            return Ok(());
        }
        let dependents: Vec<Node> = lock(&self.graph).dependents(&owner).into_iter().cloned().collect();
        for dependent in &dependents {
            let Some(served) = self.resolve(&dependent.api_version, &dependent.kind) else { continue };
            self.remove_references(&served, dependent, |r| r.uid == owner.uid).await?;
        }
        tracing::info!(object = %owner.describe(), orphaned = dependents.len(), "dependents orphaned");
        self.remove_finalizer(&owner, ORPHAN).await
    }

    /// Drops the owner references `drop` picks from `node`.
    async fn remove_references(
        &self,
        served: &Served,
        node: &Node,
        drop: impl Fn(&OwnerReference) -> bool,
    ) -> Result<(), Error> {
        self.edit_references(served, node, |references| references.iter().filter(|r| !drop(r)).cloned().collect()).await
    }

    /// Rewrites the owner references of `node` with `edit`, guarded by the object's
    /// resourceVersion (re-read and retried on conflict).
    async fn edit_references(
        &self,
        served: &Served,
        node: &Node,
        edit: impl Fn(&[OwnerReference]) -> Vec<OwnerReference>,
    ) -> Result<(), Error> {
        for _ in 0..CONFLICT_RETRIES {
            let Some(latest) = self.latest(served, node).await? else { return Ok(()) };
            let references = latest.metadata.owner_references.clone().unwrap_or_default();
            let edited = edit(&references);
            if edited == references {
                return Ok(());
            }
            let edited = if edited.is_empty() { json!(null) } else { json!(edited) };
            let patch =
                json!({"metadata": {"ownerReferences": edited, "resourceVersion": latest.metadata.resource_version}});
            if self.merge_patch(served, node, &patch).await? {
                return Ok(());
            }
        }
        Err(Error::Conflicts { what: format!("owner references of {}", node.describe()) })
    }

    /// Removes `finalizer` from `node`, guarded by its resourceVersion.
    async fn remove_finalizer(&self, node: &Node, finalizer: &str) -> Result<(), Error> {
        let Some(served) = self.resolve(&node.api_version, &node.kind) else { return Ok(()) };
        for _ in 0..CONFLICT_RETRIES {
            let Some(latest) = self.latest(&served, node).await? else { return Ok(()) };
            let finalizers = latest.finalizers();
            if !finalizers.iter().any(|f| f == finalizer) {
                return Ok(());
            }
            let rest: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
            let rest = if rest.is_empty() { json!(null) } else { json!(rest) };
            let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": latest.metadata.resource_version}});
            if self.merge_patch(&served, node, &patch).await? {
                return Ok(());
            }
        }
        Err(Error::Conflicts { what: format!("finalizer {finalizer} of {}", node.describe()) })
    }

    /// A JSON merge patch; `false` when the object changed meanwhile (conflict). An
    /// object gone meanwhile needs nothing more.
    async fn merge_patch(&self, served: &Served, node: &Node, patch: &serde_json::Value) -> Result<bool, Error> {
        let api = self.api(served, node.namespace.as_deref());
        match api.patch(&node.name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes the object with `uid` as a precondition (never a namesake created since).
    async fn delete(&self, served: &Served, node: &Node, policy: PropagationPolicy) -> Result<(), Error> {
        let params = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions { uid: Some(node.uid.clone()), resource_version: None }),
            ..DeleteParams::default()
        };
        match self.api(served, node.namespace.as_deref()).delete(&node.name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

fn object_reference(node: &Node) -> ObjectReference {
    ObjectReference {
        api_version: Some(node.api_version.clone()),
        kind: Some(node.kind.clone()),
        name: Some(node.name.clone()),
        namespace: node.namespace.clone(),
        uid: Some(node.uid.clone()),
        ..ObjectReference::default()
    }
}

/// The references with `blockOwnerDeletion` off.
fn unblocked(references: &[OwnerReference]) -> Vec<OwnerReference> {
    references
        .iter()
        .cloned()
        .map(|r| OwnerReference { block_owner_deletion: r.block_owner_deletion.map(|_| false), ..r })
        .collect()
}
