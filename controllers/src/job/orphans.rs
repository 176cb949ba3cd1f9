//! Pods whose Job is gone keep the tracking finalizer, and so would never go away,
//! unless someone takes it off: this watches for such pods being deleted and does,
//! as upstream's Job controller does for orphaned pods.

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use super::tracking;
use crate::owners;

/// Watches pods until the watch ends; errors are logged and retried with backoff.
pub async fn run(client: Client) {
    let pods = Api::<Pod>::all(client.clone());
    let stream = watcher(pods, watcher::Config::default()).default_backoff().applied_objects();
    stream
        .for_each(|event| {
            let client = client.clone();
            async move {
                match event {
                    Ok(pod) => {
                        if let Err(error) = release_if_orphaned(&client, &pod).await {
                            tracing::debug!(%error, pod = %pod.name_any(), "releasing an orphaned job pod failed");
                        }
                    }
                    Err(error) => tracing::debug!(%error, "job pod watch failed"),
                }
            }
        })
        .await;
}

/// Takes the finalizer off a pod being deleted whose controlling Job no longer exists.
async fn release_if_orphaned(client: &Client, pod: &Pod) -> Result<(), kube::Error> {
    if pod.metadata.deletion_timestamp.is_none() || !tracking::has_finalizer(pod) {
        return Ok(());
    }
    let namespace = pod.namespace().unwrap_or_default();
    let owner = owners::controller_of(&pod.metadata).filter(|o| o.kind == "Job" && o.api_version == "batch/v1");
    if let Some(owner) = owner {
        let job = Api::<Job>::namespaced(client.clone(), &namespace).get_opt(&owner.name).await?;
        if job.is_some_and(|job| job.uid().as_deref() == Some(owner.uid.as_str())) {
            // Its Job is there to count it.
            return Ok(());
        }
    }
    let api = Api::<Pod>::namespaced(client.clone(), &namespace);
    match api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(tracking::release_patch(pod))).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
        Err(error) => Err(error),
    }
}
