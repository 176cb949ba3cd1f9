//! A DaemonSet's status: per node that should run its pod, whether it has one, and
//! whether the first there (bound, then oldest) is ready, available and of the current
//! revision; pods on nodes that should not run them counted as misscheduled. `kubectl rollout status
//! daemonset/x` and `kubectl get ds` read these.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::plan::{self, View};
use crate::{Error, pods};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub desired: i32,
    pub current: i32,
    pub misscheduled: i32,
    pub ready: i32,
    pub available: i32,
    pub updated: i32,
}

impl Status {
    pub fn unavailable(&self) -> i32 {
        self.desired - self.available
    }
}

/// Counts the set's pods over the nodes there are, as upstream does.
pub fn count(view: &View<'_>) -> Status {
    let mut status = Status::default();
    let plus = |n: &mut i32| *n += 1;
    for (node, placement) in &view.placements {
        let mut on_node: Vec<&Pod> = view.pods.get(node).into_iter().flatten().copied().collect();
        if !placement.should_run {
            if !on_node.is_empty() {
                plus(&mut status.misscheduled);
            }
            continue;
        }
        plus(&mut status.desired);
        if on_node.is_empty() {
            continue;
        }
        plus(&mut status.current);
        on_node.sort_by(plan::by_age);
        let oldest = on_node[0];
        if pods::is_ready(oldest) {
            plus(&mut status.ready);
            if pods::is_available(oldest, view.min_ready, view.now) {
                plus(&mut status.available);
            }
        }
        if super::nodes::is_updated(oldest, view.hash, view.generation) {
            plus(&mut status.updated);
        }
    }
    status
}

/// Writes `status` unless the set already reports it.
pub async fn write(set: &DaemonSet, status: &Status, client: &Client) -> Result<(), Error> {
    let old = set.status.clone().unwrap_or_default();
    let unchanged = old.observed_generation == set.metadata.generation
        && old.desired_number_scheduled == status.desired
        && old.current_number_scheduled == status.current
        && old.number_misscheduled == status.misscheduled
        && old.number_ready == status.ready
        && old.number_available.unwrap_or(0) == status.available
        && old.number_unavailable.unwrap_or(0) == status.unavailable()
        && old.updated_number_scheduled.unwrap_or(0) == status.updated;
    if unchanged {
        return Ok(());
    }
    let patch = json!({"status": {
        "observedGeneration": set.metadata.generation,
        "desiredNumberScheduled": status.desired,
        "currentNumberScheduled": status.current,
        "numberMisscheduled": status.misscheduled,
        "numberReady": status.ready,
        "numberAvailable": status.available,
        "numberUnavailable": status.unavailable(),
        "updatedNumberScheduled": status.updated,
    }});
    let api = Api::<DaemonSet>::namespaced(client.clone(), &set.namespace().unwrap_or_default());
    match api.patch_status(&set.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::nodes::{HASH_LABEL, Placement};
    use jiff::Timestamp;
    use std::collections::BTreeMap;

    fn pod(hash: &str, ready: bool, age: u32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": format!("p{age}"), "labels": {HASH_LABEL: hash},
                         "creationTimestamp": format!("2026-01-01T00:00:{age:02}Z")},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .unwrap()
    }

    #[test]
    fn counts_the_oldest_pod_of_each_node() {
        let on = Placement { should_run: true, should_continue: true };
        let (old_ready, new_unready, new_ready, stray) =
            (pod("old", true, 1), pod("new", false, 2), pod("new", true, 3), pod("new", true, 4));
        let view = View {
            placements: BTreeMap::from([
                ("n1".into(), on),
                ("n2".into(), on),
                ("n3".into(), on),
                ("n4".into(), Placement::default()),
            ]),
            pods: BTreeMap::from([
                ("n1".into(), vec![&new_unready, &old_ready]),
                ("n2".into(), vec![&new_ready]),
                ("n4".into(), vec![&stray]),
                ("gone".into(), vec![&stray]),
            ]),
            hash: "new",
            generation: None,
            min_ready: 0,
            now: Timestamp::now(),
        };
        let status = count(&view);
        assert_eq!(status, Status { desired: 3, current: 2, misscheduled: 1, ready: 2, available: 2, updated: 1 });
        assert_eq!(status.unavailable(), 1);
    }
}
