//! System-managed metadata and status across writes: `uid`, `creationTimestamp`,
//! `generation` (bumped on spec changes only), and which writes may touch `status`.

use serde_json::{Value, json};
use waggle_apimachinery::registry::Resource;

use crate::objects;
use crate::status::Cause;

/// Kinds whose `metadata.generation` tracks spec changes.
fn tracks_generation(resource: &Resource) -> bool {
    !matches!(
        (resource.group, resource.kind),
        ("", "ConfigMap" | "Secret" | "Event" | "Endpoints" | "ServiceAccount" | "Namespace" | "Node")
            | ("", "PersistentVolume" | "PersistentVolumeClaim")
            | ("coordination.k8s.io", "Lease")
            | ("events.k8s.io", "Event")
            | ("apps", "ControllerRevision")
            | ("certificates.k8s.io", _)
            | ("rbac.authorization.k8s.io", _)
            | ("scheduling.k8s.io", "PriorityClass")
            | ("storage.k8s.io", "StorageClass")
    )
}

/// Fields of `metadata` only the server sets.
const SYSTEM_FIELDS: &[&str] = &["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"];

/// Prepares a new object: server-set metadata, and status as upstream resets it.
pub fn prepare_create(resource: &Resource, obj: &mut Value) {
    let meta = objects::meta_mut(obj);
    for field in SYSTEM_FIELDS.iter().chain(&["resourceVersion", "selfLink"]) {
        meta.remove(*field);
    }
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(objects::now()));
    if tracks_generation(resource) {
        meta.insert("generation".into(), json!(1));
    }
    if is_daemon_set(resource) {
        let given = template_generation(obj).filter(|g| *g >= 1).unwrap_or(1);
        set_template_generation(obj, given);
    }
    if !resource.has_subresource("status") {
        return;
    }
    if resource.custom.is_some() {
        // As upstream's custom resource strategy: status is written through its subresource.
        if let Some(map) = obj.as_object_mut() {
            map.remove("status");
        }
        return;
    }
    match (resource.group, resource.kind) {
        ("", "Pod") => {
            let qos = qos_class(obj.get("spec").unwrap_or(&Value::Null));
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        ("", "Namespace") => {
            // As upstream, the namespace controller's finalizer holds it until it is empty.
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "Node") => {}
        ("", "Service") => obj["status"] = json!({"loadBalancer": {}}),
        ("", "PersistentVolume" | "PersistentVolumeClaim") => obj["status"] = json!({"phase": "Pending"}),
        ("networking.k8s.io", "Ingress") => obj["status"] = json!({"loadBalancer": {}}),
        ("policy", "PodDisruptionBudget") => {
            obj["status"] = json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0})
        }
        _ => obj["status"] = json!({}),
    }
}

/// Carries server-owned state from `old` into an update of the main resource.
pub fn prepare_update(resource: &Resource, new: &mut Value, old: &Value) {
    let new_meta = objects::meta_mut(new);
    for field in SYSTEM_FIELDS {
        match old.pointer(&format!("/metadata/{field}")) {
            Some(v) => new_meta.insert((*field).into(), v.clone()),
            None => new_meta.remove(*field),
        };
    }
    if resource.has_subresource("status") {
        match old.get("status") {
            Some(status) => new["status"] = status.clone(),
            None => {
                if let Some(map) = new.as_object_mut() {
                    map.remove("status");
                }
            }
        }
    }
    if resource.group.is_empty() && resource.kind == "Service" {
        drop_type_dependent_fields(new, old);
    }
    if crate::certificates::is_signing_request(resource) {
        crate::certificates::keep_spec(new, old);
    }
    if tracks_generation(resource) && spec_changed(resource, new, old) {
        let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0) + 1;
        objects::meta_mut(new).insert("generation".into(), json!(generation));
    }
    if is_daemon_set(resource) {
        // As upstream's strategy: only a new template moves the template generation.
        let mut generation = template_generation(old).unwrap_or(1);
        if new.pointer("/spec/template") != old.pointer("/spec/template") {
            generation += 1;
        }
        set_template_generation(new, generation);
    }
}

/// The annotation apps/v1 DaemonSets carry their template generation in (upstream's
/// internal `spec.templateGeneration`), which the controller labels pods with.
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

fn is_daemon_set(resource: &Resource) -> bool {
    resource.group == "apps" && resource.kind == "DaemonSet"
}

fn template_generation(obj: &Value) -> Option<i64> {
    obj.pointer("/metadata/annotations")?.get(TEMPLATE_GENERATION)?.as_str()?.parse().ok()
}

fn set_template_generation(obj: &mut Value, generation: i64) {
    let annotations = objects::meta_mut(obj).entry("annotations").or_insert_with(|| json!({}));
    if let Some(map) = annotations.as_object_mut() {
        map.insert(TEMPLATE_GENERATION.into(), json!(generation.to_string()));
    }
}

/// Whether an update changes what `metadata.generation` counts: the spec, or for a
/// custom resource everything but metadata (and status, when it has its subresource).
fn spec_changed(resource: &Resource, new: &Value, old: &Value) -> bool {
    if resource.custom.is_none() {
        return new.get("spec") != old.get("spec");
    }
    let status_apart = resource.has_subresource("status");
    let counted = |key: &str| key != "metadata" && !(status_apart && key == "status");
    let (Some(new), Some(old)) = (new.as_object(), old.as_object()) else {
        return new != old;
    };
    // Compared in place: an update of a custom resource copies nothing to decide this.
    new.keys().filter(|k| counted(k)).count() != old.keys().filter(|k| counted(k)).count()
        || new.iter().any(|(k, v)| counted(k) && old.get(k) != Some(v))
}

/// A Service leaving NodePort/LoadBalancer loses the node ports it carried over, as
/// upstream's `dropTypeDependentFields` (ports the client set anew stay, to be refused).
fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
    let kind = |svc: &Value| svc.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP").to_owned();
    let had_ports = matches!(kind(old).as_str(), "NodePort" | "LoadBalancer");
    if !had_ports || matches!(kind(new).as_str(), "NodePort" | "LoadBalancer") {
        return;
    }
    let old_ports: Vec<Value> = crate::validation::items(old, "/spec/ports").iter().filter_map(|p| p.get("nodePort").cloned()).collect();
    if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            if port.get("nodePort").is_some_and(|p| old_ports.contains(p)) {
                port.remove("nodePort");
            }
        }
    }
}

/// An update of the `status` subresource: everything but `status` stays as it was.
pub fn prepare_status_update(new: &Value, old: &Value) -> Value {
    let mut result = old.clone();
    match new.get("status") {
        Some(status) => result["status"] = status.clone(),
        None => {
            if let Some(map) = result.as_object_mut() {
                map.remove("status");
            }
        }
    }
    if let Some(rv) = new.pointer("/metadata/resourceVersion") {
        objects::meta_mut(&mut result).insert("resourceVersion".into(), rv.clone());
    }
    result
}

/// No finalizer may be added to an object being deleted.
pub fn check_finalizers(new: &Value, old: &Value) -> Option<Cause> {
    if !objects::is_deleting(old) {
        return None;
    }
    let before = objects::finalizers(old);
    let added: Vec<String> = objects::finalizers(new).into_iter().filter(|f| !before.contains(f)).collect();
    (!added.is_empty()).then(|| {
        Cause::forbidden(
            "metadata.finalizers",
            format!("no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"),
        )
    })
}

/// Whether an update finished a deletion: marked, no finalizers left, no grace pending.
pub fn deletion_complete(obj: &Value) -> bool {
    objects::is_deleting(obj)
        && objects::finalizers(obj).is_empty()
        && obj.pointer("/spec/finalizers").and_then(Value::as_array).is_none_or(Vec::is_empty)
        && obj.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0) == 0
}

/// A pod's QoS class from its containers' resources.
fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|l| crate::validation::items(spec, &format!("/{l}")))
        .collect();
    let section = |c: &Value, s: &str| c.pointer(&format!("/resources/{s}")).and_then(Value::as_object).cloned().unwrap_or_default();
    if containers.iter().all(|c| section(c, "requests").is_empty() && section(c, "limits").is_empty()) {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        let limits = section(c, "limits");
        let requests = section(c, "requests");
        ["cpu", "memory"].iter().all(|r| limits.contains_key(*r))
            && requests.iter().all(|(k, v)| limits.get(k) == Some(v))
    });
    if guaranteed { "Guaranteed" } else { "Burstable" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use waggle_apimachinery::registry::find;

    #[test]
    fn daemon_sets_count_template_generations() {
        let sets = find("apps", "v1", "daemonsets").unwrap();
        let generation = |obj: &Value| obj["metadata"]["annotations"][TEMPLATE_GENERATION].clone();
        let mut old = json!({"metadata": {"name": "ds"}, "spec": {"template": {"spec": {"containers": []}}}});
        prepare_create(sets, &mut old);
        assert_eq!(generation(&old), "1");
        let mut relabelled = old.clone();
        relabelled["metadata"]["annotations"][TEMPLATE_GENERATION] = json!("7");
        relabelled["spec"]["minReadySeconds"] = json!(5);
        prepare_update(sets, &mut relabelled, &old);
        assert_eq!(generation(&relabelled), "1");
        let mut changed = old.clone();
        changed["spec"]["template"]["metadata"] = json!({"labels": {"a": "b"}});
        prepare_update(sets, &mut changed, &old);
        assert_eq!(generation(&changed), "2");
    }

    #[test]
    fn generation_bumps_on_spec_change_only() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let mut old = json!({"metadata": {"name": "d"}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
        prepare_create(deploy, &mut old);
        assert_eq!(old["metadata"]["generation"], 1);
        assert_eq!(old["status"], json!({}));

        let mut relabel = old.clone();
        relabel["metadata"]["labels"] = json!({"a": "b"});
        relabel["status"] = json!({"replicas": 5});
        prepare_update(deploy, &mut relabel, &old);
        assert_eq!(relabel["metadata"]["generation"], 1);
        assert_eq!(relabel["status"], json!({}), "main resource updates ignore status");

        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(3);
        prepare_update(deploy, &mut scaled, &old);
        assert_eq!(scaled["metadata"]["generation"], 2);
    }

    #[test]
    fn status_updates_touch_only_status() {
        let old = json!({"metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {"x": 1}, "status": {}});
        let new = json!({"metadata": {"name": "p"}, "spec": {"x": 2}, "status": {"phase": "Running"}});
        let merged = prepare_status_update(&new, &old);
        assert_eq!(merged["spec"]["x"], 1);
        assert_eq!(merged["metadata"]["labels"]["a"], "b");
        assert_eq!(merged["status"]["phase"], "Running");
    }

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(&json!({"containers": [{}]})), "BestEffort");
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(&b), "Burstable");
    }
}
