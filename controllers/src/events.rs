//! Events the controllers (and the scheduler) record on the objects they act on (`kubectl describe`
//! shows them), as events.k8s.io/v1 Events.
//!
//! The same note on the same object within a few minutes becomes a series (one Event
//! whose `series.count` grows) rather than a new Event, as upstream's recorder does;
//! different notes stay separate Events, so every message is shown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// How long an Event keeps absorbing repeats.
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// What makes two events the same: object, type, reason and note.
type Key = (String, String, String, &'static str, String, String);

struct Recorded {
    namespace: String,
    name: String,
    count: i32,
    last: Timestamp,
}

/// Records events as one controller (`reportingController`).
#[derive(Clone)]
pub struct Events {
    client: Client,
    controller: String,
    recent: Arc<Mutex<HashMap<Key, Recorded>>>,
}

impl Events {
    pub fn new(client: Client, controller: &str) -> Events {
        Events { client, controller: controller.to_owned(), recent: Arc::default() }
    }

    /// A normal event; failing to record one is logged, never fatal.
    pub async fn normal(&self, on: &ObjectReference, reason: &str, note: String) {
        self.publish(on, "Normal", reason, reason, note).await;
    }

    pub async fn warning(&self, on: &ObjectReference, reason: &str, note: String) {
        self.publish(on, "Warning", reason, reason, note).await;
    }

    /// An event of `type_` (`Normal` or `Warning`) whose `action` differs from its
    /// reason (the scheduler's `Scheduled` is recorded for the action `Binding`).
    pub async fn publish(&self, on: &ObjectReference, type_: &'static str, reason: &str, action: &str, note: String) {
        if let Err(error) = self.try_publish(on, type_, reason, action, note).await {
            tracing::debug!(%error, reason, "recording an event failed");
        }
    }

    async fn try_publish(
        &self,
        on: &ObjectReference,
        type_: &'static str,
        reason: &str,
        action: &str,
        note: String,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        // Cluster-scoped objects' events go to `default`, as upstream's.
        let namespace = on.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
        let key: Key = (
            on.uid.clone().unwrap_or_default(),
            on.kind.clone().unwrap_or_default(),
            on.name.clone().unwrap_or_default(),
            type_,
            reason.to_owned(),
            note.clone(),
        );
        let repeat = {
            let mut recent = self.recent.lock().expect("event cache lock");
            recent.retain(|_, r| now.duration_since(r.last) < SERIES_WINDOW);
            recent.get_mut(&key).map(|r| {
                r.count += 1;
                r.last = now;
                (r.namespace.clone(), r.name.clone(), r.count)
            })
        };
        let api = |namespace: &str| Api::<Event>::namespaced(self.client.clone(), namespace);
        if let Some((namespace, name, count)) = repeat {
            let patch = json!({"series": {"count": count, "lastObservedTime": MicroTime(now)}});
            api(&namespace).patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            return Ok(());
        }
        let name = format!("{}.{:x}", on.name.as_deref().unwrap_or("object"), now.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(type_.into()),
            reason: Some(reason.into()),
            action: Some(action.into()),
            note: Some(note),
            regarding: Some(on.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(format!("{}-{}", self.controller, hostname())),
            ..Event::default()
        };
        api(&namespace).create(&PostParams::default(), &event).await?;
        let recorded = Recorded { namespace, name, count: 1, last: now };
        self.recent.lock().expect("event cache lock").insert(key, recorded);
        Ok(())
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "waggle".into())
}
