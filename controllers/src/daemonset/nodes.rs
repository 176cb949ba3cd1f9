//! Which nodes a DaemonSet runs on, and the pod it makes for one: the template with
//! the tolerations every daemon pod gets, its revision labels, and a required node
//! affinity on the node's name, which the scheduler then binds it by.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec,
    PodTemplateSpec, Toleration,
};
use kube::ResourceExt;
use kube::api::ObjectMeta;

use crate::placement;

/// The label naming the revision (its hash) a pod was made from.
pub const HASH_LABEL: &str = "controller-revision-hash";
/// The label carrying the template generation a pod was made from.
pub const GENERATION_LABEL: &str = "pod-template-generation";
/// The annotation the API server keeps the DaemonSet's template generation in.
pub const GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// Whether a node should run the DaemonSet's pod, and whether one already there may
/// stay (it may when the only taints it does not tolerate are `NoSchedule`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub should_run: bool,
    pub should_continue: bool,
}

/// The tolerations upstream adds to every daemon pod: it keeps running through node
/// problems and on cordoned nodes; a host-network pod also through a missing network.
pub fn default_tolerations(spec: &PodSpec) -> Vec<Toleration> {
    let exists = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Toleration::default()
    };
    let mut tolerations = vec![
        exists("node.kubernetes.io/not-ready", "NoExecute"),
        exists("node.kubernetes.io/unreachable", "NoExecute"),
        exists("node.kubernetes.io/disk-pressure", "NoSchedule"),
        exists("node.kubernetes.io/memory-pressure", "NoSchedule"),
        exists("node.kubernetes.io/pid-pressure", "NoSchedule"),
        exists("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        tolerations.push(exists("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    tolerations
}

/// Whether two tolerations are the same but for `tolerationSeconds` (upstream's
/// `MatchToleration`).
fn same_toleration(a: &Toleration, b: &Toleration) -> bool {
    a.key == b.key && a.operator == b.operator && a.value == b.value && a.effect == b.effect
}

/// `spec` with the default tolerations: each replaces the template's toleration it
/// matches (a `tolerationSeconds` there goes, as upstream's
/// `AddOrUpdateDaemonPodTolerations` does), or is added after them.
fn with_default_tolerations(mut spec: PodSpec) -> PodSpec {
    let mut tolerations = spec.tolerations.take().unwrap_or_default();
    for toleration in default_tolerations(&spec) {
        match tolerations.iter_mut().find(|t| same_toleration(t, &toleration)) {
            Some(existing) => *existing = toleration,
            None => tolerations.push(toleration),
        }
    }
    spec.tolerations = Some(tolerations);
    spec
}

/// Where the DaemonSet's pod stands on `node` (upstream's `NodeShouldRunDaemonPod`).
pub fn placement(set: &DaemonSet, node: &Node) -> Placement {
    let template = set.spec.as_ref().and_then(|s| s.template.spec.clone()).unwrap_or_default();
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    if template.node_name.as_deref().is_some_and(|n| !n.is_empty() && n != node_name) {
        return Placement::default();
    }
    let spec = with_default_tolerations(template);
    if !placement::required_affinity_matches(&spec, node) {
        return Placement::default();
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let taints = placement::taints(node);
    if placement::untolerated(taints, tolerations, |t| t.effect == "NoSchedule" || t.effect == "NoExecute").is_none() {
        return Placement { should_run: true, should_continue: true };
    }
    let evicting = placement::untolerated(taints, tolerations, |t| t.effect == "NoExecute").is_some();
    Placement { should_run: false, should_continue: !evicting }
}

/// What [`placement`] reads from a node besides its name: its labels and taints.
pub fn placement_inputs(node: &Node) -> serde_json::Value {
    serde_json::json!([node.metadata.labels, placement::taints(node)])
}

/// The node a daemon pod is for: the one it is bound to, else the one its required
/// node affinity names by `metadata.name`.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(name) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(name.clone());
    }
    let required =
        spec.affinity.as_ref()?.node_affinity.as_ref()?.required_during_scheduling_ignored_during_execution.as_ref()?;
    required.node_selector_terms.iter().flat_map(|t| t.match_fields.iter().flatten()).find_map(|r| {
        let values = r.values.as_deref().unwrap_or_default();
        (r.key == "metadata.name" && r.operator == "In" && values.len() == 1).then(|| values[0].clone())
    })
}

/// The template generation the API server recorded, if any.
pub fn template_generation(set: &DaemonSet) -> Option<String> {
    set.annotations().get(GENERATION_ANNOTATION).filter(|g| g.parse::<i64>().is_ok()).cloned()
}

/// Whether a pod was made from the set's current template: its hash label is the
/// current revision's, or its generation label the current template generation.
pub fn is_updated(pod: &Pod, hash: &str, generation: Option<&str>) -> bool {
    let label = |key: &str| pod.labels().get(key).map(String::as_str);
    (!hash.is_empty() && label(HASH_LABEL) == Some(hash))
        || generation.is_some_and(|g| label(GENERATION_LABEL) == Some(g))
}

/// The template daemon pods are made from: the set's, with the default tolerations and
/// the revision labels.
pub fn pod_template(set: &DaemonSet, hash: &str) -> PodTemplateSpec {
    let mut template = set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    template.spec = Some(with_default_tolerations(template.spec.take().unwrap_or_default()));
    let labels = template.metadata.get_or_insert_with(ObjectMeta::default).labels.get_or_insert_with(Default::default);
    if let Some(generation) = template_generation(set) {
        labels.insert(GENERATION_LABEL.into(), generation);
    }
    if !hash.is_empty() {
        labels.insert(HASH_LABEL.into(), hash.into());
    }
    template
}

/// The set's pod for `node` from `template` (a [`pod_template`]): its required node
/// affinity replaced by one on the node's name.
pub fn new_pod(set: &DaemonSet, template: &PodTemplateSpec, node: &str) -> Pod {
    let mut pod = crate::replicaset::pod_from_template(set, template);
    let spec = pod.spec.get_or_insert_with(Default::default);
    let on_node = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.into()]),
            }]),
            ..NodeSelectorTerm::default()
        }],
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default)
        .required_during_scheduling_ignored_during_execution = Some(on_node);
    pod
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn set(template_spec: Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "default", "uid": "u1",
                         "annotations": {GENERATION_ANNOTATION: "3"}},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}}, "spec": template_spec},
            },
        }))
        .unwrap()
    }

    fn node(labels: Value, taints: Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n1", "labels": labels}, "spec": {"taints": taints}}))
            .unwrap()
    }

    fn plain() -> Value {
        json!({"containers": [{"name": "c", "image": "agent:1"}]})
    }

    #[test]
    fn selectors_and_affinity_decide_the_nodes() {
        let on = Placement { should_run: true, should_continue: true };
        assert_eq!(placement(&set(plain()), &node(json!({}), json!([]))), on);
        let mut selecting = plain();
        selecting["nodeSelector"] = json!({"role": "edge"});
        assert_eq!(placement(&set(selecting.clone()), &node(json!({}), json!([]))), Placement::default());
        assert_eq!(placement(&set(selecting), &node(json!({"role": "edge"}), json!([]))), on);
        let mut named = plain();
        named["nodeName"] = json!("n2");
        assert_eq!(placement(&set(named), &node(json!({}), json!([]))), Placement::default());
    }

    #[test]
    fn taints_stop_new_pods_and_only_no_execute_evicts() {
        let no_schedule = json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]);
        assert_eq!(
            placement(&set(plain()), &node(json!({}), no_schedule)),
            Placement { should_run: false, should_continue: true }
        );
        let no_execute = json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]);
        assert_eq!(placement(&set(plain()), &node(json!({}), no_execute.clone())), Placement::default());
        let mut tolerant = plain();
        tolerant["tolerations"] = json!([{"key": "dedicated", "operator": "Exists"}]);
        assert!(placement(&set(tolerant), &node(json!({}), no_execute)).should_run);
        // The default tolerations: node problems and cordoning do not stop daemon pods.
        for (key, effect) in [
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ] {
            assert!(placement(&set(plain()), &node(json!({}), json!([{"key": key, "effect": effect}]))).should_run);
        }
        // A template's own toleration of a default one is replaced by the default.
        let mut bounded = plain();
        bounded["tolerations"] = json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "dedicated", "operator": "Exists"},
        ]);
        let tolerations = pod_template(&set(bounded), "").spec.unwrap().tolerations.unwrap();
        assert_eq!(tolerations.len(), 7);
        assert_eq!(tolerations[0].key.as_deref(), Some("node.kubernetes.io/not-ready"));
        assert_eq!(tolerations[0].toleration_seconds, None);
        assert_eq!(tolerations[1].key.as_deref(), Some("dedicated"));
        let unavailable = json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]);
        assert!(!placement(&set(plain()), &node(json!({}), unavailable.clone())).should_run);
        let mut host = plain();
        host["hostNetwork"] = json!(true);
        assert!(placement(&set(host), &node(json!({}), unavailable)).should_run);
    }

    #[test]
    fn pods_are_pinned_to_their_node_by_name() {
        let mut spec = plain();
        spec["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "role", "operator": "Exists"}]}]}}});
        let set = set(spec);
        let pod = new_pod(&set, &pod_template(&set, "abc"), "n1");
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
        assert_eq!(pod.labels()[HASH_LABEL], "abc");
        assert_eq!(pod.labels()[GENERATION_LABEL], "3");
        assert_eq!(pod.labels()["app"], "agent");
        assert_eq!(pod.owner_references()[0].controller, Some(true));
        let spec = serde_json::to_value(pod.spec.as_ref().unwrap()).unwrap();
        assert_eq!(
            spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
            json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]})
        );
        assert_eq!(spec["tolerations"].as_array().unwrap().len(), 6);
        assert_eq!(target_node(&pod).as_deref(), Some("n1"));
        assert!(is_updated(&pod, "abc", None));
        assert!(is_updated(&pod, "other", Some("3")));
        assert!(!is_updated(&pod, "other", Some("4")));
    }
}
