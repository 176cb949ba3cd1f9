//! Printers of the access and scheduling policy kinds: role bindings, cluster role
//! bindings, certificate signing requests, pod disruption budgets, priority classes
//! and horizontal pod autoscalers.
//! (Roles and cluster roles use the default `Name`, `Created At` columns, as upstream.)

use jiff::Timestamp;
use serde_json::Value;

use super::{AGE, Cells, Column, Description, NAME, Printer, age, arr, col, human_duration, name, s};

static ROLE_BINDING: &[Column] = &[
    NAME,
    col("Role", "string", 0, field!("rbac.v1.RoleBinding", "roleRef")),
    AGE,
    col("Users", "string", 1, Description::Text("Users in the roleBinding")),
    col("Groups", "string", 1, Description::Text("Groups in the roleBinding")),
    col("ServiceAccounts", "string", 1, Description::Text("ServiceAccounts in the roleBinding")),
];

static CLUSTER_ROLE_BINDING: &[Column] = &[
    NAME,
    col("Role", "string", 0, field!("rbac.v1.ClusterRoleBinding", "roleRef")),
    AGE,
    col("Users", "string", 1, Description::Text("Users in the clusterRoleBinding")),
    col("Groups", "string", 1, Description::Text("Groups in the clusterRoleBinding")),
    col("ServiceAccounts", "string", 1, Description::Text("ServiceAccounts in the clusterRoleBinding")),
];

static CERTIFICATE_SIGNING_REQUEST: &[Column] = &[
    NAME,
    AGE,
    col("SignerName", "string", 0, field!("certificates.v1.CertificateSigningRequestSpec", "signerName")),
    col("Requestor", "string", 0, field!("certificates.v1.CertificateSigningRequestSpec", "request")),
    col("RequestedDuration", "string", 0, field!("certificates.v1.CertificateSigningRequestSpec", "expirationSeconds")),
    col("Condition", "string", 0, field!("certificates.v1.CertificateSigningRequestStatus", "conditions")),
];

static POD_DISRUPTION_BUDGET: &[Column] = &[
    NAME,
    col("Min Available", "string", 0, Description::Text("The minimum number of pods that must be available.")),
    col("Max Unavailable", "string", 0, Description::Text("The maximum number of pods that may be unavailable.")),
    col("Allowed Disruptions", "integer", 0, Description::Text("Calculated number of pods that may be disrupted at this time.")),
    AGE,
];

static PRIORITY_CLASS: &[Column] = &[
    NAME,
    col("Value", "integer", 0, field!("scheduling.v1.PriorityClass", "value")),
    col("Global-Default", "boolean", 0, field!("scheduling.v1.PriorityClass", "globalDefault")),
    AGE,
    col("PreemptionPolicy", "string", 0, field!("scheduling.v1.PriorityClass", "preemptionPolicy")),
];

static HORIZONTAL_POD_AUTOSCALER: &[Column] = &[
    NAME,
    col("Reference", "string", 0, field!("autoscaling.v2.HorizontalPodAutoscalerSpec", "scaleTargetRef")),
    col("Targets", "string", 0, field!("autoscaling.v2.HorizontalPodAutoscalerSpec", "metrics")),
    col("MinPods", "string", 0, field!("autoscaling.v2.HorizontalPodAutoscalerSpec", "minReplicas")),
    col("MaxPods", "string", 0, field!("autoscaling.v2.HorizontalPodAutoscalerSpec", "maxReplicas")),
    col("Replicas", "string", 0, field!("autoscaling.v2.HorizontalPodAutoscalerStatus", "currentReplicas")),
    AGE,
];

pub(super) fn printer(kind: &str, group: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], Cells) = match (group, kind) {
        ("rbac.authorization.k8s.io", "RoleBinding") => (ROLE_BINDING, binding),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => (CLUSTER_ROLE_BINDING, binding),
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            (CERTIFICATE_SIGNING_REQUEST, certificate_signing_request)
        }
        ("policy", "PodDisruptionBudget") => (POD_DISRUPTION_BUDGET, pod_disruption_budget),
        ("scheduling.k8s.io", "PriorityClass") => (PRIORITY_CLASS, priority_class),
        ("autoscaling", "HorizontalPodAutoscaler") => (HORIZONTAL_POD_AUTOSCALER, horizontal_pod_autoscaler),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

/// Role bindings and cluster role bindings: `Kind/name` of the role, and the subjects
/// by kind (service accounts as `namespace/name`).
fn binding(obj: &Value, now: Timestamp) -> Vec<Value> {
    let subjects = arr(obj, "/subjects");
    let of = |kind: &str| -> String {
        subjects
            .iter()
            .filter(|x| s(x, "/kind") == kind)
            .map(|x| match kind {
                "ServiceAccount" => format!("{}/{}", s(x, "/namespace"), s(x, "/name")),
                _ => s(x, "/name").to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        name(obj).into(),
        format!("{}/{}", s(obj, "/roleRef/kind"), s(obj, "/roleRef/name")).into(),
        age(obj, now),
        of("User").into(),
        of("Group").into(),
        of("ServiceAccount").into(),
    ]
}

/// An int-or-string field as printed: the number or percentage, `N/A` when unset.
fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(text)) => text.clone(),
        _ => "N/A".to_owned(),
    }
}

/// The request's state, most decisive first: `Denied`, `Approved` or `Pending`, then
/// `,Failed` and `,Issued` when they hold.
fn certificate_signing_request(obj: &Value, now: Timestamp) -> Vec<Value> {
    let has = |kind: &str| arr(obj, "/status/conditions").iter().any(|c| s(c, "/type") == kind);
    let mut condition = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_owned();
    if has("Failed") {
        condition.push_str(",Failed");
    }
    if !s(obj, "/status/certificate").is_empty() {
        condition.push_str(",Issued");
    }
    let signer = Some(s(obj, "/spec/signerName")).filter(|n| !n.is_empty()).unwrap_or("<none>");
    let duration = obj.pointer("/spec/expirationSeconds").and_then(Value::as_i64);
    vec![
        name(obj).into(),
        age(obj, now),
        signer.into(),
        s(obj, "/spec/username").into(),
        duration.map_or_else(|| "<none>".to_owned(), human_duration).into(),
        condition.into(),
    ]
}

fn pod_disruption_budget(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        int_or_string(obj.pointer("/spec/minAvailable")).into(),
        int_or_string(obj.pointer("/spec/maxUnavailable")).into(),
        obj.pointer("/status/disruptionsAllowed").and_then(Value::as_i64).unwrap_or(0).into(),
        age(obj, now),
    ]
}

fn priority_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        obj.get("value").and_then(Value::as_i64).unwrap_or(0).into(),
        obj.get("globalDefault").and_then(Value::as_bool).unwrap_or(false).into(),
        age(obj, now),
        obj.get("preemptionPolicy").and_then(Value::as_str).unwrap_or("<unset>").into(),
    ]
}

fn horizontal_pod_autoscaler(obj: &Value, now: Timestamp) -> Vec<Value> {
    let reference = format!("{}/{}", s(obj, "/spec/scaleTargetRef/kind"), s(obj, "/spec/scaleTargetRef/name"));
    let min = match obj.pointer("/spec/minReplicas").and_then(Value::as_i64) {
        Some(n) => n.to_string(),
        None => "<unset>".to_owned(),
    };
    vec![
        name(obj).into(),
        reference.into(),
        targets(obj).into(),
        min.into(),
        obj.pointer("/spec/maxReplicas").and_then(Value::as_i64).unwrap_or(0).into(),
        obj.pointer("/status/currentReplicas").and_then(Value::as_i64).unwrap_or(0).into(),
        age(obj, now),
    ]
}

const UNKNOWN: &str = "<unknown>";

/// `formatHPAMetrics`: `current/target` per metric. An `autoscaling/v1` object carries
/// its one CPU target in `targetCPUUtilizationPercentage`.
fn targets(obj: &Value) -> String {
    if obj.pointer("/spec/metrics").is_none() {
        return match obj.pointer("/spec/targetCPUUtilizationPercentage").and_then(Value::as_i64) {
            Some(target) => {
                let current = obj
                    .pointer("/status/currentCPUUtilizationPercentage")
                    .and_then(Value::as_i64)
                    .map_or_else(|| UNKNOWN.to_owned(), |c| format!("{c}%"));
                format!("cpu: {current}/{target}%")
            }
            None => "<none>".to_owned(),
        };
    }
    let specs = arr(obj, "/spec/metrics");
    if specs.is_empty() {
        return "<none>".to_owned();
    }
    let statuses = arr(obj, "/status/currentMetrics");
    let list: Vec<String> = specs.iter().enumerate().map(|(i, spec)| metric(spec, statuses.get(i))).collect();
    const MAX: usize = 4;
    if list.len() > MAX {
        format!("{} + {} more...", list[..MAX].join(", "), list.len() - MAX)
    } else {
        list.join(", ")
    }
}

/// One metric's `current/target`, reading the status entry of the same type.
fn metric(spec: &Value, status: Option<&Value>) -> String {
    let kind = s(spec, "/type");
    let key = match kind {
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        "Pods" => "pods",
        "Object" => "object",
        "External" => "external",
        _ => return "<unknown type>".to_owned(),
    };
    let status = status.filter(|st| s(st, "/type") == kind).and_then(|st| st.get(key));
    let target = spec.get(key).and_then(|m| m.get("target")).unwrap_or(&Value::Null);
    let current = |field: &str| status.map(|st| s(st, &format!("/current/{field}"))).filter(|v| !v.is_empty()).unwrap_or(UNKNOWN);
    match kind {
        "Resource" | "ContainerResource" => {
            let resource = s(spec, &format!("/{key}/name"));
            if let Some(avg) = target.get("averageValue").and_then(Value::as_str) {
                return format!("{resource}: {}/{avg}", current("averageValue"));
            }
            let current = status
                .and_then(|st| st.pointer("/current/averageUtilization"))
                .and_then(Value::as_i64)
                .map_or_else(|| UNKNOWN.to_owned(), |c| format!("{c}%"));
            let goal = target
                .get("averageUtilization")
                .and_then(Value::as_i64)
                .map_or_else(|| "<auto>".to_owned(), |t| format!("{t}%"));
            format!("{resource}: {current}/{goal}")
        }
        "Pods" => format!("{}/{}", current("averageValue"), s(target, "/averageValue")),
        _ => match target.get("averageValue").and_then(Value::as_str) {
            Some(avg) => format!("{}/{avg} (avg)", current("averageValue")),
            None => format!("{}/{}", current("value"), s(target, "/value")),
        },
    }
}
