//! The Deployment controller: rolls a Deployment's pod template out through
//! ReplicaSets, one per template, named by the template's hash and numbered by
//! revision (`kubectl rollout history` lists them, `rollout undo` copies one's
//! template back, which makes that ReplicaSet new again under the next revision).
//!
//! Each reconcile reads the namespace's ReplicaSets from the API server, claims its
//! own, then: a paused Deployment or a change of replicas only resizes them
//! ([`rollout::scale`]); otherwise the strategy moves pods to the new ReplicaSet
//! (rolling update within `maxSurge`/`maxUnavailable`, or recreate), old ReplicaSets
//! beyond `revisionHistoryLimit` go, and the status reports progress.

mod replica_sets;
mod rollout;
mod status;
mod strategy;
mod template;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use self::replica_sets::{NewSet, Writer};
use crate::Context;
use crate::Error;
use crate::owners::{self, Claim};

const NAME: &str = "deployment-controller";

/// Runs the Deployment controller until its watches end.
pub async fn run(client: Client) -> Result<(), Error> {
    let controller = Controller::new(Api::<Deployment>::all(client.clone()), watcher::Config::default());
    let deployments = controller.store();
    let context = Context::new(client.clone(), NAME);
    let results = controller
        .watches(Api::<ReplicaSet>::all(client), watcher::Config::default(), move |rs| {
            owners::interested(&deployments, &rs, |d: &Deployment| d.spec.as_ref().map(|s| &s.selector))
        })
        .run(reconcile, retry_later, context);
    crate::drive(results, "deployment").await;
    Err(Error::Stopped { controller: "deployment" })
}

fn retry_later(_: Arc<Deployment>, _: &Error, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(1))
}

/// The Deployment's ReplicaSets, adopting matching orphans and releasing its own that
/// stopped matching.
async fn claim_sets(d: &Deployment, api: &Api<ReplicaSet>) -> Result<Vec<ReplicaSet>, Error> {
    let spec = d.spec.clone().unwrap_or_default();
    let selector = owners::selector(d, &spec.selector)?;
    let uid = d.uid().unwrap_or_default();
    let deleting = d.metadata.deletion_timestamp.is_some();
    let mut sets = Vec::new();
    for rs in api.list(&ListParams::default()).await?.items {
        let claim = owners::claim(&uid, deleting, &selector, &rs.metadata);
        let patch = match claim {
            Claim::Owned => {
                sets.push(rs);
                continue;
            }
            Claim::Ignore => continue,
            Claim::Adopt => owners::adoption_patch(
                &rs.metadata,
                d.controller_owner_ref(&()).expect("a stored Deployment has a name and uid"),
            ),
            Claim::Release => owners::release_patch(&rs.metadata, &uid),
        };
        let patched = owners::write_claim(api, &rs.name_any(), &patch).await?;
        sets.extend(patched.filter(|_| claim == Claim::Adopt));
    }
    Ok(sets)
}

async fn write_status(api: &Api<Deployment>, d: &Deployment, status: DeploymentStatus) -> Result<Deployment, Error> {
    if !status::changed(d, &status) {
        return Ok(d.clone());
    }
    let patch = json!({"status": status});
    match api.patch_status(&d.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(written) => Ok(written),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(d.clone()),
        Err(error) => Err(error.into()),
    }
}

/// The ReplicaSets were sized for other replicas than the Deployment's.
fn is_scaling_event(d: &Deployment, sets: &[ReplicaSet]) -> bool {
    let replicas = strategy::replicas(d);
    sets.iter()
        .filter(|rs| replica_sets::spec_replicas(rs) > 0)
        .any(|rs| replica_sets::desired_replicas(rs).is_some_and(|desired| desired != replicas))
}

async fn reconcile(d: Arc<Deployment>, context: Arc<Context>) -> Result<Action, Error> {
    let now = Timestamp::now();
    let namespace = d.namespace().unwrap_or_default();
    let deployments = Api::<Deployment>::namespaced(context.client.clone(), &namespace);
    let sets_api = Api::<ReplicaSet>::namespaced(context.client.clone(), &namespace);
    let mut sets = claim_sets(&d, &sets_api).await?;

    if d.metadata.deletion_timestamp.is_some() {
        let new = replica_sets::find_new(&d, &sets);
        write_status(&deployments, &d, status::calculate(&d, &sets, new, now)).await?;
        return Ok(Action::await_change());
    }
    let mut d = (*d).clone();
    if let Some(condition) = status::pause_condition(&d, now) {
        let mut current = d.status.clone().unwrap_or_default();
        status::set_condition(&mut current, condition);
        d = write_status(&deployments, &d, current).await?;
    }

    let writer =
        Writer { deployment: &d, api: sets_api.clone(), events: &context.events, reference: d.object_ref(&()) };
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    if paused || is_scaling_event(&d, &sets) {
        let new = found(writer.new_set(&mut sets, false).await?);
        rollout::scale(&writer, &mut sets, new).await?;
        if paused {
            rollout::clean_up(&d, &sets, new, &sets_api).await?;
        }
        write_status(&deployments, &d, status::calculate(&d, &sets, new, now)).await?;
        return Ok(Action::requeue(Duration::from_secs(300)));
    }

    let mut wait_for_pods = false;
    let new = if strategy::is_recreate(&d) {
        recreate(&writer, &mut sets, &context.client, &mut wait_for_pods).await?
    } else {
        rolling(&writer, &mut sets).await?
    };

    // The Deployment's revision is its new ReplicaSet's; conditions start from what
    // finding (or creating) it said.
    let mut current = d.clone();
    if let Some((index, created)) = new {
        let revision = replica_sets::revision(&sets[index]).to_string();
        if current.annotations().get(replica_sets::REVISION) != Some(&revision) {
            let patch = json!({"metadata": {"annotations": {replica_sets::REVISION: revision}}});
            let patched = deployments.patch(&d.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
            current.metadata.annotations = patched.metadata.annotations;
        }
        let mut status = current.status.clone().unwrap_or_default();
        let name = sets[index].name_any();
        if created {
            let message = format!("Created new replica set {name:?}");
            status::set_condition(
                &mut status,
                status::new_condition(status::PROGRESSING, "True", status::NEW_SET_CREATED, message, now),
            );
        } else if status::condition(&status, status::PROGRESSING).is_none() {
            let message = format!("Found new replica set {name:?}");
            status::set_condition(
                &mut status,
                status::new_condition(status::PROGRESSING, "True", status::FOUND_NEW_SET, message, now),
            );
        }
        current.status = Some(status);
    }
    let new = new.map(|(index, _)| index);
    let computed = status::rollout(&current, &sets, new, now);
    let complete = computed.updated_replicas == Some(strategy::replicas(&d))
        && computed.available_replicas == Some(strategy::replicas(&d))
        && computed.replicas == Some(strategy::replicas(&d));
    if complete {
        rollout::clean_up(&d, &sets, new, &sets_api).await?;
    }
    // `current` differs from the stored Deployment only by conditions not yet written.
    let mut stored = d.clone();
    stored.metadata.annotations = current.metadata.annotations.clone();
    let written = write_status(&deployments, &stored, computed).await?;

    if wait_for_pods {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let deadline = written.status.as_ref().and_then(|s| status::seconds_to_deadline(&written, s, Timestamp::now()));
    Ok(Action::requeue(Duration::from_secs(deadline.map_or(300, |s| s.unsigned_abs().min(300)))))
}

fn found(new: NewSet) -> Option<usize> {
    match new {
        NewSet::Found { index, .. } => Some(index),
        NewSet::Missing => None,
    }
}

/// Rolling update: the new ReplicaSet grows within the surge, old ones shrink within
/// the unavailability budget. Returns the new ReplicaSet and whether it was created.
async fn rolling(writer: &Writer<'_>, sets: &mut Vec<ReplicaSet>) -> Result<Option<(usize, bool)>, Error> {
    let NewSet::Found { index, created } = writer.new_set(sets, true).await? else {
        unreachable!("new_set creates the new ReplicaSet when asked to")
    };
    if !rollout::reconcile_new(writer, sets, index).await? {
        rollout::reconcile_old(writer, sets, index).await?;
    }
    Ok(Some((index, created)))
}

/// Recreate: every old ReplicaSet to zero, wait until their pods are gone, then the
/// new ReplicaSet at full size.
async fn recreate(
    writer: &Writer<'_>,
    sets: &mut Vec<ReplicaSet>,
    client: &Client,
    wait_for_pods: &mut bool,
) -> Result<Option<(usize, bool)>, Error> {
    let d = writer.deployment;
    let existing = found(writer.new_set(sets, false).await?);
    let mut scaled_down = false;
    for (i, rs) in sets.iter_mut().enumerate() {
        if Some(i) != existing && replica_sets::spec_replicas(rs) > 0 {
            scaled_down |= writer.scale(rs, 0).await?;
        }
    }
    let pods = Api::<Pod>::namespaced(client.clone(), &d.namespace().unwrap_or_default());
    if scaled_down || rollout::old_pods_running(d, sets, existing, &pods).await? {
        *wait_for_pods = true;
        return Ok(existing.map(|i| (i, false)));
    }
    let (index, created) = match existing {
        Some(i) => (i, false),
        None => match writer.new_set(sets, true).await? {
            NewSet::Found { index, created } => (index, created),
            NewSet::Missing => unreachable!("new_set creates the new ReplicaSet when asked to"),
        },
    };
    rollout::reconcile_new(writer, sets, index).await?;
    Ok(Some((index, created)))
}
