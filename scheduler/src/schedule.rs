//! One scheduling decision: filter every node, score the feasible ones, pick the best
//! (ties at random); or say why none fits, in kube-scheduler's words.

use std::collections::BTreeMap;

use rand::Rng;

use crate::filters::{self, Rejection};
use crate::resources::{NodeInfo, PodInfo};
use crate::scores;

pub const NO_NODES: &str = "no nodes available to schedule pods";
const PREEMPTION_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// Where a pod goes, or why it cannot go anywhere.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// The index of the chosen node.
    Node(usize),
    /// The `PodScheduled` condition's message (upstream's `FitError`).
    Unschedulable(String),
}

/// Decides where `pod` goes among `nodes`.
pub fn schedule(pod: &PodInfo, nodes: &[NodeInfo], rng: &mut impl Rng) -> Decision {
    if nodes.is_empty() {
        return Decision::Unschedulable(NO_NODES.into());
    }
    let mut feasible = Vec::new();
    let mut rejections = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        match filters::run(pod, node) {
            Ok(()) => feasible.push(i),
            Err(rejection) => rejections.push((i, rejection)),
        }
    }
    if feasible.is_empty() {
        let mut message = fit_error(nodes.len(), rejections.iter().map(|(_, r)| r), None);
        if let Some(preemption) = preemption(pod, nodes, &rejections) {
            message.push_str(&format!(" preemption: {preemption}"));
        }
        return Decision::Unschedulable(message);
    }
    let candidates: Vec<&NodeInfo> = feasible.iter().map(|&i| &nodes[i]).collect();
    let totals = scores::score(pod, &candidates);
    // The best score; among equals, each is picked with the same chance (reservoir sampling).
    let mut best = 0;
    let mut ties = 0u32;
    for (k, &total) in totals.iter().enumerate() {
        if total > totals[best] {
            best = k;
            ties = 1;
        } else if total == totals[best] {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = k;
            }
        }
    }
    Decision::Node(feasible[best])
}

/// `0/3 nodes are available: 1 node(s) had untolerated taint {...}, 2 Insufficient cpu.`:
/// how many nodes gave each reason, sorted as strings; nodes without a rejection of
/// their own count `absent`'s reason.
fn fit_error<'a>(all: usize, rejections: impl Iterator<Item = &'a Rejection>, absent: Option<&str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut explicit = 0;
    for rejection in rejections {
        explicit += 1;
        for reason in &rejection.reasons {
            *counts.entry(reason).or_default() += 1;
        }
    }
    if let Some(reason) = absent.filter(|_| explicit < all) {
        *counts.entry(reason).or_default() += all - explicit;
    }
    let mut reasons: Vec<String> = counts.iter().map(|(reason, n)| format!("{n} {reason}")).collect();
    reasons.sort();
    let mut message = format!("0/{all} nodes are available:");
    if !reasons.is_empty() {
        message.push_str(&format!(" {}.", reasons.join(", ")));
    }
    message
}

/// What upstream's default preemption says after a failed attempt: the pod is not
/// allowed to preempt, or no node would fit it with lower-priority pods removed.
///
/// `None` when removing lower-priority pods would make the pod fit somewhere: upstream
/// would then preempt them; this scheduler does not preempt, and says nothing more.
fn preemption(pod: &PodInfo, nodes: &[NodeInfo], rejections: &[(usize, Rejection)]) -> Option<String> {
    let spec = pod.pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Some("not eligible due to preemptionPolicy=Never.".into());
    }
    let mut statuses = Vec::new();
    for (i, _) in rejections.iter().filter(|(_, r)| !r.unresolvable) {
        let node = &nodes[*i];
        if !node.pods.iter().any(|p| p.priority < pod.priority) {
            statuses.push(Rejection { reasons: vec![NO_VICTIMS.into()], unresolvable: true });
            continue;
        }
        match filters::run(pod, &node.without(|p| p.priority < pod.priority)) {
            Ok(()) => return None,
            Err(rejection) => statuses.push(rejection),
        }
    }
    Some(fit_error(nodes.len(), statuses.iter(), Some(PREEMPTION_NOT_HELPFUL)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{Node, Pod};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::{Value, json};

    use super::*;

    fn node(name: &str, cpu: &str, spec: Value) -> NodeInfo {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": spec,
            "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"}},
        }))
        .unwrap();
        NodeInfo::new(Arc::new(node))
    }

    fn pod(cpu: &str, extra: Value) -> PodInfo {
        let mut spec = json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]});
        spec.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap();
        PodInfo::new(Arc::new(pod))
    }

    fn control_plane() -> NodeInfo {
        node("cp", "8", json!({"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}))
    }

    #[test]
    fn picks_the_emptiest_feasible_node() {
        let mut busy = node("busy", "4", json!({}));
        busy.add(pod("3", json!({})));
        let nodes = [control_plane(), busy, node("free", "4", json!({}))];
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(schedule(&pod("500m", json!({})), &nodes, &mut rng), Decision::Node(2));
    }

    #[test]
    fn ties_are_broken_at_random() {
        let nodes = [node("a", "4", json!({})), node("b", "4", json!({})), node("c", "4", json!({}))];
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = [0; 3];
        for _ in 0..300 {
            let Decision::Node(i) = schedule(&pod("1", json!({})), &nodes, &mut rng) else { panic!("fits") };
            seen[i] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }

    #[test]
    fn explains_like_kube_scheduler() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(schedule(&pod("1", json!({})), &[], &mut rng), Decision::Unschedulable(NO_NODES.into()));
        let nodes = [control_plane(), node("a", "1", json!({})), node("b", "1", json!({}))];
        assert_eq!(
            schedule(&pod("2", json!({})), &nodes, &mut rng),
            Decision::Unschedulable(
                "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
                 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
                    .into()
            )
        );
        // Room taken by pods of the same priority: preemption finds no victims.
        let mut full = node("a", "1", json!({}));
        full.add(pod("1", json!({})));
        assert_eq!(
            schedule(&pod("1", json!({})), &[control_plane(), full.clone()], &mut rng),
            Decision::Unschedulable(
                "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint \
                 {node-role.kubernetes.io/control-plane: }. preemption: 0/2 nodes are available: 1 No preemption \
                 victims found for incoming pod, 1 Preemption is not helpful for scheduling."
                    .into()
            )
        );
        assert_eq!(
            schedule(&pod("1", json!({"preemptionPolicy": "Never"})), std::slice::from_ref(&full), &mut rng),
            Decision::Unschedulable(
                "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
                    .into()
            )
        );
        // A lower-priority pod whose removal would make room: upstream preempts it.
        let important = pod("1", json!({"priority": 1000}));
        assert!(matches!(
            schedule(&important, std::slice::from_ref(&full), &mut rng),
            Decision::Unschedulable(m) if m == "0/1 nodes are available: 1 Insufficient cpu."
        ));
    }
}
