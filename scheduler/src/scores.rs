//! The scores of kube-scheduler's default profile (0 to 100 each, then weighted): the
//! feasible node with the highest total takes the pod.

use crate::filters;
use crate::resources::{NodeInfo, PodInfo, Resources};

pub const MAX_NODE_SCORE: i64 = 100;

/// Upstream's default weights.
const RESOURCES_FIT_WEIGHT: i64 = 1;
const BALANCED_ALLOCATION_WEIGHT: i64 = 1;
const NODE_AFFINITY_WEIGHT: i64 = 2;
const TAINT_TOLERATION_WEIGHT: i64 = 3;

/// The weighted total of each node, in `nodes`' order.
pub fn score(pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
    let affinity =
        normalize(nodes.iter().map(|n| filters::preferred_affinity_weight(&pod.pod, &n.node)).collect(), false);
    let taints =
        normalize(nodes.iter().map(|n| filters::intolerable_preferred_taints(&pod.pod, &n.node)).collect(), true);
    nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            least_allocated(pod, node) * RESOURCES_FIT_WEIGHT
                + balanced_allocation(pod, node) * BALANCED_ALLOCATION_WEIGHT
                + affinity[i] * NODE_AFFINITY_WEIGHT
                + taints[i] * TAINT_TOLERATION_WEIGHT
        })
        .collect()
}

/// Scales raw scores to 0..=100 by the largest; `reverse` makes fewer better.
pub fn normalize(scores: Vec<i64>, reverse: bool) -> Vec<i64> {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return scores.iter().map(|_| if reverse { MAX_NODE_SCORE } else { 0 }).collect();
    }
    scores
        .into_iter()
        .map(|s| {
            let s = MAX_NODE_SCORE * s / max;
            if reverse { MAX_NODE_SCORE - s } else { s }
        })
        .collect()
}

/// CPU and memory as `(requested, allocatable)` after the pod is added.
fn cpu_and_memory(requested: &Resources, pod: &Resources, allocatable: &Resources) -> [(i64, i64); 2] {
    [(requested.milli_cpu + pod.milli_cpu, allocatable.milli_cpu), (requested.memory + pod.memory, allocatable.memory)]
}

/// NodeResourcesFit's `LeastAllocated`: the free share of CPU and memory once the pod
/// is on the node, pods without requests counting the defaults.
pub fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let pairs = cpu_and_memory(&node.non_zero_requested, &pod.non_zero, &node.allocatable);
    let scores = pairs.iter().map(|&(requested, capacity)| {
        if capacity == 0 || requested > capacity { 0 } else { (capacity - requested) * MAX_NODE_SCORE / capacity }
    });
    scores.sum::<i64>() / i64::try_from(pairs.len()).unwrap_or(1)
}

/// NodeResourcesBalancedAllocation: nodes whose CPU and memory would be used in equal
/// shares score higher (100 × (1 − the standard deviation of the shares)).
pub fn balanced_allocation(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let pairs = cpu_and_memory(&node.requested, &pod.requests, &node.allocatable);
    let fractions: Vec<f64> = pairs
        .iter()
        .filter(|&&(_, capacity)| capacity != 0)
        .map(|&(requested, capacity)| (requested as f64 / capacity as f64).min(1.0))
        .collect();
    let deviation = match fractions.as_slice() {
        [a, b] => (a - b).abs() / 2.0,
        _ => 0.0,
    };
    ((1.0 - deviation) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::{Value, json};

    use super::*;

    fn node(name: &str, cpu: &str, memory: &str, extra: Value) -> NodeInfo {
        let mut node = json!({
            "metadata": {"name": name, "labels": {"zone": name}},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}},
        });
        node["spec"] = extra;
        NodeInfo::new(Arc::new(serde_json::from_value::<Node>(node).unwrap()))
    }

    fn pod(spec: Value) -> PodInfo {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap();
        PodInfo::new(Arc::new(pod))
    }

    fn requesting(cpu: &str, memory: &str) -> PodInfo {
        pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}))
    }

    #[test]
    fn least_allocated_prefers_free_nodes() {
        let p = requesting("1", "1Gi");
        let empty = node("a", "4", "4Gi", json!({}));
        // (4-1)/4 → 75 for both.
        assert_eq!(least_allocated(&p, &empty), 75);
        let mut busy = node("b", "4", "4Gi", json!({}));
        busy.add(requesting("2", "1Gi"));
        // cpu (4-3)/4 → 25, memory (4-2)/4 → 50.
        assert_eq!(least_allocated(&p, &busy), 37);
        // No requests count 100m and 200Mi.
        assert_eq!(
            least_allocated(&pod(json!({"containers": [{"name": "c"}]})), &node("c", "1", "1000Mi", json!({}))),
            85
        );
    }

    #[test]
    fn balanced_allocation_prefers_equal_shares() {
        let p = requesting("1", "1Gi");
        assert_eq!(balanced_allocation(&p, &node("a", "4", "4Gi", json!({}))), 100);
        // cpu 1/2, memory 1/4: deviation 0.125.
        assert_eq!(balanced_allocation(&p, &node("b", "2", "4Gi", json!({}))), 87);
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize(vec![0, 5, 10], false), [0, 50, 100]);
        assert_eq!(normalize(vec![0, 0], false), [0, 0]);
        assert_eq!(normalize(vec![0, 1, 2], true), [100, 50, 0]);
        assert_eq!(normalize(vec![0, 0], true), [100, 100]);
    }

    #[test]
    fn weights_add_up() {
        let p = pod(json!({
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}},
            ]}},
        }));
        let a = node("a", "4", "4Gi", json!({}));
        let b = node("b", "4", "4Gi", json!({"taints": [{"key": "k", "effect": "PreferNoSchedule"}]}));
        // a: 75 + 100 + 0 × 2 + 100 × 3; b: 75 + 100 + 100 × 2 + 0 × 3.
        assert_eq!(score(&p, &[&a, &b]), [475, 375]);
    }
}
