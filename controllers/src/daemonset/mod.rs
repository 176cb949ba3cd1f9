//! The DaemonSet controller: one pod of the set on every node that should run it (its
//! node selector and required node affinity match, its taints are tolerated, counting
//! the tolerations every daemon pod gets), each pinned to its node by a required node
//! affinity on the node's name so that the scheduler binds it there; the template's
//! history kept as ControllerRevisions (what `kubectl rollout history` and `undo`
//! read); rolling updates within `maxUnavailable` or `maxSurge`, or none (`OnDelete`);
//! and a status that `kubectl rollout status` and `kubectl get ds` read.
//!
//! Start at [`reconcile`]: it reads the set, the nodes, the set's pods and revisions from
//! the API server, asks [`plan`] what to do, does it, and writes the [`status`].

mod history;
mod nodes;
mod plan;
mod status;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use self::plan::{Budget, Steps, View};
use crate::owners::{self, Claim};
use crate::revisions::{self, Outcome};
use crate::{Context, Error};

const NAME: &str = "daemonset-controller";
/// At most this many pods are created per sync (upstream's burst).
const BURST: usize = 250;
/// How long a node whose daemon pod failed waits before the next replacement, at first
/// and at most.
const FAILED_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(15 * 60));

/// What the reconciles share: the controllers' context and, per set, generation and
/// node, since when and for how long replacing a failed pod there backs off.
struct Shared {
    context: Arc<Context>,
    failed: Mutex<HashMap<String, (Instant, Duration)>>,
}

/// Runs the DaemonSet controller until its watches end.
pub async fn run(client: Client) -> Result<(), Error> {
    let controller = Controller::new(Api::<DaemonSet>::all(client.clone()), watcher::Config::default());
    let sets = controller.store();
    let shared = Arc::new(Shared { context: Context::new(client.clone(), NAME), failed: Mutex::default() });
    let results = controller
        .watches(Api::<Pod>::all(client.clone()), watcher::Config::default(), move |pod| {
            owners::interested(&sets, &pod, |s: &DaemonSet| s.spec.as_ref().map(|s| &s.selector))
        })
        .reconcile_all_on(node_changes(Api::<Node>::all(client)))
        .run(reconcile, retry_later, shared);
    crate::drive(results, "daemonset").await;
    Err(Error::Stopped { controller: "daemonset" })
}

/// A tick whenever a node comes or goes or its labels or taints change, which may
/// change every set's nodes; status updates (the kubelet's heartbeats) are ignored,
/// as upstream's `shouldIgnoreNodeUpdate` ignores them.
fn node_changes(api: Api<Node>) -> impl Stream<Item = ()> + Send + 'static {
    let mut seen: HashMap<String, serde_json::Value> = HashMap::new();
    watcher(api, watcher::Config::default()).default_backoff().filter_map(move |event| {
        let changed = match event {
            Ok(watcher::Event::Init) => {
                seen.clear();
                false
            }
            Ok(watcher::Event::InitApply(node)) => {
                seen.insert(node.name_any(), nodes::placement_inputs(&node));
                false
            }
            Ok(watcher::Event::InitDone) => true,
            Ok(watcher::Event::Apply(node)) => {
                let inputs = nodes::placement_inputs(&node);
                seen.insert(node.name_any(), inputs.clone()).is_none_or(|before| before != inputs)
            }
            Ok(watcher::Event::Delete(node)) => {
                seen.remove(&node.name_any());
                true
            }
            Err(error) => {
                tracing::debug!(%error, "watching nodes");
                false
            }
        };
        std::future::ready(changed.then_some(()))
    })
}

fn retry_later(_: Arc<DaemonSet>, _: &Error, _: Arc<Shared>) -> Action {
    Action::requeue(Duration::from_secs(1))
}

async fn reconcile(cached: Arc<DaemonSet>, shared: Arc<Shared>) -> Result<Action, Error> {
    let namespace = cached.namespace().unwrap_or_default();
    let client = &shared.context.client;
    // The set as stored now: the cache may not have seen the status written last time.
    let sets = Api::<DaemonSet>::namespaced(client.clone(), &namespace);
    let Some(set) = sets.get_opt(&cached.name_any()).await? else { return Ok(Action::await_change()) };
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let spec = set.spec.clone().unwrap_or_default();
    let pods_api = Api::<Pod>::namespaced(client.clone(), &namespace);
    let revisions_api = Api::<ControllerRevision>::namespaced(client.clone(), &namespace);
    let node_list = Api::<Node>::all(client.clone()).list(&ListParams::default()).await?.items;
    let mine = claim_pods(&set, &pods_api).await?;

    let mut history = revisions::claim(&set, &spec.selector, &revisions_api).await?;
    history.sort_by_key(|r| r.revision);
    let collision_count = set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
    let current =
        match revisions::update_revision(history::new_revision(&set), collision_count, &mut history, &revisions_api)
            .await?
        {
            Outcome::Revision(revision) => *revision,
            Outcome::Collided(count) => {
                tracing::info!(set = %set.name_any(), count, "revision name collision");
                let patch = json!({"status": {"collisionCount": count}});
                sets.patch_status(&set.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
                return Ok(Action::requeue(Duration::from_millis(100)));
            }
        };
    let hash = match history::hash_of(&current) {
        "" => history::hash(&set),
        hash => hash.to_owned(),
    };

    let generation = nodes::template_generation(&set);
    let view = View {
        placements: node_list.iter().map(|n| (n.name_any(), nodes::placement(&set, n))).collect(),
        pods: by_node(&mine),
        hash: &hash,
        generation: generation.as_deref(),
        min_ready: spec.min_ready_seconds.unwrap_or(0),
        now: Timestamp::now(),
    };
    let mut steps = plan::manage(&view, allows_surge(&set));
    let mut wait = take_failed(&set, &mut steps, &shared).await;
    take_succeeded(&set, &mut steps, &shared.context).await;
    if steps.is_empty()
        && let Some(budget) = budget(&set, plan::desired(&view))
    {
        steps = plan::rolling_update(&view, budget);
    }
    act(&set, &hash, &steps, &pods_api, &shared.context).await?;

    let live = history::live(&history, &current, &mine);
    let limit = usize::try_from(spec.revision_history_limit.unwrap_or(10)).unwrap_or(0);
    revisions::prune(&history, &live, limit, &revisions_api).await?;

    let counted = status::count(&view);
    status::write(&set, &counted, client).await?;

    // Ready pods become available minReadySeconds later.
    if view.min_ready > 0 && counted.ready != counted.available {
        let later = Duration::from_secs(u64::from(view.min_ready.unsigned_abs()));
        wait = Some(wait.map_or(later, |w| w.min(later)));
    }
    Ok(Action::requeue(wait.unwrap_or(Duration::from_secs(300))))
}

/// The set's pods: its own that match, and matching orphans (adopted); its own that
/// stopped matching are released.
async fn claim_pods(set: &DaemonSet, api: &Api<Pod>) -> Result<Vec<Pod>, Error> {
    let spec = set.spec.clone().unwrap_or_default();
    let selector = owners::selector(set, &spec.selector)?;
    let uid = set.uid().unwrap_or_default();
    let mut mine = Vec::new();
    for pod in api.list(&ListParams::default()).await?.items {
        let patch = match owners::claim(&uid, false, &selector, &pod.metadata) {
            Claim::Owned => {
                mine.push(pod);
                continue;
            }
            Claim::Adopt => owners::adoption_patch(
                &pod.metadata,
                set.controller_owner_ref(&()).expect("a stored DaemonSet has a name and uid"),
            ),
            Claim::Release => owners::release_patch(&pod.metadata, &uid),
            Claim::Ignore => continue,
        };
        let patched = owners::write_claim(api, &pod.name_any(), &patch).await?;
        mine.extend(patched.filter(|p| owners::controller_of(&p.metadata).is_some_and(|r| r.uid == uid)));
    }
    Ok(mine)
}

/// Finished and being deleted: as good as gone.
fn finished_and_deleting(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_some() && matches!(phase, Some("Succeeded" | "Failed"))
}

/// The pods by the node they are for, but those finished and being deleted; pods for
/// no node are left alone.
fn by_node(pods: &[Pod]) -> BTreeMap<String, Vec<&Pod>> {
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for pod in pods.iter().filter(|p| !finished_and_deleting(p)) {
        match nodes::target_node(pod) {
            Some(node) => by_node.entry(node).or_default().push(pod),
            None => tracing::debug!(pod = %pod.name_any(), "a daemon pod for no node"),
        }
    }
    by_node
}

/// An absolute number or a percentage of `total`, rounded up.
fn scaled_up(value: Option<&IntOrString>, total: usize) -> usize {
    match value {
        Some(IntOrString::Int(n)) => usize::try_from(*n).unwrap_or(0),
        Some(IntOrString::String(s)) => {
            let percent: usize = s.trim_end_matches('%').parse().unwrap_or(0);
            (percent * total).div_ceil(100)
        }
        None => 0,
    }
}

/// The rolling update's budget over `desired` nodes; `None` for `OnDelete`.
fn budget(set: &DaemonSet, desired: usize) -> Option<Budget> {
    let strategy = set.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    if strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
        return None;
    }
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    let mut budget = Budget {
        max_unavailable: scaled_up(rolling.and_then(|r| r.max_unavailable.as_ref()), desired),
        max_surge: scaled_up(rolling.and_then(|r| r.max_surge.as_ref()), desired),
    };
    // Both zero is impossible; upstream then obeys the default of one unavailable.
    if desired > 0 && budget.max_unavailable == 0 && budget.max_surge == 0 {
        budget.max_unavailable = 1;
    }
    Some(budget)
}

/// Whether a rolling update may add pods beside old ones.
fn allows_surge(set: &DaemonSet) -> bool {
    budget(set, 1).is_some_and(|b| b.max_surge > 0)
}

/// Failed pods to delete: those on nodes not backing off from the last replacement,
/// each reported with a `FailedDaemonPod` warning. Returns when to look again for
/// nodes still backing off.
async fn take_failed(set: &DaemonSet, steps: &mut Steps, shared: &Shared) -> Option<Duration> {
    let mut wait: Option<Duration> = None;
    let reference = set.object_ref(&());
    let namespace = set.namespace().unwrap_or_default();
    // As upstream's key: a new generation starts without a backoff.
    let observed = set.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0);
    let prefix = format!("{}/{observed}", set.uid().unwrap_or_default());
    for (pod, node) in std::mem::take(&mut steps.failed) {
        let left = backoff(&shared.failed, format!("{prefix}/{node}"), Instant::now());
        if let Some(left) = left {
            tracing::debug!(pod, node, ?left, "replacing a failed daemon pod backs off");
            wait = Some(wait.map_or(left, |w| w.min(left)));
            continue;
        }
        let note = format!("Found failed daemon pod {namespace}/{pod} on node {node}, will try to kill it");
        shared.context.events.warning(&reference, "FailedDaemonPod", note).await;
        steps.delete.push(pod);
    }
    wait
}

/// How long `key` still backs off at `now`, or `None` when its time is up, after which
/// the next backoff doubles (from 1 second up to 15 minutes; back to 1 second after
/// twice the longest without a failure), as upstream's `flowcontrol.Backoff`.
fn backoff(backoffs: &Mutex<HashMap<String, (Instant, Duration)>>, key: String, now: Instant) -> Option<Duration> {
    let (initial, max) = FAILED_BACKOFF;
    let mut backoffs = backoffs.lock().expect("backoff lock");
    backoffs.retain(|_, (since, _)| now.duration_since(*since) <= 2 * max);
    match backoffs.get(&key).copied() {
        Some((since, delay)) if now.duration_since(since) < delay => Some(delay - now.duration_since(since)),
        Some((_, delay)) => {
            backoffs.insert(key, (now, (delay * 2).min(max)));
            None
        }
        None => {
            backoffs.insert(key, (now, initial));
            None
        }
    }
}

/// Succeeded pods to delete, each reported with a `SucceededDaemonPod` event.
async fn take_succeeded(set: &DaemonSet, steps: &mut Steps, context: &Context) {
    let reference = set.object_ref(&());
    let namespace = set.namespace().unwrap_or_default();
    for (pod, node) in std::mem::take(&mut steps.succeeded) {
        let note = format!("Found succeeded daemon pod {namespace}/{pod} on node {node}, will try to delete it");
        context.events.normal(&reference, "SucceededDaemonPod", note).await;
        steps.delete.push(pod);
    }
}

/// Creates the pods `steps` asks for in batches of 1, 2, 4, ... (stopping at the first
/// failure, as a quota refusal fails them all alike), and deletes the pods it names.
async fn act(set: &DaemonSet, hash: &str, steps: &Steps, api: &Api<Pod>, context: &Context) -> Result<(), Error> {
    let reference = set.object_ref(&());
    let events = &context.events;
    let template = nodes::pod_template(set, hash);
    let params = PostParams::default();
    let mut failure = None;
    let mut batch = 1;
    let mut to_create = &steps.create[..steps.create.len().min(BURST)];
    while !to_create.is_empty() && failure.is_none() {
        let (now, rest) = to_create.split_at(batch.min(to_create.len()));
        let new: Vec<Pod> = now.iter().map(|node| nodes::new_pod(set, &template, node)).collect();
        let results = join_all(new.iter().map(|pod| api.create(&params, pod))).await;
        for result in results {
            match result {
                Ok(created) => {
                    events.normal(&reference, "SuccessfulCreate", format!("Created pod: {}", created.name_any())).await;
                }
                Err(error) => {
                    events.warning(&reference, "FailedCreate", format!("Error creating: {}", message(&error))).await;
                    failure.get_or_insert(error);
                }
            }
        }
        to_create = rest;
        batch *= 2;
    }

    let params = DeleteParams::default();
    let deletes = join_all(steps.delete.iter().map(|name| api.delete(name, &params))).await;
    for (name, result) in steps.delete.iter().zip(deletes) {
        match result {
            Ok(_) => events.normal(&reference, "SuccessfulDelete", format!("Deleted pod: {name}")).await,
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => {
                events.warning(&reference, "FailedDelete", format!("Error deleting: {}", message(&error))).await;
                failure.get_or_insert(error);
            }
        }
    }
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

fn message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(strategy: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {}, "updateStrategy": strategy},
        }))
        .unwrap()
    }

    #[test]
    fn failed_pod_replacements_back_off_doubling() {
        let backoffs = Mutex::default();
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        assert_eq!(backoff(&backoffs, "n1".into(), at(0)), None);
        assert_eq!(backoff(&backoffs, "n2".into(), at(0)), None);
        assert_eq!(backoff(&backoffs, "n1".into(), at(0)), Some(Duration::from_secs(1)));
        assert_eq!(backoff(&backoffs, "n1".into(), at(1)), None);
        assert_eq!(backoff(&backoffs, "n1".into(), at(2)), Some(Duration::from_secs(1)));
        assert_eq!(backoff(&backoffs, "n1".into(), at(3)), None);
        assert_eq!(backoff(&backoffs, "n1".into(), at(6)), Some(Duration::from_secs(1)));
        // Long quiet: the key is forgotten and starts again at one second.
        assert_eq!(backoff(&backoffs, "n1".into(), at(3 + 1801)), None);
        assert_eq!(backoff(&backoffs, "n1".into(), at(3 + 1801)), Some(Duration::from_secs(1)));
        assert_eq!(backoffs.lock().unwrap().len(), 1);
    }

    #[test]
    fn budgets_round_percentages_up() {
        let rolling = |u: serde_json::Value, s: serde_json::Value| {
            set(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": u, "maxSurge": s}}))
        };
        assert_eq!(budget(&rolling(json!("25%"), json!(0)), 5), Some(Budget { max_unavailable: 2, max_surge: 0 }));
        assert_eq!(budget(&rolling(json!(0), json!("10%")), 5), Some(Budget { max_unavailable: 0, max_surge: 1 }));
        assert_eq!(budget(&rolling(json!(0), json!(0)), 5), Some(Budget { max_unavailable: 1, max_surge: 0 }));
        assert!(allows_surge(&rolling(json!(0), json!("10%"))));
        assert!(!allows_surge(&rolling(json!(1), json!(0))));
        assert_eq!(budget(&set(json!({"type": "OnDelete"})), 5), None);
    }
}
