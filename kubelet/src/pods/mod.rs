//! The pods bound to this node, kept running: a watch of `spec.nodeName=<node>` and,
//! every [`RELIST_PERIOD`] or on any change, a relist of the runtime (what upstream
//! calls the PLEG) and one [`sync`] pass per pod, each pod's pass on its own task so a
//! slow image pull or a long grace period holds up no other pod.

pub mod environment;
pub mod probes;
pub mod spec;
pub mod status;
pub mod sync;
pub mod volumes;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use self::sync::{Context, PodState, RuntimeView};
use crate::error::Error;
use crate::runtime::labels;

/// How often the runtime is relisted when nothing else wakes the loop.
const RELIST_PERIOD: Duration = Duration::from_secs(1);

/// Runs the node's pods until the pod watch ends.
pub async fn run(ctx: Arc<Context>, node_name: &str) -> Result<(), Error> {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let (reader, writer) = reflector::store();
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node_name}"));
    let changed = Arc::new(Notify::new());
    let watch = {
        let changed = changed.clone();
        let mut events = reflector(writer, watcher(api, config)).default_backoff().touched_objects().boxed();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                if let Err(error) = event {
                    tracing::warn!(%error, "pod watch");
                }
                changed.notify_one();
            }
        })
    };
    reader.wait_until_ready().await.map_err(|_| Error::WatchEnded)?;
    tracing::info!(node = node_name, "watching the node's pods");

    let mut states: HashMap<String, PodState> = HashMap::new();
    let mut running: JoinSet<(String, PodState)> = JoinSet::new();
    let mut busy: HashSet<String> = HashSet::new();
    let probed = ctx.prober.changed();
    let mut tick = tokio::time::interval(RELIST_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = changed.notified() => {}
            _ = probed.notified() => {}
            Some(done) = running.join_next() => {
                match done {
                    Ok((uid, state)) => {
                        busy.remove(&uid);
                        states.insert(uid, state);
                    }
                    Err(e) => return Err(Error::Serve(format!("a pod worker panicked: {e}"))),
                }
                continue;
            }
        }
        if watch.is_finished() {
            return Err(Error::WatchEnded);
        }
        let mut by_pod = match relist(&ctx).await {
            Ok(by_pod) => by_pod,
            Err(error) => {
                tracing::warn!(%error, "relisting the runtime");
                continue;
            }
        };
        let pods = reader.state();
        let known: HashSet<String> = pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
        for pod in pods {
            let Some(uid) = pod.metadata.uid.clone() else { continue };
            if busy.contains(&uid) {
                continue;
            }
            let view = by_pod.remove(&uid).unwrap_or_default();
            let mut state = states.remove(&uid).unwrap_or_default();
            let ctx = ctx.clone();
            busy.insert(uid.clone());
            running.spawn(async move {
                let result = if pod.metadata.deletion_timestamp.is_some() {
                    sync::terminate(&ctx, &pod, view).await
                } else {
                    sync::sync(&ctx, &pod, view, &mut state).await
                };
                if let Err(error) = result {
                    let name = pod.metadata.name.as_deref().unwrap_or_default();
                    tracing::warn!(%error, pod = name, "syncing a pod");
                }
                (uid, state)
            });
        }
        for (uid, view) in by_pod {
            if known.contains(&uid) || busy.contains(&uid) {
                continue;
            }
            let ctx = ctx.clone();
            busy.insert(uid.clone());
            running.spawn(async move {
                if let Err(error) = sync::tear_down(&ctx, &uid, view).await {
                    tracing::warn!(%error, uid, "removing what runs for a deleted pod");
                }
                (uid, PodState::default())
            });
        }
        states.retain(|uid, _| known.contains(uid));
        ctx.prober.retain_pods(|uid| known.contains(uid));
    }
}

/// What the runtime runs, by pod uid.
async fn relist(ctx: &Context) -> Result<HashMap<String, RuntimeView>, Error> {
    let mut by_pod: HashMap<String, RuntimeView> = HashMap::new();
    for sandbox in ctx.runtime.sandboxes(HashMap::new()).await? {
        if let Some(uid) = sandbox.labels.get(labels::POD_UID).cloned() {
            by_pod.entry(uid).or_default().sandboxes.push(sandbox);
        }
    }
    for container in ctx.runtime.containers(HashMap::new()).await? {
        if let Some(uid) = container.labels.get(labels::POD_UID).cloned() {
            by_pod.entry(uid).or_default().containers.push(container);
        }
    }
    Ok(by_pod)
}
