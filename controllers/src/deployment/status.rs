//! A Deployment's status: counts summed from its ReplicaSets, and the `Available`,
//! `Progressing` and `ReplicaFailure` conditions as upstream words them (kubectl's
//! `rollout status` reads exactly these).

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::replica_sets::{available_replicas, ready_replicas, spec_replicas, status_replicas};
use super::strategy;

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const NEW_SET_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_SET: &str = "FoundNewReplicaSet";
const NEW_SET_AVAILABLE: &str = "NewReplicaSetAvailable";
const SET_UPDATED: &str = "ReplicaSetUpdated";
const TIMED_OUT: &str = "ProgressDeadlineExceeded";
const PAUSED: &str = "DeploymentPaused";
const RESUMED: &str = "DeploymentResumed";

/// No deadline: `progressDeadlineSeconds` at its maximum.
fn deadline(d: &Deployment) -> Option<i64> {
    let seconds = d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(600);
    (seconds != i32::MAX).then_some(i64::from(seconds))
}

pub fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

pub fn new_condition(type_: &str, status: &str, reason: &str, message: String, now: Timestamp) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Puts `condition` in place; an unchanged status and reason leaves the old one be,
/// and an unchanged status keeps its transition time.
pub fn set_condition(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(current) = conditions.iter().find(|c| c.type_ == condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    conditions.retain(|c| c.type_ != condition.type_);
    conditions.push(condition);
}

fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
    }
}

/// The counts and the `Available` condition, from the ReplicaSets.
pub fn calculate(d: &Deployment, sets: &[ReplicaSet], new: Option<usize>, now: Timestamp) -> DeploymentStatus {
    let available: i32 = sets.iter().map(available_replicas).sum();
    let total: i32 = sets.iter().map(spec_replicas).sum();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(sets.iter().map(status_replicas).sum()),
        updated_replicas: Some(new.map_or(0, |i| status_replicas(&sets[i]))),
        ready_replicas: Some(sets.iter().map(ready_replicas).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: d.status.as_ref().and_then(|s| s.collision_count),
        conditions: d.status.as_ref().and_then(|s| s.conditions.clone()),
        terminating_replicas: None,
    };
    let replicas = strategy::replicas(d);
    if available >= replicas - strategy::max_unavailable(d) {
        let message = "Deployment has minimum availability.".to_owned();
        set_condition(&mut status, new_condition(AVAILABLE, "True", "MinimumReplicasAvailable", message, now));
    } else {
        let message = "Deployment does not have minimum availability.".to_owned();
        set_condition(&mut status, new_condition(AVAILABLE, "False", "MinimumReplicasUnavailable", message, now));
    }
    status
}

/// Every new replica updated, present and available, for the current generation.
fn complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let replicas = strategy::replicas(d);
    status.updated_replicas == Some(replicas)
        && status.replicas == Some(replicas)
        && status.available_replicas == Some(replicas)
        && status.observed_generation >= d.metadata.generation
}

/// Whether the rollout moved since the last status.
fn progressed(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

fn timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = deadline(d) else { return false };
    let Some(progressing) = condition(status, PROGRESSING) else { return false };
    match progressing.reason.as_deref() {
        Some(NEW_SET_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => progressing.last_update_time.as_ref().is_some_and(|t| t.0.as_second() + deadline < now.as_second()),
    }
}

/// The status a rolling or recreating Deployment reports: [`calculate`] plus the
/// `Progressing` condition (complete, progressing, or past its deadline) and the new
/// ReplicaSet's `ReplicaFailure`, if any.
pub fn rollout(d: &Deployment, sets: &[ReplicaSet], new: Option<usize>, now: Timestamp) -> DeploymentStatus {
    let mut status = calculate(d, sets, new, now);
    if deadline(d).is_none() {
        remove_condition(&mut status, PROGRESSING);
    }
    let current = condition(&status, PROGRESSING).cloned();
    let done = status.replicas == status.updated_replicas
        && current.as_ref().is_some_and(|c| c.reason.as_deref() == Some(NEW_SET_AVAILABLE));
    let name = new.map(|i| sets[i].name_any());
    if deadline(d).is_some() && !done {
        if complete(d, &status) {
            let message = match &name {
                Some(rs) => format!("ReplicaSet {rs:?} has successfully progressed."),
                None => format!("Deployment {:?} has successfully progressed.", d.name_any()),
            };
            set_condition(&mut status, new_condition(PROGRESSING, "True", NEW_SET_AVAILABLE, message, now));
        } else if progressed(d, &status) {
            let message = match &name {
                Some(rs) => format!("ReplicaSet {rs:?} is progressing."),
                None => format!("Deployment {:?} is progressing.", d.name_any()),
            };
            let mut fresh = new_condition(PROGRESSING, "True", SET_UPDATED, message, now);
            if let Some(c) = current.as_ref().filter(|c| c.status == "True") {
                fresh.last_transition_time = c.last_transition_time.clone();
            }
            // Replaced outright, so that its update time moves.
            remove_condition(&mut status, PROGRESSING);
            set_condition(&mut status, fresh);
        } else if timed_out(d, &status, now) {
            let message = match &name {
                Some(rs) => format!("ReplicaSet {rs:?} has timed out progressing."),
                None => format!("Deployment {:?} has timed out progressing.", d.name_any()),
            };
            set_condition(&mut status, new_condition(PROGRESSING, "False", TIMED_OUT, message, now));
        }
    }
    let failure = new
        .and_then(|i| sets[i].status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == REPLICA_FAILURE && c.status == "True").cloned());
    match failure {
        Some(f) => {
            let message = f.message.unwrap_or_default();
            let reason = f.reason.unwrap_or_default();
            set_condition(&mut status, new_condition(REPLICA_FAILURE, "True", &reason, message, now));
        }
        None => remove_condition(&mut status, REPLICA_FAILURE),
    }
    status
}

/// Seconds until a rollout still in progress reaches its deadline (to look again then).
pub fn seconds_to_deadline(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> Option<i64> {
    let deadline = deadline(d)?;
    if complete(d, status) {
        return None;
    }
    let progressing = condition(status, PROGRESSING)?;
    if progressing.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let since = progressing.last_update_time.as_ref()?.0.as_second();
    Some((since + deadline - now.as_second()).max(0) + 1)
}

/// The `Progressing` condition for a pause or resume, if it changes.
pub fn pause_condition(d: &Deployment, now: Timestamp) -> Option<DeploymentCondition> {
    deadline(d)?;
    let status = d.status.clone().unwrap_or_default();
    let current = condition(&status, PROGRESSING);
    if current.is_some_and(|c| c.reason.as_deref() == Some(TIMED_OUT)) {
        return None;
    }
    let paused_noted = current.is_some_and(|c| c.reason.as_deref() == Some(PAUSED));
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    if paused && !paused_noted {
        Some(new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused".into(), now))
    } else if !paused && paused_noted {
        Some(new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed".into(), now))
    } else {
        None
    }
}

/// Whether `status` says anything the stored one does not.
pub fn changed(d: &Deployment, status: &DeploymentStatus) -> bool {
    d.status.as_ref() != Some(status)
}
