//! A pod's status as the kubelet reports it: each container's state from the runtime,
//! the pod's phase, and its conditions, with upstream's reasons.

use jiff::Timestamp;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

use super::probes::Verdicts;
use super::sync::is_sidecar;

/// Why a container is not running, when the kubelet knows better than the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: Option<String>,
}

impl Waiting {
    pub fn new(reason: &str, message: impl Into<Option<String>>) -> Waiting {
        Waiting { reason: reason.to_owned(), message: message.into() }
    }
}

/// One container as the runtime shows it: its newest attempt and the one before.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub current: Option<cri::ContainerStatus>,
    pub previous: Option<cri::ContainerStatus>,
    /// Set when the kubelet holds the container back (image, configuration, backoff).
    pub waiting: Option<Waiting>,
    /// What the container's probes say (all true for a container without probes).
    pub probes: Verdicts,
}

impl Observed {
    pub fn running(&self) -> bool {
        self.current.as_ref().is_some_and(|s| s.state == cri::ContainerState::ContainerRunning as i32)
    }

    pub fn exited(&self) -> Option<&cri::ContainerStatus> {
        self.current.as_ref().filter(|s| s.state == cri::ContainerState::ContainerExited as i32)
    }

    /// Running, not held back, and ready as its probes say.
    pub fn ready(&self) -> bool {
        self.running() && self.waiting.is_none() && self.probes.ready
    }

    pub fn restart_count(&self) -> u32 {
        self.current.as_ref().and_then(|s| s.metadata.as_ref()).map(|m| m.attempt).unwrap_or(0)
    }
}

fn time(nanos: i64) -> Option<String> {
    if nanos <= 0 {
        return None;
    }
    Timestamp::from_nanosecond(i128::from(nanos)).ok().map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn terminated(status: &cri::ContainerStatus, runtime: &str) -> Value {
    let reason = if !status.reason.is_empty() {
        status.reason.clone()
    } else if status.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    let mut state = json!({
        "exitCode": status.exit_code,
        "reason": reason,
        "startedAt": time(status.started_at),
        "finishedAt": time(status.finished_at),
        "containerID": format!("{runtime}://{}", status.id),
    });
    if !status.message.is_empty() {
        state["message"] = json!(status.message);
    }
    state
}

/// A container's entry in `containerStatuses`.
pub fn container_status(container: &Container, observed: &Observed, runtime: &str) -> Value {
    let image = container.image.clone().unwrap_or_default();
    let mut entry = json!({
        "name": container.name,
        "image": image,
        "imageID": "",
        "ready": false,
        "restartCount": observed.restart_count(),
        "started": false,
    });
    let state = match (&observed.current, &observed.waiting) {
        (_, Some(waiting)) => {
            let mut w = json!({"reason": waiting.reason});
            if let Some(message) = &waiting.message {
                w["message"] = json!(message);
            }
            json!({"waiting": w})
        }
        (Some(current), None) if current.state == cri::ContainerState::ContainerRunning as i32 => {
            entry["started"] = json!(observed.probes.started);
            entry["ready"] = json!(observed.probes.ready);
            json!({"running": {"startedAt": time(current.started_at)}})
        }
        (Some(current), None) if current.state == cri::ContainerState::ContainerExited as i32 => {
            json!({"terminated": terminated(current, runtime)})
        }
        _ => json!({"waiting": {"reason": "ContainerCreating"}}),
    };
    if let Some(current) = &observed.current {
        entry["containerID"] = json!(format!("{runtime}://{}", current.id));
        entry["imageID"] = json!(current.image_ref);
    }
    entry["state"] = state;
    let last = match &observed.previous {
        Some(previous) if previous.state == cri::ContainerState::ContainerExited as i32 => {
            json!({"terminated": terminated(previous, runtime)})
        }
        _ => json!({}),
    };
    // A container the kubelet holds back after it ran shows its last run.
    let last = match (&observed.waiting, observed.exited()) {
        (Some(_), Some(exited)) => json!({"terminated": terminated(exited, runtime)}),
        _ => last,
    };
    entry["lastState"] = last;
    entry
}

/// The pod's phase from its containers and restart policy, as upstream's `getPhase`.
pub fn phase(pod: &Pod, init_done: bool, init_failed: bool, containers: &[Observed]) -> &'static str {
    if init_failed {
        return "Failed";
    }
    if !init_done {
        return "Pending";
    }
    let policy = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always");
    let (mut running, mut waiting, mut succeeded, mut failed) = (0, 0, 0, 0);
    for observed in containers {
        if observed.running() {
            running += 1;
        } else if let Some(exited) = observed.exited() {
            if observed.waiting.is_some() && policy != "Never" {
                // Held back before a restart: it will run again.
                running += 1;
            } else if exited.exit_code == 0 {
                succeeded += 1;
            } else {
                failed += 1;
            }
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if policy == "Always" {
        // Everything exited but will be restarted.
        return "Running";
    }
    if failed > 0 && policy == "Never" {
        return "Failed";
    }
    if failed > 0 {
        // OnFailure restarts the failed ones.
        return "Running";
    }
    let _ = succeeded;
    "Succeeded"
}

/// The pod's conditions: what the kubelet owns, with transition times kept from the
/// previous status while a condition's value stands; others (PodScheduled,
/// DisruptionTarget, readiness gates' types) are kept as they are.
pub fn conditions(
    pod: &Pod,
    now: &str,
    sandbox_ready: bool,
    init_done: bool,
    init: &[Observed],
    containers: &[Observed],
) -> Vec<Value> {
    let previous = pod.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    // Sidecars (restartable init containers) count for readiness like containers.
    let spec = pod.spec.clone().unwrap_or_default();
    let sidecars = spec.init_containers.iter().flatten().zip(init).filter(|(c, _)| is_sidecar(c));
    let counted: Vec<(&str, &Observed)> = sidecars
        .chain(spec.containers.iter().zip(containers))
        .map(|(c, observed)| (c.name.as_str(), observed))
        .collect();
    let all_ready = init_done && !containers.is_empty() && counted.iter().all(|(_, c)| c.ready());
    let not_ready: Vec<&str> = counted.iter().filter(|(_, c)| !c.ready()).map(|(name, _)| *name).collect();
    let unready_message = format!("containers with unready status: [{}]", not_ready.join(" "));
    let ours = [
        ("PodReadyToStartContainers", sandbox_ready, None),
        (
            "Initialized",
            init_done,
            (!init_done).then(|| ("ContainersNotInitialized", "containers with incomplete status".to_owned())),
        ),
        ("ContainersReady", all_ready, (!all_ready).then(|| ("ContainersNotReady", unready_message.clone()))),
        ("Ready", all_ready, (!all_ready).then(|| ("ContainersNotReady", unready_message.clone()))),
    ];
    let mut out: Vec<Value> = Vec::new();
    for (kind, value, why) in ours.iter().cloned() {
        let status = if value { "True" } else { "False" };
        let since = previous
            .iter()
            .find(|c| c.type_ == kind && c.status == status)
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| json!(t))
            .unwrap_or_else(|| json!(now));
        let mut condition = json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
        if let Some((reason, message)) = why {
            condition["reason"] = json!(reason);
            condition["message"] = json!(message);
        }
        out.push(condition);
    }
    for kept in previous.iter().filter(|c| !ours.iter().any(|(kind, _, _)| *kind == c.type_)) {
        out.push(serde_json::to_value(kept).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(policy: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"restartPolicy": policy, "containers": [{"name": "a"}]},
        }))
        .unwrap()
    }

    fn exited(code: i32) -> Observed {
        Observed {
            current: Some(cri::ContainerStatus {
                state: cri::ContainerState::ContainerExited as i32,
                exit_code: code,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn phases_follow_the_restart_policy() {
        assert_eq!(phase(&pod("Never"), true, false, &[exited(0)]), "Succeeded");
        assert_eq!(phase(&pod("Never"), true, false, &[exited(1)]), "Failed");
        assert_eq!(phase(&pod("OnFailure"), true, false, &[exited(1)]), "Running");
        assert_eq!(phase(&pod("Always"), true, false, &[exited(0)]), "Running");
        assert_eq!(phase(&pod("Always"), true, false, &[Observed::default()]), "Pending");
        assert_eq!(phase(&pod("Always"), false, false, &[Observed::default()]), "Pending");
        assert_eq!(phase(&pod("Never"), false, true, &[Observed::default()]), "Failed");
    }

    #[test]
    fn a_held_back_container_shows_its_reason_and_last_run() {
        let container: Container = serde_json::from_value(json!({"name": "a", "image": "busybox:1"})).unwrap();
        let mut observed = exited(2);
        observed.waiting = Some(Waiting::new("CrashLoopBackOff", "back-off 10s".to_owned()));
        let status = container_status(&container, &observed, "containerd");
        assert_eq!(status["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(status["lastState"]["terminated"]["exitCode"], 2);
        assert_eq!(status["lastState"]["terminated"]["reason"], "Error");
        assert_eq!(status["ready"], false);
    }

    #[test]
    fn probes_decide_started_and_ready() {
        let container: Container = serde_json::from_value(json!({"name": "a", "image": "busybox:1"})).unwrap();
        let mut observed = Observed {
            current: Some(cri::ContainerStatus {
                state: cri::ContainerState::ContainerRunning as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = container_status(&container, &observed, "containerd");
        assert_eq!((status["started"].clone(), status["ready"].clone()), (json!(true), json!(true)));
        observed.probes = Verdicts { started: false, ready: false, failed: None };
        let status = container_status(&container, &observed, "containerd");
        assert_eq!((status["started"].clone(), status["ready"].clone()), (json!(false), json!(false)));
        let pod = pod("Always");
        let conditions = conditions(&pod, "2026-11-24T00:00:00Z", true, true, &[], &[observed]);
        let ready = conditions.iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["message"], "containers with unready status: [a]");
    }
}
