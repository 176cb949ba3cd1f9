//! The pod printer: READY, STATUS (upstream's reason logic over init containers,
//! containers, deletion), RESTARTS with the last restart's age, and the wide columns.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{AGE, Column, Description, NAME, Printer, age, arr, col, i, name, s};
use crate::registry::Resource;

const POD_STATUS: &str = "io.k8s.api.core.v1.PodStatus";
const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";

static COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", 0, Description::Text("The aggregate readiness state of this pod for accepting traffic.")),
    col("Status", "string", 0, Description::Text("The aggregate status of the containers in this pod.")),
    col("Restarts", "string", 0, Description::Text("The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.")),
    AGE,
    col("IP", "string", 1, Description::Field(POD_STATUS, "podIP")),
    col("Node", "string", 1, Description::Field(POD_SPEC, "nodeName")),
    col("Nominated Node", "string", 1, Description::Field(POD_STATUS, "nominatedNodeName")),
    col("Readiness Gates", "string", 1, Description::Field(POD_SPEC, "readinessGates")),
];

pub(super) fn printer(kind: &str, group: &str) -> Option<Printer> {
    (kind == "Pod" && group.is_empty()).then_some(Printer { columns: COLUMNS, cells })
}

/// Upstream marks rows of finished pods with a `Completed` condition.
pub(super) fn row_conditions(resource: &Resource, obj: &Value) -> Option<Value> {
    if resource.kind != "Pod" || !resource.group.is_empty() {
        return None;
    }
    let message = match s(obj, "/status/phase") {
        "Succeeded" => "The pod has completed successfully.",
        "Failed" => "The pod failed.",
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": "", "message": message}]))
}

fn restartable(init: Option<&Value>) -> bool {
    init.is_some_and(|c| s(c, "/restartPolicy") == "Always")
}

fn terminated_reason(t: &Value, prefix: &str) -> String {
    let reason = s(t, "/reason");
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = i(t, "/signal");
    if signal != 0 { format!("{prefix}Signal:{signal}") } else { format!("{prefix}ExitCode:{}", i(t, "/exitCode")) }
}

fn condition_true(pod: &Value, kind: &str) -> bool {
    arr(pod, "/status/conditions").iter().any(|c| s(c, "/type") == kind && s(c, "/status") == "True")
}

/// Tracks the latest `lastState.terminated.finishedAt`.
fn later(current: Option<Timestamp>, status: &Value) -> Option<Timestamp> {
    let finished = super::age::timestamp(status.pointer("/lastState/terminated/finishedAt"));
    match (current, finished) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let init_specs = arr(pod, "/spec/initContainers");
    let init_spec = |n: &str| init_specs.iter().find(|c| s(c, "/name") == n);
    let total = arr(pod, "/spec/containers").len() + init_specs.iter().filter(|c| restartable(Some(c))).count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;

    let phase = s(pod, "/status/phase");
    let mut reason = if s(pod, "/status/reason").is_empty() { phase.to_owned() } else { s(pod, "/status/reason").to_owned() };
    if arr(pod, "/status/conditions").iter().any(|c| s(c, "/type") == "PodScheduled" && s(c, "/reason") == "SchedulingGated") {
        reason = "SchedulingGated".into();
    }

    let init_statuses = arr(pod, "/status/initContainerStatuses");
    let mut initializing = false;
    for (idx, st) in init_statuses.iter().enumerate() {
        restarts += i(st, "/restartCount");
        last_restart = later(last_restart, st);
        let spec = init_spec(s(st, "/name"));
        if restartable(spec) {
            sidecar_restarts += i(st, "/restartCount");
            last_sidecar_restart = later(last_sidecar_restart, st);
        }
        let terminated = st.pointer("/state/terminated");
        let waiting_reason = s(st, "/state/waiting/reason");
        if terminated.is_some_and(|t| i(t, "/exitCode") == 0) {
            continue;
        }
        if restartable(spec) && st.get("started").and_then(Value::as_bool) == Some(true) {
            if st.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = terminated_reason(t, "Init:");
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{idx}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for st in arr(pod, "/status/containerStatuses").iter().rev() {
            restarts += i(st, "/restartCount");
            last_restart = later(last_restart, st);
            let waiting = s(st, "/state/waiting/reason");
            let terminated = st.pointer("/state/terminated");
            if !waiting.is_empty() {
                reason = waiting.to_owned();
            } else if let Some(t) = terminated {
                reason = terminated_reason(t, "");
            } else if st.get("ready").and_then(Value::as_bool) == Some(true) && st.pointer("/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") { "Running".into() } else { "NotReady".into() };
        }
    }

    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        if s(pod, "/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", super::age::human_duration(now.as_second() - t.as_second())),
        _ => restarts.to_string(),
    };

    let or_none = |v: &str| if v.is_empty() { "<none>".to_owned() } else { v.to_owned() };
    let ip = arr(pod, "/status/podIPs").first().map(|p| s(p, "/ip")).filter(|v| !v.is_empty()).unwrap_or(s(pod, "/status/podIP"));
    let gates = arr(pod, "/spec/readinessGates");
    let gates_cell = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let ok = gates
            .iter()
            .filter(|g| {
                let t = s(g, "/conditionType");
                arr(pod, "/status/conditions").iter().find(|c| s(c, "/type") == t).is_some_and(|c| s(c, "/status") == "True")
            })
            .count();
        format!("{ok}/{}", gates.len())
    };
    vec![
        name(pod).into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_cell.into(),
        age(pod, now),
        or_none(ip).into(),
        or_none(s(pod, "/spec/nodeName")).into(),
        or_none(s(pod, "/status/nominatedNodeName")).into(),
        gates_cell.into(),
    ]
}
