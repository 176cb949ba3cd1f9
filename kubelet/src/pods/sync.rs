//! One pass over one pod: bring what the runtime runs to what the pod asks for (its
//! sandbox, init containers in order, then its containers, restarted as its restart
//! policy says with upstream's back-off), then report the pod's status. Terminating
//! pods are stopped within their grace period and their API objects deleted.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};
use waggle_controllers::events::Events;

use super::environment::{self, Addresses, Sources};
use super::probes::{Kind, Prober, Target};
use super::spec::{self, Layout, PodRef, Resolved};
use super::status::{self, Observed, Waiting};
use super::volumes::{self, Prepared};
use crate::cgroups;
use crate::error::Error;
use crate::runtime::{Runtime, labels};

const MAX_BACKOFF: Duration = Duration::from_secs(300);
const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// What every pod's sync shares.
pub struct Context {
    pub client: kube::Client,
    pub runtime: Runtime,
    /// The runtime's name as container IDs carry it (`containerd`).
    pub runtime_name: String,
    pub layout: Layout,
    /// The kubelet's own directory (`/var/lib/kubelet`): pods' volumes.
    pub root_dir: PathBuf,
    pub node_ip: String,
    pub events: Events,
    pub prober: Prober,
    /// How often API-backed volumes are read again.
    pub sync_frequency: Duration,
}

/// What the kubelet remembers of a pod between passes.
#[derive(Default)]
pub struct PodState {
    /// The sandbox whose volumes are set up, and those volumes.
    volumes: Option<(String, Prepared)>,
    /// Images whose last pull failed: the next failure is `ImagePullBackOff`.
    failed_pulls: HashMap<String, String>,
    /// The status last written, so an unchanged one is not written again.
    last_status: Option<Value>,
    /// The ephemeral containers' statuses last written.
    last_ephemeral: Option<Value>,
    /// Sidecars that have started once: the init containers after them may run.
    sidecars_started: HashSet<String>,
}

/// What the runtime runs for one pod.
#[derive(Default, Clone)]
pub struct RuntimeView {
    pub sandboxes: Vec<cri::PodSandbox>,
    pub containers: Vec<cri::Container>,
}

impl RuntimeView {
    fn ready_sandbox(&self) -> Option<&cri::PodSandbox> {
        self.sandboxes
            .iter()
            .filter(|s| s.state == cri::PodSandboxState::SandboxReady as i32)
            .max_by_key(|s| s.created_at)
    }

    /// The container's attempts in `sandbox`, newest first.
    fn attempts(&self, sandbox: &str, name: &str) -> Vec<&cri::Container> {
        let mut attempts: Vec<&cri::Container> = self
            .containers
            .iter()
            .filter(|c| c.pod_sandbox_id == sandbox)
            .filter(|c| c.labels.get(labels::CONTAINER_NAME).map(String::as_str) == Some(name))
            .collect();
        attempts.sort_by_key(|c| std::cmp::Reverse((c.metadata.as_ref().map(|m| m.attempt), c.created_at)));
        attempts
    }
}

fn reference(pod: &Pod, field: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        field_path: field,
        ..Default::default()
    }
}

/// Which of the pod's lists names the container: `containers`, `initContainers` or
/// `ephemeralContainers`.
fn list_of(pod: &Pod, name: &str) -> &'static str {
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.init_containers.as_ref()).is_some_and(|l| l.iter().any(|c| c.name == name)) {
        "initContainers"
    } else if spec.and_then(|s| s.ephemeral_containers.as_ref()).is_some_and(|l| l.iter().any(|c| c.name == name)) {
        "ephemeralContainers"
    } else {
        "containers"
    }
}

/// A restartable init container (`restartPolicy: Always`), upstream's sidecar.
pub fn is_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

fn now() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One pass over a pod that is not being deleted.
pub async fn sync(ctx: &Context, pod: &Pod, view: RuntimeView, state: &mut PodState) -> Result<(), Error> {
    let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        // A finished pod keeps its exited containers (for logs) but nothing runs.
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        ctx.prober.retain_pods(|other| other != uid);
        let running = view.containers.iter().any(|c| c.state == cri::ContainerState::ContainerRunning as i32);
        stop_running(ctx, pod, &view, 0).await;
        for sandbox in view.sandboxes.iter().filter(|s| s.state == cri::PodSandboxState::SandboxReady as i32) {
            ctx.runtime.stop_sandbox(&sandbox.id).await?;
        }
        if running {
            // What was still running (sidecars) shows as terminated.
            report_finished(ctx, pod, &view, state).await?;
        }
        return Ok(());
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let identity = PodRef::of(pod);
    let (sandbox_id, attempt) = match view.ready_sandbox() {
        Some(sandbox) => (sandbox.id.clone(), sandbox.metadata.as_ref().map(|m| m.attempt).unwrap_or(0)),
        None => {
            let attempt = view.sandboxes.iter().filter_map(|s| s.metadata.as_ref()).map(|m| m.attempt + 1).max();
            // The containers of a dead sandbox die with it; the new one starts over.
            stop_running(ctx, pod, &view, 0).await;
            for sandbox in &view.sandboxes {
                ctx.runtime.remove_sandbox(&sandbox.id).await?;
            }
            let attempt = attempt.unwrap_or(0);
            let log_dir = spec::log_directory(&ctx.layout, &identity);
            std::fs::create_dir_all(&log_dir).map_err(Error::io("creating the pod log directory", &log_dir))?;
            let config = spec::sandbox_config(&ctx.layout, pod, attempt);
            match ctx.runtime.run_sandbox(config).await {
                Ok(id) => (id, attempt),
                Err(e) => {
                    let note = format!("Failed to create pod sandbox: {e}");
                    ctx.events.warning(&reference(pod, None), "FailedCreatePodSandBox", note).await;
                    let waiting: Vec<Observed> = spec
                        .containers
                        .iter()
                        .map(|_| Observed {
                            waiting: Some(Waiting::new("ContainerCreating", None)),
                            ..Default::default()
                        })
                        .collect();
                    let progress =
                        Progress { sandbox_ready: false, init_done: false, init_failed: false, sandbox_created: None };
                    write_status(ctx, pod, state, progress, &[], &waiting, &[]).await?;
                    return Ok(());
                }
            }
        }
    };
    let sandbox_status = ctx.runtime.sandbox_status(&sandbox_id).await?;
    let mut pod_ips: Vec<String> = Vec::new();
    if let Some(network) = &sandbox_status.network {
        pod_ips.extend(Some(network.ip.clone()).filter(|ip| !ip.is_empty()));
        pod_ips.extend(network.additional_ips.iter().map(|p| p.ip.clone()));
    }
    if spec.host_network.unwrap_or(false) {
        pod_ips = vec![ctx.node_ip.clone()];
    }
    let addresses = Addresses { host_ip: &ctx.node_ip, pod_ips: &pod_ips };
    if let Some((id, prepared)) = state.volumes.as_mut()
        && *id == sandbox_id
        && prepared.due(ctx.sync_frequency)
    {
        let mut sources = Sources::new(ctx.client.clone(), identity.namespace);
        if let Err(e) = prepared.refresh(&ctx.client, pod, addresses, &mut sources).await {
            ctx.events.warning(&reference(pod, None), "FailedMount", e.0).await;
        }
    }
    if state.volumes.as_ref().map(|(id, _)| id.as_str()) != Some(sandbox_id.as_str()) {
        let mut sources = Sources::new(ctx.client.clone(), identity.namespace);
        match volumes::prepare(&ctx.client, &ctx.root_dir, pod, addresses, &mut sources).await {
            Ok(prepared) => state.volumes = Some((sandbox_id.clone(), prepared)),
            Err(e) => {
                ctx.events.warning(&reference(pod, None), "FailedMount", e.0.clone()).await;
                let waiting: Vec<Observed> = spec
                    .containers
                    .iter()
                    .map(|_| Observed { waiting: Some(Waiting::new("ContainerCreating", None)), ..Default::default() })
                    .collect();
                let progress =
                    Progress { sandbox_ready: true, init_done: false, init_failed: false, sandbox_created: None };
                write_status(ctx, pod, state, progress, &[], &waiting, &pod_ips).await?;
                return Ok(());
            }
        }
    }
    let sandbox_config = spec::sandbox_config(&ctx.layout, pod, attempt);
    let policy = spec.restart_policy.clone().unwrap_or_else(|| "Always".into());
    let mut run = Runner { ctx, pod, view: &view, sandbox_id: &sandbox_id, sandbox_config: &sandbox_config, addresses };

    let mut init_done = true;
    let mut init_failed = false;
    let mut init_observed = Vec::new();
    let pod_ip = pod_ips.first().map(String::as_str);
    for container in spec.init_containers.iter().flatten() {
        let mut observed = run.observe(container).await?;
        if is_sidecar(container) {
            // A sidecar (restartable init container) keeps running beside the pod's
            // containers and is restarted whenever it exits; the containers after it
            // wait until it has started (its startup probe, if any, succeeded).
            if observed.current.is_none() && init_done {
                run.start(container, 0, &mut observed, state).await;
            } else if observed.current.is_some() {
                run.probe(container, &mut observed, pod_ip).await?;
                if observed.exited().is_some() {
                    run.restart(container, &mut observed, state).await;
                }
                if observed.running() && observed.probes.started {
                    state.sidecars_started.insert(container.name.clone());
                }
            } else {
                observed.waiting.get_or_insert_with(|| Waiting::new("PodInitializing", None));
            }
            init_done &= state.sidecars_started.contains(&container.name);
            init_observed.push(observed);
            continue;
        }
        if init_done {
            if observed.current.is_none() {
                run.start(container, 0, &mut observed, state).await;
                init_done = false;
            } else if observed.running() {
                init_done = false;
            } else if let Some(exited) = observed.exited().cloned() {
                if exited.exit_code != 0 {
                    init_done = false;
                    if policy == "Never" {
                        init_failed = true;
                    } else {
                        run.restart(container, &mut observed, state).await;
                    }
                }
            } else {
                init_done = false;
            }
        } else if observed.current.is_none() {
            observed.waiting.get_or_insert_with(|| Waiting::new("PodInitializing", None));
        }
        init_observed.push(observed);
    }

    let mut observed_all = Vec::new();
    for container in &spec.containers {
        let mut observed = run.observe(container).await?;
        if init_done {
            run.probe(container, &mut observed, pod_ip).await?;
        } else {
            ctx.prober.stop(identity.uid, &container.name);
        }
        if !init_done {
            if observed.current.is_none() {
                observed.waiting = Some(Waiting::new("PodInitializing", None));
            }
        } else if observed.current.is_none() {
            run.start(container, 0, &mut observed, state).await;
        } else if let Some(exited) = observed.exited().cloned() {
            let again = policy == "Always" || (policy == "OnFailure" && exited.exit_code != 0);
            if again {
                run.restart(container, &mut observed, state).await;
            }
        }
        observed_all.push(observed);
    }
    // Ephemeral containers (`kubectl debug`) run once, never restarted, in the PID
    // namespace of their target container when they name one.
    let mut ephemeral = Vec::new();
    for added in spec.ephemeral_containers.iter().flatten() {
        let container = spec::ephemeral_as_container(added);
        let mut observed = run.observe(&container).await?;
        if observed.current.is_none() && observed.waiting.is_none() && init_done {
            let target = added.target_container_name.as_deref().and_then(|name| {
                let running = view
                    .attempts(&sandbox_id, name)
                    .into_iter()
                    .find(|c| c.state == cri::ContainerState::ContainerRunning as i32);
                running.map(|c| c.id.clone())
            });
            run.start_in(&container, 0, &mut observed, state, target).await;
        }
        ephemeral.push((container, observed));
    }
    let progress =
        Progress { sandbox_ready: true, init_done, init_failed, sandbox_created: Some(sandbox_status.created_at) };
    write_status(ctx, pod, state, progress, &init_observed, &observed_all, &pod_ips).await?;
    write_ephemeral_status(ctx, pod, state, &ephemeral).await
}

/// `ephemeralContainerStatuses`, written when they changed.
async fn write_ephemeral_status(
    ctx: &Context,
    pod: &Pod,
    state: &mut PodState,
    ephemeral: &[(Container, Observed)],
) -> Result<(), Error> {
    if ephemeral.is_empty() {
        return Ok(());
    }
    let statuses: Vec<Value> =
        ephemeral.iter().map(|(c, o)| status::container_status(c, o, &ctx.runtime_name)).collect();
    let body = json!({"ephemeralContainerStatuses": statuses});
    patch_status(ctx, pod, &mut state.last_ephemeral, body).await
}

/// Writes `body` into the pod's status unless it is what was last written there.
async fn patch_status(ctx: &Context, pod: &Pod, last: &mut Option<Value>, body: Value) -> Result<(), Error> {
    if last.as_ref() == Some(&body) {
        return Ok(());
    }
    let identity = PodRef::of(pod);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), identity.namespace);
    // The uid in the patch makes it apply to this pod only, not a successor of its name.
    let patch = json!({"metadata": {"uid": identity.uid}, "status": body});
    match pods.patch_status(identity.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            *last = Some(body);
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Writes the containers' final states of a finished pod; its phase stands.
async fn report_finished(ctx: &Context, pod: &Pod, view: &RuntimeView, state: &mut PodState) -> Result<(), Error> {
    let Some(sandbox) = view.sandboxes.iter().max_by_key(|s| s.created_at) else { return Ok(()) };
    let spec = pod.spec.clone().unwrap_or_default();
    let sandbox_config = spec::sandbox_config(&ctx.layout, pod, 0);
    let addresses = Addresses { host_ip: &ctx.node_ip, pod_ips: &[] };
    let run = Runner { ctx, pod, view, sandbox_id: &sandbox.id, sandbox_config: &sandbox_config, addresses };
    let mut init = Vec::new();
    for container in spec.init_containers.iter().flatten() {
        init.push(run.observe(container).await?);
    }
    let mut containers = Vec::new();
    for container in &spec.containers {
        containers.push(run.observe(container).await?);
    }
    let pod_ips: Vec<String> =
        pod.status.iter().flat_map(|s| s.pod_ips.iter().flatten()).map(|p| p.ip.clone()).collect();
    let progress = Progress { sandbox_ready: false, init_done: true, init_failed: false, sandbox_created: None };
    write_status(ctx, pod, state, progress, &init, &containers, &pod_ips).await
}

/// Starts and restarts one pod's containers in its sandbox.
struct Runner<'a> {
    ctx: &'a Context,
    pod: &'a Pod,
    view: &'a RuntimeView,
    sandbox_id: &'a str,
    sandbox_config: &'a cri::PodSandboxConfig,
    addresses: Addresses<'a>,
}

impl Runner<'_> {
    /// The container's newest attempt and the one before, as the runtime reports them.
    async fn observe(&self, container: &Container) -> Result<Observed, Error> {
        let attempts = self.view.attempts(self.sandbox_id, &container.name);
        let mut observed = Observed::default();
        if let Some(current) = attempts.first() {
            observed.current = Some(self.ctx.runtime.container_status(&current.id).await?);
        }
        if let Some(previous) = attempts.get(1) {
            observed.previous = Some(self.ctx.runtime.container_status(&previous.id).await?);
        }
        Ok(observed)
    }

    /// Restarts an exited container once its back-off has passed: none before the
    /// first restart, then 10 s doubling up to 5 minutes, as upstream's.
    async fn restart(&mut self, container: &Container, observed: &mut Observed, state: &mut PodState) {
        let Some(exited) = observed.exited().cloned() else { return };
        let restarts = observed.restart_count();
        let delay = if restarts == 0 {
            Duration::ZERO
        } else {
            INITIAL_BACKOFF.saturating_mul(1 << (restarts - 1).min(16)).min(MAX_BACKOFF)
        };
        let finished = Timestamp::from_nanosecond(i128::from(exited.finished_at)).unwrap_or(Timestamp::UNIX_EPOCH);
        let until = finished + jiff::SignedDuration::try_from(delay).unwrap_or_default();
        if Timestamp::now() < until {
            let identity = PodRef::of(self.pod);
            let message = format!(
                "back-off {}s restarting failed container={} pod={}_{}({})",
                delay.as_secs(),
                container.name,
                identity.name,
                identity.namespace,
                identity.uid
            );
            observed.waiting = Some(Waiting::new("CrashLoopBackOff", message));
            let note = format!(
                "Back-off restarting failed container {} in pod {}_{}({})",
                container.name, identity.name, identity.namespace, identity.uid
            );
            self.ctx.events.warning(&self.field(container), "BackOff", note).await;
            return;
        }
        let previous = observed.current.take();
        self.start(container, restarts + 1, observed, state).await;
        if observed.current.is_some() {
            observed.previous = previous;
            // Keep the attempt before (for `logs --previous`), remove older ones.
            for old in self.view.attempts(self.sandbox_id, &container.name).iter().skip(1) {
                if let Err(e) = self.ctx.runtime.remove_container(&old.id).await {
                    tracing::debug!(error = %e, container = %old.id, "removing an old attempt");
                }
            }
        } else {
            observed.current = previous;
        }
    }

    /// Runs the probes of a running container and records their verdicts; a
    /// container that failed its liveness or startup probe is killed and observed
    /// again. Probes of a container that is not running are stopped.
    async fn probe(&self, container: &Container, observed: &mut Observed, pod_ip: Option<&str>) -> Result<(), Error> {
        let Some(current) = observed.current.as_ref().filter(|_| observed.running()) else {
            self.ctx.prober.stop(PodRef::of(self.pod).uid, &container.name);
            return Ok(());
        };
        let target = Target { pod: self.pod, container, status: current, pod_ip, reference: self.field(container) };
        let verdicts = self.ctx.prober.watch(target);
        match verdicts.failed {
            Some(kind) => {
                let id = current.id.clone();
                self.kill_unhealthy(container, &id, kind).await;
                *observed = self.observe(container).await?;
            }
            None => observed.probes = verdicts,
        }
        Ok(())
    }

    /// Kills a container whose liveness or startup probe failed; the restart policy
    /// then decides whether it runs again.
    async fn kill_unhealthy(&self, container: &Container, id: &str, kind: Kind) {
        let probe = match kind {
            Kind::Startup => container.startup_probe.as_ref(),
            _ => container.liveness_probe.as_ref(),
        };
        let grace = probe
            .and_then(|p| p.termination_grace_period_seconds)
            .or_else(|| self.pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        let which = if kind == Kind::Startup { "startup" } else { "liveness" };
        let note = format!("Container {} failed {which} probe, will be restarted", container.name);
        self.ctx.events.normal(&self.field(container), "Killing", note).await;
        if let Err(e) = self.ctx.runtime.stop_container(id, grace).await {
            tracing::warn!(error = %e, container = id, "killing a container that failed its {which} probe");
        }
    }

    fn field(&self, container: &Container) -> ObjectReference {
        let list = list_of(self.pod, &container.name);
        reference(self.pod, Some(format!("spec.{list}{{{}}}", container.name)))
    }

    /// Creates and starts attempt `attempt` of a container; on failure records why in
    /// `observed.waiting`.
    async fn start(&mut self, container: &Container, attempt: u32, observed: &mut Observed, state: &mut PodState) {
        self.start_in(container, attempt, observed, state, None).await;
    }

    /// As [`Runner::start`], the container joining the PID namespace of the container
    /// `pid_target` (a runtime id) when given.
    async fn start_in(
        &mut self,
        container: &Container,
        attempt: u32,
        observed: &mut Observed,
        state: &mut PodState,
        pid_target: Option<String>,
    ) {
        match self.try_start(container, attempt, state, pid_target).await {
            Ok(status) => {
                observed.current = Some(status);
                observed.waiting = None;
            }
            Err(waiting) => {
                let note = waiting.message.clone().unwrap_or_else(|| waiting.reason.clone());
                let reason = if waiting.reason == "ImagePullBackOff" { "BackOff" } else { "Failed" };
                self.ctx.events.warning(&self.field(container), reason, note).await;
                observed.waiting = Some(waiting);
            }
        }
    }

    async fn try_start(
        &mut self,
        container: &Container,
        attempt: u32,
        state: &mut PodState,
        pid_target: Option<String>,
    ) -> Result<cri::ContainerStatus, Waiting> {
        let image = container.image.clone().unwrap_or_default();
        let ctx = self.ctx;
        let field = self.field(container);
        let present = ctx.runtime.image_id(&image).await.map_err(|e| Waiting::new("ErrImagePull", e.to_string()))?;
        let policy = container.image_pull_policy.as_deref().unwrap_or("IfNotPresent");
        match (present, policy) {
            (Some(_), "Always") | (None, _) => {
                if policy == "Never" {
                    let message = format!("Container image \"{image}\" is not present with pull policy of Never");
                    return Err(Waiting::new("ErrImageNeverPull", message));
                }
                if let Some(previous) = state.failed_pulls.get(&image) {
                    // One attempt per pass; the pass after a failure reports the back-off.
                    let message = format!("Back-off pulling image \"{image}\": {previous}");
                    state.failed_pulls.remove(&image);
                    return Err(Waiting::new("ImagePullBackOff", message));
                }
                ctx.events.normal(&field, "Pulling", format!("Pulling image \"{image}\"")).await;
                if let Err(e) = ctx.runtime.pull_image(&image, self.sandbox_config.clone()).await {
                    let message = format!("Failed to pull image \"{image}\": {e}");
                    state.failed_pulls.insert(image.clone(), e.to_string());
                    return Err(Waiting::new("ErrImagePull", message));
                }
                ctx.events.normal(&field, "Pulled", format!("Successfully pulled image \"{image}\"")).await;
            }
            (Some(_), _) => {
                let note = format!("Container image \"{image}\" already present on machine");
                ctx.events.normal(&field, "Pulled", note).await;
            }
        }
        let mut sources = Sources::new(ctx.client.clone(), PodRef::of(self.pod).namespace);
        let envs = environment::resolve(self.pod, container, self.addresses, &mut sources)
            .await
            .map_err(|e| Waiting::new("CreateContainerConfigError", e.0))?;
        let mounts = match &state.volumes {
            Some((_, prepared)) => {
                prepared.mounts(container).map_err(|e| Waiting::new("CreateContainerConfigError", e.0))?
            }
            None => Vec::new(),
        };
        let config = spec::container_config(self.pod, container, attempt, Resolved { envs, mounts }, pid_target);
        let id = ctx
            .runtime
            .create_container(self.sandbox_id, config, self.sandbox_config.clone())
            .await
            .map_err(|e| Waiting::new("CreateContainerError", e.to_string()))?;
        ctx.events.normal(&field, "Created", format!("Created container: {}", container.name)).await;
        ctx.runtime.start_container(&id).await.map_err(|e| Waiting::new("RunContainerError", e.to_string()))?;
        ctx.events.normal(&field, "Started", format!("Started container {}", container.name)).await;
        ctx.runtime.container_status(&id).await.map_err(|e| Waiting::new("RunContainerError", e.to_string()))
    }
}

/// How far a pass got: what the pod's phase and conditions are made of besides its
/// containers.
#[derive(Clone, Copy)]
struct Progress {
    sandbox_ready: bool,
    init_done: bool,
    init_failed: bool,
    sandbox_created: Option<i64>,
}

async fn write_status(
    ctx: &Context,
    pod: &Pod,
    state: &mut PodState,
    progress: Progress,
    init: &[Observed],
    containers: &[Observed],
    pod_ips: &[String],
) -> Result<(), Error> {
    let spec = pod.spec.clone().unwrap_or_default();
    let now = now();
    // A finished pod stays finished, whatever its containers look like now.
    let previous = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let phase = match previous {
        Some(done @ ("Succeeded" | "Failed")) => done,
        _ => status::phase(pod, progress.init_done, progress.init_failed, containers),
    };
    let conditions = status::conditions(pod, &now, progress.sandbox_ready, progress.init_done, init, containers);
    let container_statuses: Vec<Value> = spec
        .containers
        .iter()
        .zip(containers)
        .map(|(c, o)| status::container_status(c, o, &ctx.runtime_name))
        .collect();
    let mut body = json!({
        "phase": phase,
        "conditions": conditions,
        "containerStatuses": container_statuses,
        "hostIP": ctx.node_ip,
        "hostIPs": [{"ip": ctx.node_ip}],
    });
    if !init.is_empty() {
        let init_statuses: Vec<Value> = spec
            .init_containers
            .iter()
            .flatten()
            .zip(init)
            .map(|(c, o)| {
                let mut entry = status::container_status(c, o, &ctx.runtime_name);
                if !is_sidecar(c) {
                    // An init container is ready once it has completed, as upstream's.
                    entry["ready"] = json!(o.exited().is_some_and(|e| e.exit_code == 0) && o.waiting.is_none());
                }
                entry
            })
            .collect();
        body["initContainerStatuses"] = json!(init_statuses);
    }
    if let Some(ip) = pod_ips.first() {
        body["podIP"] = json!(ip);
        body["podIPs"] = json!(pod_ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>());
    }
    let started = pod.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| json!(t));
    let started = started.or_else(|| {
        progress
            .sandbox_created
            .and_then(|n| Timestamp::from_nanosecond(i128::from(n)).ok())
            .map(|t| json!(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
    });
    if let Some(started) = started {
        body["startTime"] = started;
    }
    patch_status(ctx, pod, &mut state.last_status, body).await
}

/// Stops what still runs of a pod, each container given `grace_seconds`.
async fn stop_running(ctx: &Context, pod: &Pod, view: &RuntimeView, grace_seconds: i64) {
    let spec = pod.spec.clone().unwrap_or_default();
    let sidecars: Vec<&str> =
        spec.init_containers.iter().flatten().filter(|c| is_sidecar(c)).map(|c| c.name.as_str()).collect();
    let name_of = |c: &cri::Container| c.labels.get(labels::CONTAINER_NAME).cloned().unwrap_or_default();
    let running: Vec<&cri::Container> =
        view.containers.iter().filter(|c| c.state == cri::ContainerState::ContainerRunning as i32).collect();
    let stop = |c: &cri::Container, list: &'static str| {
        let name = name_of(c);
        let id = c.id.clone();
        async move {
            if grace_seconds > 0 {
                let field =
                    ObjectReference { field_path: Some(format!("spec.{list}{{{name}}}")), ..reference(pod, None) };
                ctx.events.normal(&field, "Killing", format!("Stopping container {name}")).await;
            }
            if let Err(e) = ctx.runtime.stop_container(&id, grace_seconds).await {
                tracing::warn!(error = %e, container = %id, "stopping a container");
            }
        }
    };
    // The pod's containers (and a running init container) first, all at once; then
    // the sidecars, last started first, as upstream's kubelet stops them.
    let (sidecar_containers, others): (Vec<&cri::Container>, Vec<&cri::Container>) =
        running.into_iter().partition(|c| sidecars.contains(&name_of(c).as_str()));
    futures::future::join_all(others.into_iter().map(|c| stop(c, list_of(pod, &name_of(c))))).await;
    for name in sidecars.iter().rev() {
        for c in sidecar_containers.iter().filter(|c| name_of(c) == *name) {
            stop(c, "initContainers").await;
        }
    }
}

/// Stops a deleted pod within its grace period, removes what the runtime and the node
/// hold of it, then deletes its API object for good.
pub async fn terminate(ctx: &Context, pod: &Pod, view: RuntimeView) -> Result<(), Error> {
    let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    let identity = PodRef::of(pod);
    ctx.prober.retain_pods(|uid| uid != identity.uid);
    stop_running(ctx, pod, &view, grace).await;
    remove_all(ctx, identity.uid, &view).await?;
    let log_dir = spec::log_directory(&ctx.layout, &identity);
    remove_dir(&log_dir);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), identity.namespace);
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions { uid: Some(identity.uid.to_owned()), resource_version: None }),
        ..Default::default()
    };
    match pods.delete(identity.name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes what runs for a pod the API no longer has (deleted while this kubelet
/// was away, or force-deleted).
pub async fn tear_down(ctx: &Context, uid: &str, view: RuntimeView) -> Result<(), Error> {
    for container in view.containers.iter().filter(|c| c.state == cri::ContainerState::ContainerRunning as i32) {
        ctx.runtime.stop_container(&container.id, 0).await?;
    }
    remove_all(ctx, uid, &view).await?;
    if let Some(sandbox) = view.sandboxes.first()
        && let Some(meta) = &sandbox.metadata
    {
        remove_dir(&spec::log_directory(&ctx.layout, &PodRef { namespace: &meta.namespace, name: &meta.name, uid }));
    }
    Ok(())
}

async fn remove_all(ctx: &Context, uid: &str, view: &RuntimeView) -> Result<(), Error> {
    for sandbox in &view.sandboxes {
        ctx.runtime.stop_sandbox(&sandbox.id).await?;
        ctx.runtime.remove_sandbox(&sandbox.id).await?;
    }
    let pod_dir = ctx.root_dir.join("pods").join(uid);
    crate::mounts::unmount_below(&pod_dir);
    remove_dir(&pod_dir);
    let identity = PodRef { namespace: "", name: "", uid };
    cgroups::remove(&spec::cgroup_parent(&ctx.layout, &identity));
    Ok(())
}

fn remove_dir(path: &Path) {
    if let Err(e) = std::fs::remove_dir_all(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, path = %path.display(), "removing a pod's directory");
    }
}
