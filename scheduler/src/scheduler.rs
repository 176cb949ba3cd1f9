//! The scheduling loop: after every change it may matter to, each pending pod that is
//! due is placed (bound through `pods/binding`) or marked unschedulable, and tried
//! again after a backoff when the cluster changes, or later anyway.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use tokio::sync::Notify;
use waggle_controllers::events::Events;

use crate::cache::Cache;
use crate::resources::{NodeInfo, PodInfo};
use crate::schedule::{self, Decision};

/// The first retry after a failure, doubled per failure up to [`MAX_BACKOFF`]
/// (upstream's `podInitialBackoffSeconds` and `podMaxBackoffSeconds`).
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A pod that failed is tried again this long after, doubled per failure up to
/// [`MAX_UNCHANGED_RETRY`], even when nothing it depends on changed.
const UNCHANGED_RETRY: Duration = Duration::from_secs(15);
const MAX_UNCHANGED_RETRY: Duration = Duration::from_secs(300);

/// A pod's last failed attempt.
struct Attempt {
    /// The pod's spec and labels then.
    fingerprint: u64,
    /// [`Cache::moves`] then.
    moves: u64,
    failures: u32,
    at: Instant,
}

impl Attempt {
    fn doubled(base: Duration, failures: u32, max: Duration) -> Duration {
        base.saturating_mul(1 << failures.saturating_sub(1).min(16)).min(max)
    }

    /// When the pod is tried again: after the backoff once it or the cluster changed,
    /// else after the longer retry.
    fn due(&self, fingerprint: u64, moves: u64) -> Instant {
        if fingerprint != self.fingerprint || moves != self.moves {
            self.at + Self::doubled(INITIAL_BACKOFF, self.failures, MAX_BACKOFF)
        } else {
            self.at + Self::doubled(UNCHANGED_RETRY, self.failures, MAX_UNCHANGED_RETRY)
        }
    }
}

fn fingerprint(pod: &Pod) -> u64 {
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(&(&pod.spec, &pod.metadata.labels)).unwrap_or_default().hash(&mut hasher);
    hasher.finish()
}

pub struct Scheduler {
    client: Client,
    name: String,
    cache: Arc<Mutex<Cache>>,
    changed: Arc<Notify>,
    events: Events,
    attempts: HashMap<String, Attempt>,
    rng: StdRng,
}

impl Scheduler {
    pub fn new(client: Client, name: String, cache: Arc<Mutex<Cache>>, changed: Arc<Notify>) -> Scheduler {
        let events = Events::new(client.clone(), &name);
        Scheduler { client, name, cache, changed, events, attempts: HashMap::new(), rng: StdRng::from_os_rng() }
    }

    /// Schedules until the task is dropped.
    pub async fn run(mut self) {
        loop {
            let next = self.pass().await;
            let wait = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.changed.notified() => {}
                () = wait => {}
            }
        }
    }

    /// Tries every pending pod that is due; returns when the next one will be.
    async fn pass(&mut self) -> Option<Instant> {
        let (pending, mut nodes, moves) = {
            let mut cache = self.cache.lock().expect("scheduler cache lock");
            if !cache.synced() {
                return None;
            }
            (cache.pending(&self.name), cache.snapshot(), cache.moves)
        };
        let uids: Vec<String> = pending.iter().map(|p| p.uid().unwrap_or_default()).collect();
        self.attempts.retain(|uid, _| uids.contains(uid));
        let mut next: Option<Instant> = None;
        for (pod, uid) in pending.into_iter().zip(uids) {
            let fingerprint = fingerprint(&pod);
            let due = self.attempts.get(&uid).map(|a| a.due(fingerprint, moves));
            if due.is_none_or(|due| due <= Instant::now()) {
                self.schedule_one(pod, &uid, &mut nodes, moves, fingerprint).await;
            }
            if let Some(due) = self.attempts.get(&uid).map(|a| a.due(fingerprint, moves)) {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        next
    }

    fn failed(&mut self, uid: &str, fingerprint: u64, moves: u64) {
        let failures = self.attempts.get(uid).map_or(0, |a| a.failures) + 1;
        self.attempts.insert(uid.to_owned(), Attempt { fingerprint, moves, failures, at: Instant::now() });
    }

    async fn schedule_one(&mut self, pod: Arc<Pod>, uid: &str, nodes: &mut [NodeInfo], moves: u64, fingerprint: u64) {
        let reference = pod.object_ref(&());
        let decision = schedule::schedule(&PodInfo::new(pod.clone()), nodes, &mut self.rng);
        match decision {
            Decision::Node(i) => {
                let node = nodes[i].name().to_owned();
                match self.bind(&pod, &node).await {
                    Ok(()) => {
                        tracing::info!(pod = %format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any()), %node, "bound");
                        let mut bound = (*pod).clone();
                        bound.spec.get_or_insert_default().node_name = Some(node.clone());
                        nodes[i].add(PodInfo::new(Arc::new(bound.clone())));
                        self.cache.lock().expect("scheduler cache lock").assume(bound);
                        self.attempts.remove(uid);
                        let note = format!(
                            "Successfully assigned {}/{} to {node}",
                            pod.namespace().unwrap_or_default(),
                            pod.name_any()
                        );
                        self.events.publish(&reference, "Normal", "Scheduled", "Binding", note).await;
                    }
                    Err(error) => {
                        tracing::debug!(pod = %pod.name_any(), %node, %error, "binding failed");
                        self.failed(uid, fingerprint, moves);
                        let note = format!("Binding rejected: {error}");
                        self.events.publish(&reference, "Warning", "FailedScheduling", "Scheduling", note).await;
                    }
                }
            }
            Decision::Unschedulable(message) => {
                tracing::debug!(pod = %pod.name_any(), %message, "unschedulable");
                self.failed(uid, fingerprint, moves);
                if let Err(error) = self.mark_unschedulable(&pod, &message).await {
                    tracing::debug!(pod = %pod.name_any(), %error, "setting PodScheduled failed");
                }
                self.events.publish(&reference, "Warning", "FailedScheduling", "Scheduling", message).await;
            }
        }
    }

    async fn bind(&self, pod: &Pod, node: &str) -> Result<(), kube::Error> {
        let namespace = pod.namespace().unwrap_or_default();
        let binding = Binding {
            metadata: ObjectMeta {
                name: pod.metadata.name.clone(),
                namespace: Some(namespace.clone()),
                uid: pod.metadata.uid.clone(),
                ..ObjectMeta::default()
            },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.to_owned()),
                ..ObjectReference::default()
            },
        };
        let api = Api::<Pod>::namespaced(self.client.clone(), &namespace);
        api.create_subresource::<_, serde_json::Value>("binding", &pod.name_any(), &PostParams::default(), &binding)
            .await?;
        Ok(())
    }

    /// Sets `PodScheduled` False (reason `Unschedulable`) unless it already says so.
    async fn mark_unschedulable(&self, pod: &Pod, message: &str) -> Result<(), kube::Error> {
        let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
        let current = conditions.iter().find(|c| c.type_ == "PodScheduled");
        if current.is_some_and(|c| {
            c.status == "False" && c.reason.as_deref() == Some("Unschedulable") && c.message.as_deref() == Some(message)
        }) {
            return Ok(());
        }
        let since = current
            .filter(|c| c.status == "False")
            .and_then(|c| c.last_transition_time.clone())
            .map_or_else(|| jiff::Timestamp::now().to_string(), |t| t.0.to_string());
        let patch = json!({"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": since,
        }]}});
        let api = Api::<Pod>::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        api.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(patch)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off() {
        let at = Instant::now();
        let attempt = |failures| Attempt { fingerprint: 1, moves: 1, failures, at };
        assert_eq!(attempt(1).due(1, 2) - at, Duration::from_secs(1));
        assert_eq!(attempt(3).due(2, 1) - at, Duration::from_secs(4));
        assert_eq!(attempt(9).due(1, 2) - at, MAX_BACKOFF);
        assert_eq!(attempt(1).due(1, 1) - at, Duration::from_secs(15));
        assert_eq!(attempt(2).due(1, 1) - at, Duration::from_secs(30));
        assert_eq!(attempt(40).due(1, 1) - at, MAX_UNCHANGED_RETRY);
    }
}
