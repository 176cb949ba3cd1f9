//! The filters of kube-scheduler's default profile, in its order: whether a pod may go
//! on a node. A node that fails one is not tried against the rest, and the reasons it
//! gives are what `0/3 nodes are available: ...` counts.

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use waggle_controllers::placement;
pub use waggle_controllers::placement::{term_matches, tolerates};

use crate::resources::{NodeInfo, PodInfo};

/// Why a node cannot take a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reasons: Vec<String>,
    /// Removing pods from the node would not help (upstream's
    /// `UnschedulableAndUnresolvable`), so preemption does not try it.
    pub unresolvable: bool,
}

impl Rejection {
    fn unresolvable(reason: impl Into<String>) -> Rejection {
        Rejection { reasons: vec![reason.into()], unresolvable: true }
    }
}

pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";
pub const ERR_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const ERR_NODE_NAME: &str = "node(s) didn't match the requested node name";
pub const ERR_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const ERR_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";

/// Every filter, in order; the first rejection wins.
pub fn run(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    node_unschedulable(&pod.pod, &node.node)?;
    node_name(&pod.pod, &node.node)?;
    taint_toleration(&pod.pod, &node.node)?;
    node_affinity(&pod.pod, &node.node)?;
    node_ports(pod, node)?;
    node_resources_fit(pod, node)
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default()
}

fn taints(node: &Node) -> &[Taint] {
    placement::taints(node)
}

/// A cordoned node (`spec.unschedulable`) takes only pods that tolerate
/// `node.kubernetes.io/unschedulable:NoSchedule`.
pub fn node_unschedulable(pod: &Pod, node: &Node) -> Result<(), Rejection> {
    if !node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
        return Ok(());
    }
    let taint = Taint { key: UNSCHEDULABLE_TAINT.into(), effect: "NoSchedule".into(), ..Taint::default() };
    if tolerations(pod).iter().any(|t| tolerates(t, &taint)) {
        return Ok(());
    }
    Err(Rejection::unresolvable(ERR_UNSCHEDULABLE))
}

/// A pod that names a node goes only there.
pub fn node_name(pod: &Pod, node: &Node) -> Result<(), Rejection> {
    match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()) {
        Some(wanted) if Some(wanted) != node.metadata.name.as_deref() => Err(Rejection::unresolvable(ERR_NODE_NAME)),
        _ => Ok(()),
    }
}

/// The node's first `NoSchedule` or `NoExecute` taint the pod does not tolerate.
pub fn taint_toleration(pod: &Pod, node: &Node) -> Result<(), Rejection> {
    let untolerated =
        placement::untolerated(taints(node), tolerations(pod), |t| t.effect == "NoSchedule" || t.effect == "NoExecute");
    match untolerated {
        Some(taint) => Err(Rejection::unresolvable(format!(
            "node(s) had untolerated taint {{{}: {}}}",
            taint.key,
            taint.value.as_deref().unwrap_or_default()
        ))),
        None => Ok(()),
    }
}

/// How many of the node's `PreferNoSchedule` taints the pod does not tolerate.
pub fn intolerable_preferred_taints(pod: &Pod, node: &Node) -> i64 {
    let tolerations: Vec<&Toleration> = tolerations(pod)
        .iter()
        .filter(|t| matches!(t.effect.as_deref().unwrap_or_default(), "" | "PreferNoSchedule"))
        .collect();
    let count = taints(node)
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
        .count();
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// `spec.nodeSelector` and the required node affinity (`nodeSelectorTerms`, ORed).
pub fn node_affinity(pod: &Pod, node: &Node) -> Result<(), Rejection> {
    let Some(spec) = pod.spec.as_ref() else { return Ok(()) };
    if placement::required_affinity_matches(spec, node) { Ok(()) } else { Err(Rejection::unresolvable(ERR_AFFINITY)) }
}

/// The sum of the weights of the preferred node affinity terms the node matches.
pub fn preferred_affinity_weight(pod: &Pod, node: &Node) -> i64 {
    let preferred = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_deref())
        .unwrap_or_default();
    preferred.iter().filter(|t| t.weight != 0 && term_matches(&t.preference, node)).map(|t| i64::from(t.weight)).sum()
}

/// The pod's host ports are free on the node.
pub fn node_ports(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    let taken = node.pods.iter().flat_map(|p| &p.ports);
    let conflict = taken.into_iter().any(|used| pod.ports.iter().any(|wanted| wanted.conflicts(used)));
    if conflict { Err(Rejection { reasons: vec![ERR_PORTS.into()], unresolvable: false }) } else { Ok(()) }
}

/// The pod's requests fit in what the node's allocatable leaves after its pods'.
pub fn node_resources_fit(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    let (want, have, used) = (&pod.requests, &node.allocatable, &node.requested);
    let mut rejection = Rejection { reasons: Vec::new(), unresolvable: false };
    let pods_on_node = i64::try_from(node.pods.len()).unwrap_or(i64::MAX);
    if pods_on_node + 1 > have.pods {
        rejection.reasons.push("Too many pods".into());
    }
    let mut check = |name: &str, want: i64, have: i64, used: i64| {
        if want > 0 && want > have - used {
            rejection.reasons.push(format!("Insufficient {name}"));
            rejection.unresolvable |= want > have;
        }
    };
    check("cpu", want.milli_cpu, have.milli_cpu, used.milli_cpu);
    check("memory", want.memory, have.memory, used.memory);
    check("ephemeral-storage", want.ephemeral_storage, have.ephemeral_storage, used.ephemeral_storage);
    for (name, amount) in &want.scalar {
        let have = have.scalar.get(name).copied().unwrap_or(0);
        check(name, *amount, have, used.scalar.get(name).copied().unwrap_or(0));
    }
    if rejection.reasons.is_empty() { Ok(()) } else { Err(rejection) }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;

    fn pod(spec: Value) -> Pod {
        let mut spec = spec;
        spec["containers"] = spec.get("containers").cloned().unwrap_or(json!([{"name": "c"}]));
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec})).unwrap()
    }

    fn node(name: &str, labels: Value, spec: Value, allocatable: Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
            "status": {"allocatable": allocatable},
        }))
        .unwrap()
    }

    fn plain(name: &str) -> Node {
        node(name, json!({}), json!({}), json!({"cpu": "2", "memory": "4Gi", "pods": "110"}))
    }

    #[test]
    fn cordoned_nodes_take_only_pods_that_tolerate_it() {
        let cordoned = node("n", json!({}), json!({"unschedulable": true}), json!({}));
        assert_eq!(node_unschedulable(&pod(json!({})), &cordoned).unwrap_err().reasons, [ERR_UNSCHEDULABLE]);
        let tolerant = pod(json!({"tolerations": [
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
        ]}));
        assert!(node_unschedulable(&tolerant, &cordoned).is_ok());
        assert!(node_unschedulable(&pod(json!({})), &plain("m")).is_ok());
    }

    #[test]
    fn node_name_must_match() {
        assert!(node_name(&pod(json!({"nodeName": "a"})), &plain("a")).is_ok());
        assert_eq!(node_name(&pod(json!({"nodeName": "a"})), &plain("b")).unwrap_err().reasons, [ERR_NODE_NAME]);
        assert!(node_name(&pod(json!({})), &plain("b")).is_ok());
    }

    #[test]
    fn taints_need_tolerations() {
        let tainted = node(
            "n",
            json!({}),
            json!({"taints": [
                {"key": "dedicated", "value": "db", "effect": "NoSchedule"},
                {"key": "node-role.kubernetes.io/control-plane", "effect": "NoExecute"},
                {"key": "soft", "effect": "PreferNoSchedule"},
            ]}),
            json!({}),
        );
        let rejection = taint_toleration(&pod(json!({})), &tainted).unwrap_err();
        assert_eq!(rejection.reasons, ["node(s) had untolerated taint {dedicated: db}"]);
        assert!(rejection.unresolvable);
        let equal = pod(json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db"}]}));
        assert_eq!(
            taint_toleration(&equal, &tainted).unwrap_err().reasons,
            ["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"]
        );
        let wrong_value = pod(json!({"tolerations": [{"key": "dedicated", "value": "web"}]}));
        assert!(taint_toleration(&wrong_value, &tainted).is_err());
        let both = pod(json!({"tolerations": [
            {"key": "dedicated", "value": "db", "effect": "NoSchedule"},
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"},
        ]}));
        assert!(taint_toleration(&both, &tainted).is_ok());
        let everything = pod(json!({"tolerations": [{"operator": "Exists"}]}));
        assert!(taint_toleration(&everything, &tainted).is_ok());
        let wrong_effect = pod(json!({"tolerations": [{"operator": "Exists", "effect": "PreferNoSchedule"}]}));
        assert!(taint_toleration(&wrong_effect, &tainted).is_err());
        assert_eq!(intolerable_preferred_taints(&pod(json!({})), &tainted), 1);
        assert_eq!(intolerable_preferred_taints(&wrong_effect, &tainted), 0);
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let labelled = node("n1", json!({"zone": "a", "cores": "8"}), json!({}), json!({}));
        let selecting = |selector: Value| pod(json!({"nodeSelector": selector}));
        assert!(node_affinity(&selecting(json!({"zone": "a"})), &labelled).is_ok());
        assert_eq!(node_affinity(&selecting(json!({"zone": "b"})), &labelled).unwrap_err().reasons, [ERR_AFFINITY]);
        let requiring = |terms: Value| {
            pod(json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": terms,
            }}}}))
        };
        let expr = |key: &str, op: &str, values: Value| json!([{"matchExpressions": [{"key": key, "operator": op, "values": values}]}]);
        let fits = |terms: Value| node_affinity(&requiring(terms), &labelled).is_ok();
        assert!(fits(expr("zone", "In", json!(["a", "b"]))));
        assert!(!fits(expr("zone", "In", json!(["b"]))));
        assert!(fits(expr("zone", "NotIn", json!(["b"]))));
        assert!(fits(expr("gpu", "NotIn", json!(["x"]))));
        assert!(fits(expr("zone", "Exists", json!([]))));
        assert!(!fits(expr("gpu", "Exists", json!([]))));
        assert!(fits(expr("gpu", "DoesNotExist", json!([]))));
        assert!(fits(expr("cores", "Gt", json!(["4"]))));
        assert!(!fits(expr("cores", "Gt", json!(["8"]))));
        assert!(fits(expr("cores", "Lt", json!(["9"]))));
        assert!(!fits(expr("zone", "Lt", json!(["9"]))));
        assert!(!fits(expr("cores", "Gt", json!(["1", "2"]))));
        // Terms are ORed; an empty term matches nothing.
        assert!(fits(json!([{}, {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}])));
        assert!(!fits(json!([{}])));
        assert!(fits(json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}])));
        assert!(!fits(json!([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}])));
        assert!(!fits(json!([{"matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["n1"]}]}])));
    }

    #[test]
    fn preferred_affinity_sums_matching_weights() {
        let labelled = node("n1", json!({"zone": "a", "disk": "ssd"}), json!({}), json!({}));
        let p = pod(json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
            {"weight": 5, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}},
            {"weight": 7, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}},
        ]}}}));
        assert_eq!(preferred_affinity_weight(&p, &labelled), 15);
        assert_eq!(preferred_affinity_weight(&p, &plain("n2")), 0);
    }

    fn info(node: Node, pods: &[Pod]) -> NodeInfo {
        let mut info = NodeInfo::new(Arc::new(node));
        for p in pods {
            info.add(PodInfo::new(Arc::new(p.clone())));
        }
        info
    }

    fn requesting(cpu: &str, memory: &str) -> Pod {
        pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}))
    }

    #[test]
    fn resources_fit_what_the_node_has_left() {
        let small = node("n", json!({}), json!({}), json!({"cpu": "1", "memory": "1Gi", "pods": "2"}));
        let half = requesting("500m", "256Mi");
        let busy = info(small.clone(), &[half.clone()]);
        let fits = |p: &Pod, on: &NodeInfo| node_resources_fit(&PodInfo::new(Arc::new(p.clone())), on);
        assert!(fits(&half, &busy).is_ok());
        let rejection = fits(&requesting("600m", "1Gi"), &busy).unwrap_err();
        assert_eq!(rejection.reasons, ["Insufficient cpu", "Insufficient memory"]);
        assert!(!rejection.unresolvable, "evicting the pod on it would make room");
        assert!(fits(&requesting("2", "1Mi"), &busy).unwrap_err().unresolvable, "more than the node has");
        let full = info(small.clone(), &[half.clone(), pod(json!({}))]);
        assert_eq!(fits(&pod(json!({})), &full).unwrap_err().reasons, ["Too many pods"]);
        let gpu = pod(json!({"containers": [{"name": "c", "resources": {"limits": {"example.com/gpu": "1"}}}]}));
        assert_eq!(fits(&gpu, &busy).unwrap_err().reasons, ["Insufficient example.com/gpu"]);
        let no_status = info(node("bare", json!({}), json!({}), json!({})), &[]);
        assert_eq!(fits(&pod(json!({})), &no_status).unwrap_err().reasons, ["Too many pods"]);
    }

    #[test]
    fn host_ports_must_be_free() {
        let with_port =
            |port: i32| pod(json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": port}]}]}));
        let busy = info(plain("n"), &[with_port(8080)]);
        let check = |p: Pod| node_ports(&PodInfo::new(Arc::new(p)), &busy);
        assert_eq!(check(with_port(8080)).unwrap_err().reasons, [ERR_PORTS]);
        assert!(check(with_port(8081)).is_ok());
        assert!(check(pod(json!({}))).is_ok());
    }
}
