//! Events the controllers record on the objects they act on (`kubectl describe`
//! shows them), through kube-rs's events.k8s.io recorder.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder};

/// Records events as one controller (`reportingController`).
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    pub fn new(client: Client, controller: &str) -> Events {
        Events { recorder: Recorder::new(client, controller.to_owned().into()) }
    }

    /// A normal event; failing to record one is logged, never fatal.
    pub async fn normal(&self, on: &ObjectReference, reason: &str, note: String) {
        self.publish(on, EventType::Normal, reason, note).await;
    }

    pub async fn warning(&self, on: &ObjectReference, reason: &str, note: String) {
        self.publish(on, EventType::Warning, reason, note).await;
    }

    async fn publish(&self, on: &ObjectReference, type_: EventType, reason: &str, note: String) {
        let event = Event { type_, reason: reason.into(), note: Some(note), action: reason.into(), secondary: None };
        if let Err(error) = self.recorder.publish(&event, on).await {
            tracing::debug!(%error, reason, "recording an event failed");
        }
    }
}
