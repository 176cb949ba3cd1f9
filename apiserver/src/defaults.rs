//! Defaulting, as kube-apiserver's `SetDefaults_*` functions do for the fields we
//! serve. Runs on every create and update before validation.

use serde_json::{Map, Value, json};
use waggle_apimachinery::registry::Resource;

/// Sets `obj[key]` to `value` when absent or null.
fn default(obj: &mut Value, key: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        if map.get(key).is_none_or(Value::is_null) {
            map.insert(key.to_owned(), value);
        }
    }
}

/// The object at `obj[key]`, created empty if absent.
fn child<'a>(obj: &'a mut Value, key: &str) -> &'a mut Value {
    default(obj, key, Value::Object(Map::new()));
    &mut obj[key]
}

pub fn apply(resource: &Resource, obj: &mut Value) {
    crate::kubectl::omitempty::drop_empty_metadata(obj);
    if let Some(custom) = resource.custom {
        // A custom resource keeps only what its schema declares, then takes its defaults.
        if let Some(schema) = custom.structural_schema() {
            waggle_apimachinery::schema::prune(schema, obj);
            waggle_apimachinery::schema::apply_defaults(schema, obj);
        }
        return;
    }
    match (resource.group, resource.kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crate::crd::default_definition(obj),
        ("", "Pod") => pod_spec(child(obj, "spec")),
        ("", "Service") => service(obj),
        ("", "Secret") => default(obj, "type", json!("Opaque")),
        ("", "Namespace") => {
            let name = crate::objects::name(obj).to_owned();
            let labels = child(child(obj, "metadata"), "labels");
            default(labels, "kubernetes.io/metadata.name", json!(name));
        }
        ("", "ReplicationController") => {
            let spec = child(obj, "spec");
            default(spec, "replicas", json!(1));
            if let Some(labels) = spec.pointer("/template/metadata/labels").cloned() {
                default(spec, "selector", labels);
            }
            template(spec);
        }
        ("apps", "Deployment") => {
            let spec = child(obj, "spec");
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            let strategy = child(spec, "strategy");
            default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let rolling = child(strategy, "rollingUpdate");
                default(rolling, "maxUnavailable", json!("25%"));
                default(rolling, "maxSurge", json!("25%"));
            }
            template(spec);
        }
        ("apps", "ReplicaSet") => {
            let spec = child(obj, "spec");
            default(spec, "replicas", json!(1));
            template(spec);
        }
        ("apps", "DaemonSet") => {
            let spec = child(obj, "spec");
            default(spec, "revisionHistoryLimit", json!(10));
            let strategy = child(spec, "updateStrategy");
            default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let rolling = child(strategy, "rollingUpdate");
                default(rolling, "maxUnavailable", json!(1));
                default(rolling, "maxSurge", json!(0));
            }
            template(spec);
        }
        ("apps", "StatefulSet") => {
            let spec = child(obj, "spec");
            default(spec, "replicas", json!(1));
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            default(spec, "revisionHistoryLimit", json!(10));
            let strategy = child(spec, "updateStrategy");
            default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                default(child(strategy, "rollingUpdate"), "partition", json!(0));
            }
            let retention = child(spec, "persistentVolumeClaimRetentionPolicy");
            default(retention, "whenDeleted", json!("Retain"));
            default(retention, "whenScaled", json!("Retain"));
            template(spec);
        }
        ("batch", "Job") => job(obj),
        ("discovery.k8s.io", "EndpointSlice") => {
            if let Some(ports) = obj.get_mut("ports").and_then(Value::as_array_mut) {
                for port in ports {
                    default(port, "protocol", json!("TCP"));
                }
            }
        }
        ("", "Endpoints") => {
            if let Some(subsets) = obj.get_mut("subsets").and_then(Value::as_array_mut) {
                for subset in subsets {
                    if let Some(ports) = subset.get_mut("ports").and_then(Value::as_array_mut) {
                        for port in ports {
                            default(port, "protocol", json!("TCP"));
                        }
                    }
                }
            }
        }
        ("batch", "CronJob") => {
            let spec = child(obj, "spec");
            default(spec, "concurrencyPolicy", json!("Allow"));
            default(spec, "suspend", json!(false));
            default(spec, "successfulJobsHistoryLimit", json!(3));
            default(spec, "failedJobsHistoryLimit", json!(1));
            job_spec(child(child(spec, "jobTemplate"), "spec"));
        }
        ("", "PersistentVolume") => {
            let spec = child(obj, "spec");
            default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
            default(spec, "volumeMode", json!("Filesystem"));
        }
        ("", "PersistentVolumeClaim") => default(child(obj, "spec"), "volumeMode", json!("Filesystem")),
        ("scheduling.k8s.io", "PriorityClass") => default(obj, "preemptionPolicy", json!("PreemptLowerPriority")),
        ("storage.k8s.io", "StorageClass") => {
            default(obj, "reclaimPolicy", json!("Delete"));
            default(obj, "volumeBindingMode", json!("Immediate"));
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            let v2 = obj.get("apiVersion").and_then(Value::as_str) == Some("autoscaling/v2");
            let spec = child(obj, "spec");
            default(spec, "minReplicas", json!(1));
            if v2 && spec.get("metrics").and_then(Value::as_array).is_none_or(Vec::is_empty) {
                spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}}}]);
            }
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            for subject in obj.get_mut("subjects").and_then(Value::as_array_mut).into_iter().flatten() {
                let group = match subject.get("kind").and_then(Value::as_str) {
                    Some("ServiceAccount") => "",
                    Some("User" | "Group") => "rbac.authorization.k8s.io",
                    _ => continue,
                };
                default(subject, "apiGroup", json!(group));
            }
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            let spec = child(obj, "spec");
            default(spec, "podSelector", json!({}));
            let has_egress = spec.get("egress").is_some_and(|e| !e.is_null());
            let types = if has_egress {
                json!(["Ingress", "Egress"])
            } else {
                json!(["Ingress"])
            };
            default(spec, "policyTypes", types);
        }
        _ => {}
    }
}

fn template(spec: &mut Value) {
    let template = child(spec, "template");
    pod_spec(child(template, "spec"));
}

fn job(obj: &mut Value) {
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let name = crate::objects::name(obj).to_owned();
    let spec = child(obj, "spec");
    job_spec(spec);
    default(spec, "manualSelector", json!(false));
    // As upstream, a Job without a manual selector selects its pods by its uid.
    if spec.get("manualSelector") != Some(&json!(true))
        && !uid.is_empty()
        && spec.get("selector").is_none_or(Value::is_null)
    {
        spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
        let labels = child(child(child(spec, "template"), "metadata"), "labels");
        default(labels, "batch.kubernetes.io/controller-uid", json!(uid));
        default(labels, "controller-uid", json!(uid));
        default(labels, "batch.kubernetes.io/job-name", json!(name));
        default(labels, "job-name", json!(name));
    }
}

/// The defaults of a Job's spec, also applied to a CronJob's job template.
fn job_spec(spec: &mut Value) {
    // As upstream: a Job with neither runs one pod once; one with only a parallelism
    // is a work queue (no completions).
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec["completions"] = json!(1);
    }
    default(spec, "parallelism", json!(1));
    default(spec, "backoffLimit", json!(6));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    template(spec);
}

/// `SetDefaults_PodSpec` and `SetDefaults_Container` for the fields we use.
pub fn pod_spec(spec: &mut Value) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    default(spec, "enableServiceLinks", json!(true));
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers {
                container(c);
            }
        }
    }
}

fn container(c: &mut Value) {
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    let tag = image.rsplit('/').next().unwrap_or_default();
    let latest = !image.contains('@') && (!tag.contains(':') || tag.ends_with(":latest"));
    default(
        c,
        "imagePullPolicy",
        json!(if latest { "Always" } else { "IfNotPresent" }),
    );
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    default(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            default(port, "protocol", json!("TCP"));
        }
    }
}

fn service(obj: &mut Value) {
    let spec = child(obj, "spec");
    default(spec, "type", json!("ClusterIP"));
    let kind = spec["type"].as_str().unwrap_or_default().to_owned();
    if kind != "ExternalName" {
        default(spec, "sessionAffinity", json!("None"));
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if kind == "NodePort" || kind == "LoadBalancer" {
        default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            default(port, "protocol", json!("TCP"));
            let number = port.get("port").cloned().unwrap_or(Value::Null);
            let target = port.get("targetPort");
            if target.is_none_or(|t| t.is_null() || *t == json!(0) || *t == json!("")) {
                port["targetPort"] = number;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use waggle_apimachinery::registry::find;

    #[test]
    fn pod_and_container_defaults() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "nginx:1.27"},
        ]}});
        apply(find("", "v1", "pods").unwrap(), &mut pod);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            pod["spec"]["containers"][1]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(pod["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn service_target_port_defaults_to_port() {
        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        apply(find("", "v1", "services").unwrap(), &mut svc);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
    }

    #[test]
    fn deployment_defaults() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": []}}}});
        apply(find("apps", "v1", "deployments").unwrap(), &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    }
}
