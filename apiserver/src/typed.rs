//! Decoding bodies into the `k8s-openapi` types: a type check of every write, and the
//! source of `unknown field` findings for `fieldValidation`.
//!
//! Objects are stored as the client sent them (unknown fields preserved); the typed
//! decode only finds what upstream's decoder would reject or warn about.

use k8s_openapi::api::{apps, autoscaling, batch, certificates, coordination, core, discovery, events, networking, policy, rbac, scheduling, storage};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use waggle_apimachinery::registry::Resource;

use crate::status::ApiError;

fn roundtrip<T: DeserializeOwned + Serialize>(value: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// The object after a typed decode and re-encode, or the decode error.
fn typed_roundtrip(resource: &Resource, value: &Value) -> Result<Option<Value>, String> {
    let result = match (resource.group, resource.kind) {
        ("", "Namespace") => roundtrip::<core::v1::Namespace>(value),
        ("", "Pod") => roundtrip::<core::v1::Pod>(value),
        ("", "Service") => roundtrip::<core::v1::Service>(value),
        ("", "Endpoints") => roundtrip::<core::v1::Endpoints>(value),
        ("", "Node") => roundtrip::<core::v1::Node>(value),
        ("", "ConfigMap") => roundtrip::<core::v1::ConfigMap>(value),
        ("", "Secret") => roundtrip::<core::v1::Secret>(value),
        ("", "ServiceAccount") => roundtrip::<core::v1::ServiceAccount>(value),
        ("", "Event") => roundtrip::<core::v1::Event>(value),
        ("events.k8s.io", "Event") => roundtrip::<events::v1::Event>(value),
        ("", "ReplicationController") => roundtrip::<core::v1::ReplicationController>(value),
        ("apps", "Deployment") => roundtrip::<apps::v1::Deployment>(value),
        ("apps", "ReplicaSet") => roundtrip::<apps::v1::ReplicaSet>(value),
        ("apps", "DaemonSet") => roundtrip::<apps::v1::DaemonSet>(value),
        ("apps", "StatefulSet") => roundtrip::<apps::v1::StatefulSet>(value),
        ("apps", "ControllerRevision") => roundtrip::<apps::v1::ControllerRevision>(value),
        ("batch", "Job") => roundtrip::<batch::v1::Job>(value),
        ("discovery.k8s.io", "EndpointSlice") => roundtrip::<discovery::v1::EndpointSlice>(value),
        ("networking.k8s.io", "NetworkPolicy") => roundtrip::<networking::v1::NetworkPolicy>(value),
        ("coordination.k8s.io", "Lease") => roundtrip::<coordination::v1::Lease>(value),
        ("", "PersistentVolume") => roundtrip::<core::v1::PersistentVolume>(value),
        ("", "PersistentVolumeClaim") => roundtrip::<core::v1::PersistentVolumeClaim>(value),
        ("batch", "CronJob") => roundtrip::<batch::v1::CronJob>(value),
        ("networking.k8s.io", "Ingress") => roundtrip::<networking::v1::Ingress>(value),
        ("networking.k8s.io", "IngressClass") => roundtrip::<networking::v1::IngressClass>(value),
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            roundtrip::<certificates::v1::CertificateSigningRequest>(value)
        }
        ("policy", "PodDisruptionBudget") => roundtrip::<policy::v1::PodDisruptionBudget>(value),
        ("rbac.authorization.k8s.io", "Role") => roundtrip::<rbac::v1::Role>(value),
        ("rbac.authorization.k8s.io", "RoleBinding") => roundtrip::<rbac::v1::RoleBinding>(value),
        ("rbac.authorization.k8s.io", "ClusterRole") => roundtrip::<rbac::v1::ClusterRole>(value),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => roundtrip::<rbac::v1::ClusterRoleBinding>(value),
        ("scheduling.k8s.io", "PriorityClass") => roundtrip::<scheduling::v1::PriorityClass>(value),
        ("storage.k8s.io", "StorageClass") => roundtrip::<storage::v1::StorageClass>(value),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => roundtrip::<CustomResourceDefinition>(value),
        ("autoscaling", "HorizontalPodAutoscaler") if resource.version == "v1" => {
            roundtrip::<autoscaling::v1::HorizontalPodAutoscaler>(value)
        }
        ("autoscaling", "HorizontalPodAutoscaler") => roundtrip::<autoscaling::v2::HorizontalPodAutoscaler>(value),
        _ => return Ok(None),
    };
    result.map(Some)
}

/// Type-checks `value`; returns the paths of fields the typed decode does not know.
pub fn check(resource: &Resource, value: &Value) -> Result<Vec<String>, ApiError> {
    match typed_roundtrip(resource, value) {
        Ok(Some(typed)) => {
            let mut unknown = Vec::new();
            unknown_fields(value, &typed, "", &mut unknown);
            Ok(unknown)
        }
        Ok(None) => Ok(Vec::new()),
        Err(e) => Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}",
            kind = resource.kind,
            version = resource.version
        ))),
    }
}

fn unknown_fields(original: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (original, typed) {
        (Value::Object(orig), Value::Object(known)) => {
            for (key, value) in orig {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match known.get(key) {
                    Some(k) => unknown_fields(value, k, &child, out),
                    None if value.is_null() => {}
                    None if is_free_form(path) => {}
                    None => out.push(child),
                }
            }
        }
        (Value::Array(orig), Value::Array(known)) => {
            for (i, (o, k)) in orig.iter().zip(known).enumerate() {
                unknown_fields(o, k, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Maps whose keys are data, not fields (labels, data, selectors...), never report.
fn is_free_form(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    matches!(
        last,
        "labels" | "annotations" | "data" | "binaryData" | "stringData" | "selector" | "matchLabels" | "nodeSelector"
            | "limits" | "requests" | "capacity" | "allocatable" | "parameters" | "volumeAttributes" | "hard" | "used"
            | "allocatedResources" | "allocatedResourceStatuses" | "disruptedPods"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use waggle_apimachinery::registry::find;

    #[test]
    fn finds_unknown_fields_and_type_errors() {
        let pods = find("", "v1", "pods").unwrap();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"x": "y"}},
            "spec": {"containers": [{"name": "c", "image": "i", "bogus": 1}], "extra": true}});
        let unknown = check(pods, &pod).unwrap();
        assert_eq!(unknown, vec!["spec.containers[0].bogus".to_owned(), "spec.extra".to_owned()]);
        let bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": "x"}});
        let err = check(pods, &bad).unwrap_err();
        assert!(err.to_string().starts_with("Pod in version \"v1\" cannot be handled as a Pod"), "{err}");
    }
}
