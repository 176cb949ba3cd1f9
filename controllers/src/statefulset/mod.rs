//! The StatefulSet controller: pods with stable identities `<set>-<ordinal>`, each with
//! its own PersistentVolumeClaims from the volume claim templates, created in ordinal
//! order and removed highest first (`OrderedReady`) or all at once (`Parallel`); the
//! template's history kept as ControllerRevisions (what `kubectl rollout history` and
//! `undo` read); rolling updates in reverse ordinal order down to the partition, or
//! none (`OnDelete`); and a status that `kubectl rollout status` follows.
//!
//! Each reconcile reads the set, its pods, revisions and claims from the API server
//! rather than a cache, so what it just did is always seen.

mod claims;
mod identity;
mod plan;
mod revisions;
mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use self::plan::{Health, Revision, Slot, Step, Updates, Why};
use crate::events::Events;
use crate::owners::{self, Claim};
use crate::revisions::Outcome;
use crate::{Context, Error, pods};

const NAME: &str = "statefulset-controller";

/// Runs the StatefulSet controller until its watches end.
pub async fn run(client: Client) -> Result<(), Error> {
    let controller = Controller::new(Api::<StatefulSet>::all(client.clone()), watcher::Config::default());
    let sets = controller.store();
    let context = Context::new(client.clone(), NAME);
    let results = controller
        .watches(Api::<Pod>::all(client), watcher::Config::default(), move |pod| {
            owners::interested(&sets, &pod, |s: &StatefulSet| s.spec.as_ref().map(|s| &s.selector))
        })
        .run(reconcile, retry_later, context);
    crate::drive(results, "statefulset").await;
    Err(Error::Stopped { controller: "statefulset" })
}

fn retry_later(_: Arc<StatefulSet>, _: &Error, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(1))
}

/// The APIs of one namespace a reconcile uses.
struct Apis {
    pods: Api<Pod>,
    revisions: Api<ControllerRevision>,
    claims: Api<PersistentVolumeClaim>,
}

async fn reconcile(cached: Arc<StatefulSet>, context: Arc<Context>) -> Result<Action, Error> {
    let namespace = cached.namespace().unwrap_or_default();
    let client = &context.client;
    // The set as stored now: the cache may not have seen the status written last time.
    let sets = Api::<StatefulSet>::namespaced(client.clone(), &namespace);
    let Some(set) = sets.get_opt(&cached.name_any()).await? else { return Ok(Action::await_change()) };
    let apis = Apis {
        pods: Api::namespaced(client.clone(), &namespace),
        revisions: Api::namespaced(client.clone(), &namespace),
        claims: Api::namespaced(client.clone(), &namespace),
    };
    let spec = set.spec.clone().unwrap_or_default();
    let mine = claim_pods(&set, &apis.pods).await?;

    let mut history = crate::revisions::claim(&set, &spec.selector, &apis.revisions).await?;
    history.sort_by_key(|r| r.revision);
    let update = match revisions::update_revision(&set, &mut history, &apis.revisions).await? {
        Outcome::Revision(revision) => *revision,
        Outcome::Collided(count) => {
            tracing::info!(set = %set.name_any(), count, "revision name collision");
            revisions::report_collision(&set, count, &sets).await?;
            return Ok(Action::requeue(Duration::from_millis(100)));
        }
    };
    let current_name = set.status.as_ref().and_then(|s| s.current_revision.clone());
    let current =
        history.iter().find(|r| Some(r.name_any()) == current_name).cloned().unwrap_or_else(|| update.clone());
    let current_template = crate::revisions::template_of(&current).unwrap_or_else(|| spec.template.clone());

    let now = Timestamp::now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    if set.metadata.deletion_timestamp.is_none() {
        let templates =
            Templates { current: &current_template, current_name: current.name_any(), update: update.name_any() };
        act(&set, &mine, &templates, &apis, &context.events, min_ready, now).await?;
    }

    let rolling = updates(&set) != Updates::OnDelete;
    let refs: Vec<&Pod> = mine.iter().collect();
    let mut counted = status::count(&refs, &current.name_any(), &update.name_any(), rolling, min_ready, now);
    counted.collision_count = set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
    status::write(&set, &counted, client).await?;

    let mut live: BTreeSet<String> = mine.iter().map(|p| identity::revision_of(p).to_owned()).collect();
    live.insert(counted.current_revision.clone());
    live.insert(counted.update_revision.clone());
    let limit = usize::try_from(spec.revision_history_limit.unwrap_or(10)).unwrap_or(0);
    crate::revisions::prune(&history, &live, limit, &apis.revisions).await?;

    // A pod that is ready but not yet available for minReadySeconds needs a second look.
    let wait = mine.iter().filter_map(|p| pods::seconds_until_available(p, min_ready, now)).min();
    Ok(match wait {
        Some(seconds) => Action::requeue(Duration::from_secs(seconds.unsigned_abs() + 1)),
        None => Action::requeue(Duration::from_secs(300)),
    })
}

/// The set's pods: its own that match, and matching orphans named as its members
/// (adopted); its own that stopped matching are released.
async fn claim_pods(set: &StatefulSet, api: &Api<Pod>) -> Result<Vec<Pod>, Error> {
    let spec = set.spec.clone().unwrap_or_default();
    let selector = owners::selector(set, &spec.selector)?;
    let uid = set.uid().unwrap_or_default();
    let deleting = set.metadata.deletion_timestamp.is_some();
    let set_name = set.name_any();
    let mut mine = Vec::new();
    for pod in api.list(&ListParams::default()).await?.items {
        let member = identity::ordinal_of(&set_name, &pod.name_any()).is_some();
        let patch = match (owners::claim(&uid, deleting, &selector, &pod.metadata), member) {
            (Claim::Owned, true) => {
                mine.push(pod);
                continue;
            }
            (Claim::Adopt, true) => owners::adoption_patch(
                &pod.metadata,
                set.controller_owner_ref(&()).expect("a stored StatefulSet has a name and uid"),
            ),
            (Claim::Owned | Claim::Release, _) if !deleting => owners::release_patch(&pod.metadata, &uid),
            _ => continue,
        };
        let patched = owners::write_claim(api, &pod.name_any(), &patch).await?;
        mine.extend(patched.filter(|p| owners::controller_of(&p.metadata).is_some_and(|r| r.uid == uid)));
    }
    Ok(mine)
}

/// How the set updates its pods.
fn updates(set: &StatefulSet) -> Updates {
    let spec = set.spec.as_ref();
    let strategy = spec.and_then(|s| s.update_strategy.as_ref());
    if strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
        return Updates::OnDelete;
    }
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    let partition = usize::try_from(rolling.and_then(|r| r.partition).unwrap_or(0)).unwrap_or(0);
    let replicas = identity::replicas(set);
    let max_unavailable = rolling.and_then(|r| r.max_unavailable.as_ref()).map(|m| scaled(m, replicas).max(1));
    Updates::Rolling { partition, max_unavailable }
}

/// An absolute number or a percentage of `total`, rounded down.
fn scaled(value: &IntOrString, total: i32) -> usize {
    let n = match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let percent: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            i32::try_from(percent * i64::from(total) / 100).unwrap_or(0)
        }
    };
    usize::try_from(n).unwrap_or(0)
}

/// How a pod stands for the plan.
fn health(pod: Option<&Pod>, min_ready: i32, now: Timestamp) -> Health {
    let Some(pod) = pod else { return Health::Missing };
    if pod.metadata.deletion_timestamp.is_some() {
        Health::Terminating
    } else if !pods::is_active_or_terminating(pod) {
        Health::Finished
    } else if status::running_and_ready(pod) {
        if pods::is_available(pod, min_ready, now) { Health::Available } else { Health::Ready }
    } else {
        Health::Unready
    }
}

/// The templates pods are made from: the current revision's (below a partition) and
/// the set's own (the update revision).
struct Templates<'a> {
    current: &'a PodTemplateSpec,
    current_name: String,
    update: String,
}

/// Repairs the claims of the set's pods, then takes the steps [`plan::plan`] picks.
async fn act(
    set: &StatefulSet,
    mine: &[Pod],
    templates: &Templates<'_>,
    apis: &Apis,
    events: &Events,
    min_ready: i32,
    now: Timestamp,
) -> Result<(), Error> {
    let spec = set.spec.clone().unwrap_or_default();
    let set_name = set.name_any();
    let range = identity::ordinals(set);
    let by_ordinal: BTreeMap<i32, &Pod> =
        mine.iter().filter_map(|p| Some((identity::ordinal_of(&set_name, &p.name_any())?, p))).collect();

    let has_claims = spec.volume_claim_templates.as_ref().is_some_and(|t| !t.is_empty());
    let mut existing = claims::Existing::new();
    if has_claims {
        for claim in apis.claims.list(&ListParams::default()).await?.items {
            existing.insert(claim.name_any(), claim);
        }
        for (&ordinal, pod) in &by_ordinal {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let scaled_down = !range.contains(&ordinal);
            if !scaled_down {
                claims::create_missing(set, ordinal, &mut existing, &apis.claims, events).await?;
            }
            claims::update_owners(set, pod, ordinal, scaled_down, &existing, &apis.claims).await?;
        }
    }

    // Pods adopted without their identity labels get them.
    for (&ordinal, pod) in
        by_ordinal.iter().filter(|(o, p)| range.contains(o) && p.metadata.deletion_timestamp.is_none())
    {
        let Some(patch) = identity::identity_patch(pod, ordinal) else { continue };
        tracing::info!(set = %set_name, pod = %pod.name_any(), "restoring the pod's identity labels");
        match apis.pods.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
            Err(error) => return Err(error.into()),
        }
    }

    let slot = |ordinal: i32| {
        let pod = by_ordinal.get(&ordinal).copied();
        Slot {
            ordinal,
            health: health(pod, min_ready, now),
            revision: pod.map(|p| identity::revision_of(p).to_owned()).unwrap_or_default(),
        }
    };
    let replicas: Vec<Slot> = range.clone().map(slot).collect();
    let condemned: Vec<Slot> = by_ordinal.keys().filter(|o| !range.contains(o)).map(|&o| slot(o)).collect();
    let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
    let steps = plan::plan(&replicas, &condemned, parallel, updates(set), &templates.update);

    let reference = set.object_ref(&());
    for step in steps {
        match step {
            Step::Create { ordinal, revision } => {
                if has_claims && !claims::create_missing(set, ordinal, &mut existing, &apis.claims, events).await? {
                    continue;
                }
                let pod = match revision {
                    Revision::Current => identity::new_pod(set, templates.current, ordinal, &templates.current_name),
                    Revision::Update => identity::new_pod(set, &spec.template, ordinal, &templates.update),
                };
                let name = pod.name_any();
                match apis.pods.create(&PostParams::default(), &pod).await {
                    Ok(_) => {
                        let note = format!("create Pod {name} in StatefulSet {set_name} successful");
                        events.normal(&reference, "SuccessfulCreate", note).await;
                    }
                    Err(kube::Error::Api(status)) if status.code == 409 => {}
                    Err(error) => {
                        let note =
                            format!("create Pod {name} in StatefulSet {set_name} failed error: {}", message(&error));
                        events.warning(&reference, "FailedCreate", note).await;
                        return Err(error.into());
                    }
                }
            }
            Step::Delete { ordinal, why } => {
                let Some(pod) = by_ordinal.get(&ordinal) else { continue };
                let name = pod.name_any();
                tracing::info!(set = %set_name, pod = %name, ?why, "deleting pod");
                if why == Why::Finished {
                    let namespace = set.namespace().unwrap_or_default();
                    if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed") {
                        let note = format!("StatefulSet {namespace}/{set_name} is recreating failed Pod {name}");
                        events.warning(&reference, "RecreatingFailedPod", note).await;
                    } else {
                        let note = format!("StatefulSet {namespace}/{set_name} is recreating terminated Pod {name}");
                        events.normal(&reference, "RecreatingTerminatedPod", note).await;
                    }
                }
                if has_claims && why == Why::ScaledDown {
                    claims::update_owners(set, pod, ordinal, true, &existing, &apis.claims).await?;
                }
                let params = DeleteParams { preconditions: uid_precondition(pod), ..DeleteParams::default() };
                match apis.pods.delete(&name, &params).await {
                    Ok(_) => {
                        let note = format!("delete Pod {name} in StatefulSet {set_name} successful");
                        events.normal(&reference, "SuccessfulDelete", note).await;
                    }
                    Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
                    Err(error) => {
                        let note =
                            format!("delete Pod {name} in StatefulSet {set_name} failed error: {}", message(&error));
                        events.warning(&reference, "FailedDelete", note).await;
                        return Err(error.into());
                    }
                }
            }
        }
    }
    Ok(())
}

fn uid_precondition(pod: &Pod) -> Option<kube::api::Preconditions> {
    Some(kube::api::Preconditions { uid: pod.metadata.uid.clone(), resource_version: None })
}

fn message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
