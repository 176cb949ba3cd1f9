//! Which nodes a pod may run on, as far as its own spec says: tolerations against a
//! node's taints, and `nodeSelector` with the required node affinity. The DaemonSet
//! controller decides its nodes with these; the scheduler filters with them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration};

/// Whether `toleration` tolerates `taint` (upstream's `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    let key = toleration.key.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect || !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => toleration.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
        "Exists" => true,
        _ => false,
    }
}

/// The node's first taint that `filter` picks and no toleration tolerates.
pub fn untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints.iter().filter(|t| filter(t)).find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

/// The node's taints.
pub fn taints(node: &Node) -> &[Taint] {
    node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default()
}

/// `nodeSelector` and the required node affinity (`nodeSelectorTerms`, ORed) hold for
/// the node (upstream's `GetRequiredNodeAffinity(pod).Match(node)`).
pub fn required_affinity_matches(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some(selector) = &spec.node_selector
        && selector.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
    required.is_none_or(|required| required.node_selector_terms.iter().any(|term| term_matches(term, node)))
}

/// A node selector term: every expression on the labels and every field requirement
/// (`metadata.name` only) holds; an empty term matches nothing.
pub fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let mut node_fields = BTreeMap::new();
    if let Some(name) = &node.metadata.name {
        node_fields.insert("metadata.name".to_owned(), name.clone());
    }
    expressions.iter().all(|r| requirement_matches(r, &labels))
        && fields.iter().all(|r| r.key == "metadata.name" && matches!(r.operator.as_str(), "In" | "NotIn"))
        && fields.iter().all(|r| requirement_matches(r, &node_fields))
}

fn requirement_matches(requirement: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    let value = labels.get(&requirement.key);
    let integer = |text: &str| text.parse::<i64>().ok();
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), [want]) = (value.and_then(|v| integer(v)), values) else { return false };
            let Some(want) = integer(want) else { return false };
            if requirement.operator == "Gt" { have > want } else { have < want }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node() -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n1", "labels": {"disk": "ssd", "cores": "8"}}})).unwrap()
    }

    fn fits(spec: serde_json::Value) -> bool {
        required_affinity_matches(&serde_json::from_value(spec).unwrap(), &node())
    }

    fn required(terms: serde_json::Value) -> serde_json::Value {
        json!({"containers": [], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}})
    }

    #[test]
    fn selectors_and_required_terms() {
        assert!(fits(json!({"containers": []})));
        assert!(fits(json!({"containers": [], "nodeSelector": {"disk": "ssd"}})));
        assert!(!fits(json!({"containers": [], "nodeSelector": {"disk": "hdd"}})));
        assert!(fits(required(json!([{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}]))));
        assert!(!fits(required(json!([{"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"}]}]))));
        assert!(fits(required(
            json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}])
        )));
        assert!(!fits(required(
            json!([{"matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["n1"]}]}])
        )));
        assert!(!fits(required(json!([{}]))));
    }

    #[test]
    fn tolerations_by_key_effect_and_value() {
        let taint = |key: &str, value: Option<&str>, effect: &str| Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect: effect.into(),
            ..Taint::default()
        };
        let toleration = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).unwrap() };
        let t = taint("dedicated", Some("gpu"), "NoSchedule");
        assert!(tolerates(&toleration(json!({"key": "dedicated", "value": "gpu"})), &t));
        assert!(!tolerates(&toleration(json!({"key": "dedicated", "value": "cpu"})), &t));
        assert!(tolerates(&toleration(json!({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"})), &t));
        assert!(!tolerates(&toleration(json!({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"})), &t));
        assert!(tolerates(&toleration(json!({"operator": "Exists"})), &t));
        let taints = [t.clone(), taint("other", None, "NoExecute")];
        let tolerations = [toleration(json!({"key": "dedicated", "operator": "Exists"}))];
        assert_eq!(untolerated(&taints, &tolerations, |_| true).map(|t| t.key.as_str()), Some("other"));
        assert_eq!(untolerated(&taints, &tolerations, |t| t.effect == "NoSchedule"), None);
    }
}
